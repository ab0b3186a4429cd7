"""Course mode: the exercise notebooks and the student copies.

Every solution passes its check; every student copy runs top to bottom and reports "not
implemented yet" for each stub. (Each usual mistake has its own test in
``test_course_mistakes.py``.)
"""

import contextlib
import importlib.util
import io
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from course_helpers import EXERCISES, without_hidden_tests
from nbclient import NotebookClient

SOURCES = sorted(EXERCISES.glob("E*.py"), key=lambda p: int(p.stem.split("_")[0][1:]))
# E5 runs the others through IPython, so it needs a kernel; E9 samples BEL's trees with the
# tiny policy (nbval and the grader run both)
PLAIN = [path for path in SOURCES if path.stem[:2] not in ("E5", "E9")]
NBVAL_MARKER = re.compile(r"^# NBVAL_", re.M)


def run_source(source: str) -> str:
    """Execute a notebook's code as one script, as a student sees it; returns what it printed."""
    notebook = jupytext.reads(source, fmt="py:percent")
    cells = [c.source for c in notebook.cells if c.cell_type == "code"]
    code = "\n".join(without_hidden_tests(c) for c in cells)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<exercise>", "exec"), {"__name__": "exercise"})
    return printed.getvalue()


def checks_in(source: str) -> int:
    return len(re.findall(r"^passed = check_\w+\(", source, flags=re.M))


def student_copies(out_dir: Path) -> dict[str, int]:
    spec = importlib.util.spec_from_file_location("make", EXERCISES / "make_student_copies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_student_copies(out_dir)


def test_there_are_nine_exercises_each_with_its_ipynb_and_outputs():
    assert [p.stem.split("_")[0] for p in SOURCES] == [f"E{i}" for i in range(1, 10)]
    for src in SOURCES:
        built = nbformat.read(src.with_suffix(".ipynb"), as_version=4)
        expected = [c.source for c in jupytext.read(src).cells]
        assert [c.source for c in built.cells] == expected, f"{src.name}: regenerate the .ipynb"
        for cell in built.cells:
            for out in cell.get("outputs", []):
                assert out.get("name") != "stderr", f"{src.stem}: stderr in {cell.source[:60]!r}"
                assert out.get("output_type") != "error", f"{src.stem}: {cell.source[:60]!r}"
                assert "✗" not in out.get("text", ""), f"{src.stem}: a check fails"


def test_each_exercise_has_a_difficulty_and_an_estimated_time():
    for src in SOURCES:
        header = src.read_text()[:2000]
        assert re.search(r"Difficulty ★{1,3}☆{0,2} · estimated \d+ minutes", header), src.name


def test_every_graded_cell_carries_nbgrader_points_and_every_check_a_hidden_test():
    for src in SOURCES:
        notebook = jupytext.read(src)
        graded = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert graded, src.name
        for cell in graded:
            meta = cell.metadata["nbgrader"]
            assert meta["points"] > 0 and meta["grade_id"], src.name
            if not meta["solution"]:
                assert meta["locked"], f"{src.name}: {meta['grade_id']} is not locked"
                assert "### BEGIN HIDDEN TESTS\nassert passed" in cell.source, meta["grade_id"]
                assert checks_in(cell.source) == 1, meta["grade_id"]
        ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells]
        ids = [i for i in ids if i]
        assert len(ids) == len(set(ids)), f"{src.name}: a grade_id twice"


@pytest.mark.parametrize("path", PLAIN, ids=lambda p: p.stem)
def test_every_solution_passes_its_check(path):
    source = path.read_text()
    printed = run_source(source)
    assert "✗" not in printed and "not implemented" not in printed, printed
    assert "hint:" not in printed, printed
    assert printed.count("cases pass") + printed.count("your tests catch bug 3") >= checks_in(
        source
    ), printed


def test_student_copies_hide_the_solutions_and_run_saying_not_implemented(tmp_path):
    stubs = student_copies(tmp_path)
    assert set(stubs) == {p.stem for p in SOURCES}
    assert all(count >= 1 for count in stubs.values())
    for path in SOURCES:
        copy = nbformat.read(tmp_path / f"{path.stem}.ipynb", as_version=4)
        source = jupytext.writes(copy, fmt="py:percent")
        for leftover in ("### BEGIN SOLUTION", "HIDDEN TESTS", "# noqa", "committed output"):
            assert leftover not in source, f"{path.stem}: {leftover!r}"
        assert not NBVAL_MARKER.search(source), path.stem
        assert all(not c.outputs for c in copy.cells if c.cell_type == "code")
        if path.stem.startswith("E5"):
            continue
        printed = run_source(source)
        expected = checks_in(source) + ("run_and_show(" in source)
        assert printed.count("not implemented yet") == expected, printed
        assert "Traceback" not in printed and "✗" not in printed


def test_the_student_capstone_runs_in_a_kernel_and_says_not_implemented(tmp_path):
    student_copies(tmp_path)
    notebook = nbformat.read(tmp_path / "E5_capstone.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(
        out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", [])
    )
    assert "one ELPO step with your functions\n  not implemented yet" in printed
    assert "first tree: not implemented yet" in printed
    assert "second tree: not implemented yet" in printed


def test_make_student_copies_has_a_help_and_writes_no_folder_for_it(tmp_path):
    script = EXERCISES / "make_student_copies.py"
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0 and "usage:" in done.stdout and "out_dir" in done.stdout
    assert not list(tmp_path.iterdir()), "--help wrote files"
    done = subprocess.run(
        [sys.executable, str(script), "--bogus"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 2 and "unrecognized arguments: --bogus" in done.stderr
    assert not list(tmp_path.iterdir())
