"""Helpers of the course tests: run one part of an exercise notebook, with a mistake in it."""

import contextlib
import io
import re
from pathlib import Path

import jupytext

EXERCISES = Path(__file__).resolve().parent.parent / "exercises"


def exercise(prefix: str) -> Path:
    """The source of the exercise whose file name starts with ``prefix`` ("E1", "E10")."""
    found = [p for p in EXERCISES.glob("E*.py") if p.stem.split("_")[0] == prefix]
    assert len(found) == 1, f"no single exercise {prefix}: {found}"
    return found[0]


def graded(cell) -> bool:
    """A check cell: nbgrader's autograder tests, graded and not a solution."""
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def mutate(source: str, right: str, wrong: str, where: str) -> str:
    assert source.count(right) == 1, f"{right!r} is not in {where} exactly once"
    return source.replace(right, wrong)


def run_part(path: Path, grade_id: str, replacements=()) -> str:
    """Run the notebook's cells before the check cell ``grade_id`` (no other check, and no
    cell that needs IPython), then that check alone; returns what it printed.

    ``replacements`` are ``(right, wrong)`` texts, each found exactly once in the source.
    """
    source = path.read_text()
    for right, wrong in replacements:
        source = mutate(source, right, wrong, path.name)
    notebook = jupytext.reads(source, fmt="py:percent")
    code = [c for c in notebook.cells if c.cell_type == "code"]
    check = [c for c in code if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    assert len(check) == 1, f"no check cell {grade_id} in {path.name}"
    namespace = {"__name__": "exercise"}
    printed = io.StringIO()
    # the cells before the check, as a student runs them (E9's run comes after its first check)
    before = code[: code.index(check[0])]
    with contextlib.redirect_stdout(printed):
        for cell in before:
            if not graded(cell) and "get_ipython" not in cell.source:
                exec(compile(cell.source, path.name, "exec"), namespace)
        exec(compile(without_hidden_tests(check[0].source), path.name, "exec"), namespace)
    return printed.getvalue()


def without_hidden_tests(source: str) -> str:
    """The cell as a student sees it: nbgrader's hidden tests left out."""
    return re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", "", source, flags=re.S)
