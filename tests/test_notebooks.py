"""Notebooks: every one is collected by nbval, and each .ipynb matches its .py source."""

import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9]*.py"))


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
