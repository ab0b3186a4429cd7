"""Course mode: the exercise notebooks, the student copies, and the grader.

Every solution passes its check; every student copy runs top to bottom and reports "not
implemented yet" for each stub; the grader gives the solutions full marks and three seeded
wrong hand-ins the points they earn. (Each usual mistake has its own test in
``test_course_mistakes.py``.)
"""

import contextlib
import csv
import importlib.util
import io
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from course_helpers import EXERCISES, exercise, mutate, without_hidden_tests
from nbclient import NotebookClient

import elpo_min
from elpo_min.course import estimates, grading

SOURCES = sorted(EXERCISES.glob("E*.py"), key=grading.exercise_order)
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


def test_each_exercise_has_a_difficulty_and_the_estimated_time_the_kit_quotes():
    estimated = {e.name: e.minutes for e in estimates.all_estimates()}
    for src in SOURCES:
        header = re.search(r"Difficulty ★{1,3}☆{0,2} · estimated (\d+) minutes", src.read_text())
        assert header, f"{src.name}: no difficulty and time in its header"
        assert int(header.group(1)) == estimated[src.stem], f"{src.name}: {estimated[src.stem]}"


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


def hand_in(folder: Path, name: str, edits=()) -> Path:
    """Exercise ``name``'s solution notebook with ``edits`` made, saved without outputs."""
    source = exercise(name).read_text()
    for right, wrong in edits:
        source = mutate(source, right, wrong, name)
    notebook = jupytext.reads(source, fmt="py:percent")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{exercise(name).stem}.ipynb"
    jupytext.write(notebook, path)
    return path


def points(scores, exercise_name=None) -> dict:
    return {
        s.part.grade_id: s.points
        for s in scores
        if s.part.automatic and s.part.grade_id and exercise_name in (None, s.part.exercise)
    }


def test_the_grader_gives_the_solutions_full_marks(tmp_path):
    for path in SOURCES:
        built = path.with_suffix(".ipynb")
        (tmp_path / "solutions").mkdir(exist_ok=True)
        (tmp_path / "solutions" / built.name).write_bytes(built.read_bytes())
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        table = grading.grade(tmp_path / "solutions", EXERCISES)
    scores = table["solutions"]
    automatic = [s for s in scores if s.part.automatic]
    assert {p.stem.split("_")[0] for p in SOURCES} == {s.part.exercise for s in scores}
    assert all(s.status == "passed" for s in automatic), printed.getvalue()
    assert "total 73/73 from the checks; 17 more to grade by hand" in printed.getvalue()


def test_the_grader_gives_three_wrong_hand_ins_their_partial_marks(tmp_path):
    # alice rounds X_m half to even, and deleted a check cell (the grader runs it anyway);
    # bob's z-scores use the sample std (E3's A_b, A_t and so A_hier fail); carol hands in the
    # package's suffix_count and wraps its clip_bounds
    alice = hand_in(
        tmp_path / "alice",
        "E1",
        [
            (
                "return math.floor(x_min + (x_max - x_min) * sigmoid + 0.5)",
                "return round(x_min + (x_max - x_min) * sigmoid)",
            )
        ],
    )
    notebook = nbformat.read(alice, as_version=4)
    notebook.cells = [c for c in notebook.cells if "check_token_entropy(" not in c.source]
    nbformat.write(notebook, alice)
    hand_in(tmp_path / "bob", "E3", [("statistics.pstdev(values)", "statistics.stdev(values)")])
    suffix_count_solution = exercise("E1").read_text()
    start = suffix_count_solution.index("def suffix_count(")
    end = suffix_count_solution.index("    ### END SOLUTION", start) + len("    ### END SOLUTION")
    hand_in(
        tmp_path / "carol",
        "E1",
        [(suffix_count_solution[start:end], "from elpo_min.bel import suffix_count")],
    )
    hand_in(
        tmp_path / "carol",
        "E4",
        [
            (
                "    return eps_low + eps_elc * elc\n",
                "    from elpo_min import clip_bounds\n\n"
                "    return clip_bounds(elc, eps_low, eps_elc)\n",
            )
        ],
    )
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        table = grading.grade(tmp_path, EXERCISES, csv_path=tmp_path / "class.csv")
    assert points(table["alice"]) == {
        "e1_token_entropy_check": 3,
        "e1_step_entropies_check": 3,
        "e1_select_failure_check": 1,
        "e1_suffix_count_check": 0,
    }, printed.getvalue()
    assert points(table["bob"]) == {
        "e3_node_values_check": 2,
        "e3_branch_advantages_check": 0,
        "e3_trajectory_advantages_check": 0,
        "e3_hierarchical_advantages_check": 0,
    }, printed.getvalue()
    carol = table["carol"]
    assert sum(points(carol, "E1").values()) == 7 and sum(points(carol, "E4").values()) == 9
    reported = [flag for s in carol for flag in s.flags]
    assert reported == [
        "suffix_count is elpo_min.bel.suffix_count, the package's own",
        "lower_bound calls elpo_min.loss.clip_bounds",
    ], printed.getvalue()
    text = printed.getvalue()
    assert "reported: suffix_count is elpo_min.bel.suffix_count" in text
    assert "total 7/10 from the checks" in text and "total 2/10 from the checks" in text
    rows = {row["student"]: row for row in csv.DictReader(open(tmp_path / "class.csv"))}
    assert set(rows) == {"alice", "bob", "carol"}
    assert (rows["alice"]["total"], rows["bob"]["total"], rows["carol"]["total"]) == (
        "7",
        "2",
        "16",
    )
    assert (
        rows["bob"]["e1_token_entropy_check"] == "" and "clip_bounds" in rows["carol"]["reported"]
    )


def test_the_grader_says_in_one_line_what_is_wrong_with_its_input(tmp_path):
    from elpo_min.course.__main__ import main

    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        assert main(["grade", str(tmp_path / "nowhere")]) == 2
        assert main(["grade", str(tmp_path)]) == 2
        assert main(["grade", str(tmp_path), "--source", str(tmp_path)]) == 2
    lines = errors.getvalue().splitlines()
    assert (
        lines[0] == f"python -m elpo_min.course grade: no such file or folder: {tmp_path}/nowhere"
    )
    assert lines[1].endswith(f"no notebooks (.ipynb) under {tmp_path}")
    assert "no exercise sources (E*.py)" in lines[2] and "--source" in lines[2]


def test_package_use_names_a_reexport_and_a_wrapper_but_not_own_code():
    from elpo_min.bel import suffix_count

    def lower_bound(elc, eps_low, eps_elc):
        return elpo_min.clip_bounds(elc, eps_low, eps_elc)

    def node_values(node):
        return sum(suffix_count(0, 0) for _ in node)

    namespace = {
        "suffix_count": suffix_count,
        "lower_bound": lower_bound,
        "node_values": node_values,
    }
    assert grading.package_use("suffix_count", namespace) == [
        "suffix_count is elpo_min.bel.suffix_count, the package's own"
    ]
    assert grading.package_use("lower_bound", namespace) == [
        "lower_bound calls elpo_min.loss.clip_bounds"
    ]
    # suffix_count is not what node_values was asked to write
    assert grading.package_use("node_values", namespace) == []
