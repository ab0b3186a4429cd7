"""Notebooks: every one is collected by nbval, each .ipynb matches its .py source, every cell
that draws shows its figure, and `make lab` opens them."""

import base64
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9]*.py"))
# a call that draws: pyplot, a figure or axes method, or a plotting helper of the package
DRAWS = re.compile(r"\b(plt|fig|ax|axes|axs)\.[a-z_]+\(|\bplot_[a-z_]+\(")


def test_there_are_six_notebooks_each_with_its_ipynb():
    assert len(SOURCES) == 6
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == [p.stem for p in SOURCES]


def test_every_notebook_is_collected_by_nbval():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "--nbval-lax",
            "--nbval-current-env",
            str(NOTEBOOKS),
        ],
        capture_output=True,
        text=True,
        cwd=NOTEBOOKS.parent,
    )
    for src in SOURCES:
        assert f"{src.stem}.ipynb::" in out.stdout, (
            f"{src.stem}.ipynb not collected:\n{out.stdout[-2000:]}"
        )


def test_ipynb_cells_match_the_py_source_and_carry_outputs():
    for src in SOURCES:
        expected = [c.source for c in jupytext.read(src).cells]
        built = nbformat.read(src.with_suffix(".ipynb"), as_version=4)
        assert [c.source for c in built.cells] == expected, f"{src.name}: run `make notebooks`"
        code = [c for c in built.cells if c.cell_type == "code"]
        assert any(c.outputs for c in code), (
            f"{src.stem}.ipynb has no outputs: run `make notebooks`"
        )


def cells_missing_their_figure(notebook) -> list[str]:
    """The first line of every code cell that draws but has no image/png output."""
    missing = []
    for cell in notebook.cells:
        if cell.cell_type != "code" or "NBVAL_SKIP" in cell.source:
            continue
        shown = any("image/png" in out.get("data", {}) for out in cell.outputs)
        if DRAWS.search(cell.source) and not shown:
            code = [line for line in cell.source.splitlines() if not line.startswith("#")]
            missing.append(code[0])
    return missing


def test_the_figure_check_flags_a_cell_whose_figure_went_missing():
    # notebook 05 before the fix: the helper switched the backend to Agg, and the next cells
    # that drew showed nothing
    notebook = nbformat.v4.new_notebook()
    blank = nbformat.v4.new_code_cell("fig, axes = plt.subplots(1, 2)\naxes[0].plot([1, 2])")
    helper = nbformat.v4.new_code_cell("plot_learning_curve(logs)")
    helper.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "<Figure>"})]
    notebook.cells = [nbformat.v4.new_code_cell("print(1)"), blank, helper]
    assert cells_missing_their_figure(notebook) == [
        "fig, axes = plt.subplots(1, 2)",
        "plot_learning_curve(logs)",
    ]


def test_every_cell_that_draws_shows_its_figure():
    for src in SOURCES:
        notebook = nbformat.read(src.with_suffix(".ipynb"), as_version=4)
        missing = cells_missing_their_figure(notebook)
        assert not missing, f"{src.stem}.ipynb: cells draw but show no figure: {missing}"


def test_no_committed_output_holds_a_warning_or_a_leaked_repr():
    leaked = re.compile(r"^(\[?<matplotlib\.|\[?Text\(|<IPython\.core\.display)")
    for src in SOURCES:
        notebook = nbformat.read(src.with_suffix(".ipynb"), as_version=4)
        for cell in notebook.cells:
            for out in cell.get("outputs", []):
                assert out.get("name") != "stderr", f"{src.stem}: stderr in {cell.source[:60]!r}"
                plain = "".join(out.get("data", {}).get("text/plain", ""))
                figure = "image/png" in out.get("data", {})
                assert figure or not leaked.match(plain), f"{src.stem}: a repr leaked: {plain!r}"


def test_readme_figures_are_the_tagged_cells_images():
    for src in SOURCES:
        notebook = nbformat.read(src.with_suffix(".ipynb"), as_version=4)
        tagged = [c for c in notebook.cells if "readme-figure" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{src.stem}: one cell tagged readme-figure"
        images = [
            o["data"]["image/png"] for o in tagged[0].outputs if "image/png" in o.get("data", {})
        ]
        exported = (NOTEBOOKS / "figures" / f"{src.stem}.png").read_bytes()
        assert base64.b64decode(images[0]) == exported, f"{src.stem}: run `make notebooks`"


def test_make_lab_opens_jupyterlab_on_the_notebooks():
    plan = subprocess.run(["make", "-n", "lab"], capture_output=True, text=True, cwd=ROOT)
    assert plan.returncode == 0, plan.stderr
    assert "jupyter lab notebooks" in plan.stdout
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(requirement.startswith("jupyterlab") for requirement in extras["lab"])


def test_checked_outputs_do_not_depend_on_the_cpus_kernels_or_threads():
    """Notebook 04's checked cells (the worked batch, and updates on it) under torch's lowest
    CPU kernels and two threads must print what the committed outputs say.

    The committed outputs were made with the machine's best kernels (AVX-512 or AVX2) and one
    thread; another CPU rounds differently. A checked cell that prints a digit the kernels or
    the thread count can move fails here, before it fails on a machine we never see.
    """
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "2"}
    notebook = NOTEBOOKS / "04_adaptive_clipping.ipynb"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist"]
    command += ["--nbval-lax", "--nbval-current-env", str(notebook)]
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=NOTEBOOKS, env=env, timeout=600
    )
    assert done.returncode == 0, done.stdout[-4000:]
