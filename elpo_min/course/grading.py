"""The autograder: run students' notebooks in a kernel, run every check on their functions, and
score each graded part.

A part is a cell with nbgrader's metadata ``grade: true``: a check cell (``solution: false``,
scored automatically) or a written answer (``solution: true``, graded by hand). Scoring follows
nbgrader's rule, so a teacher who uses nbgrader gets the same points: a check cell is taken from
the exercise's source (``exercises/E*.py``, hidden tests included), never from the student's
copy, and earns its points when it runs without an error. The sources' hidden tests assert
that the check passed.

One kernel per student: the student's notebooks run one after another in exercise order, each
from its own folder and with an emptied namespace (``%reset -f``), so E5 can ``%run`` the
student's E3 and E4 beside it. Each check runs once, where the notebook has it. A cell that
fails or hangs (``--timeout``) does not stop the run.

A check that passes on a function that is the package's own (``from elpo_min.bel import
suffix_count``) or that calls the package's version of what it was asked to write, earns no
points and is reported: every reference function is importable from ``elpo_min``, which is fine
for practice and not for graded work.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import dis
import importlib
import io
import json
import re
import subprocess
import types
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "ELPO-GRADES:"
# the package functions a student function may not call, by the student function's name (a
# function not listed may not call the package's function of its own name)
FORBIDDEN = {
    "step_entropies": {"step_entropies", "entropy_gap", "turn_entropy"},
    "binary_search": {"binary_error_localization", "search_steps"},
    "node_values": {"node_value"},
    "branch_advantages": {"branch_advantages", "hierarchical_advantages"},
    "trajectory_advantages": {"trajectory_advantages", "hierarchical_advantages"},
    "hierarchical_advantages": {
        "hierarchical_advantages",
        "branch_advantages",
        "trajectory_advantages",
        "node_value",
    },
    "elc_mask": {"token_advantages", "credit_tree", "training_batch"},
    "lower_bound": {"clip_bounds"},
    "policy_loss": {"clipped_policy_loss", "clipped_objective", "aggregate", "clip_bounds"},
    "localize": {"binary_error_localization", "search_steps", "suffix_count", "step_entropies"},
    "batch_rows": {"token_advantages", "training_batch", "credit_tree", "build_tree"},
    "credit_auc": {"credit_metrics", "toy_step_metrics"},
    "rescaled_zscores": {"zscores"},
    "pair_zscores": {"zscores"},
}


@dataclass
class Part:
    """A graded cell of an exercise."""

    exercise: str
    grade_id: str
    points: float
    # True: scored by its check; False: a written answer, graded by hand
    automatic: bool
    # the check cell's source, hidden tests included (automatic parts)
    source: str = ""


@dataclass
class Score:
    """One part of one student's hand-in."""

    part: Part
    points: float
    # "passed", "failed", "missing", "not run", or "by hand"
    status: str
    detail: str = ""
    flags: list = field(default_factory=list)


def exercise_sources(folder: Path) -> dict[str, tuple[Path, list[Part]]]:
    """``{"E1": (source, parts)}`` for every ``E*.py`` in ``folder``, parts in order."""
    import jupytext

    if not folder.is_dir() or not list(folder.glob("E*.py")):
        raise FileNotFoundError(
            f"no exercise sources (E*.py) in {folder}: pass --source path/to/exercises"
        )
    exercises = {}
    for path in sorted(folder.glob("E*.py"), key=exercise_order):
        name = path.stem.split("_")[0]
        parts = []
        for cell in jupytext.read(path).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                automatic = not meta.get("solution")
                source = cell.source if automatic else ""
                parts.append(Part(name, meta["grade_id"], meta["points"], automatic, source))
        exercises[name] = (path, parts)
    return exercises


def exercise_order(path: Path) -> int:
    """E2 before E10."""
    digits = re.match(r"E(\d+)", path.name)
    return int(digits.group(1)) if digits else 10**6


def default_sources() -> Path:
    """``exercises/`` beside the package, in a checkout of the repository."""
    return Path(__file__).resolve().parents[2] / "exercises"


def students_under(path: Path) -> dict[str, list[Path]]:
    """``{student: notebooks}``: one notebook, a folder of one student's notebooks, or a
    class folder with one subfolder per student (nbgrader's ``submitted/`` works too)."""
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_file():
        if path.suffix != ".ipynb":
            raise ValueError(f"{path} is not a notebook (.ipynb)")
        return {path.resolve().parent.name: [path]}

    def notebooks(folder: Path) -> list[Path]:
        found = [p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
        return sorted(found, key=exercise_order)

    if list(path.glob("*.ipynb")):
        return {path.resolve().name: notebooks(path)}
    students = {sub.name: notebooks(sub) for sub in sorted(path.iterdir()) if sub.is_dir()}
    students = {name: found for name, found in students.items() if found}
    if not students:
        raise FileNotFoundError(f"no notebooks (.ipynb) under {path}")
    return students


def which_exercise(notebook, path: Path, exercises: dict) -> str | None:
    """The exercise a notebook is: the one whose graded cells it shares most, else its name."""
    ids = {cell.metadata.get("nbgrader", {}).get("grade_id") for cell in notebook.cells}
    shared = {
        name: len(ids & {p.grade_id for p in parts}) for name, (_, parts) in exercises.items()
    }
    best = max(shared, key=shared.get, default=None)
    if best is not None and shared[best] > 0:
        return best
    prefix = path.stem.split("_")[0]
    return prefix if prefix in exercises else None


def grading_notebook(handed_in: list[tuple[str, Path]], exercises: dict):
    """One notebook that runs a student's hand-in: a setup cell, then each notebook's cells
    from its own folder, each check cell replaced by the source's, run through the grader (a
    check cell the student deleted runs at the end of its notebook)."""
    import nbformat

    # the grader lives in this module, which %reset -f leaves alone
    grader = "from elpo_min.course.grading import current_grader as _grader\n"
    cells = [nbformat.v4.new_code_cell(grader + "_grader(get_ipython())")]
    for name, path in handed_in:
        notebook = nbformat.read(path, as_version=4)
        parts = {p.grade_id: p for p in exercises[name][1] if p.automatic}

        def check_cell(grade_id: str):
            """The source's check cell, run through the grader."""
            call = f"_grader().run({grade_id!r}, {parts[grade_id].source!r})"
            return nbformat.v4.new_code_cell(grader + call)

        cells.append(
            nbformat.v4.new_code_cell(
                f"get_ipython().run_line_magic('reset', '-f')\n"
                f"import os\nos.chdir({str(path.resolve().parent)!r})"
            )
        )
        seen = []
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in parts:
                seen.append(grade_id)
                cells.append(check_cell(grade_id))
            else:
                cells.append(nbformat.v4.new_code_cell(cell.source))
        # a check cell the student deleted runs after the notebook's last cell
        for grade_id in parts:
            if grade_id not in seen:
                cells.append(check_cell(grade_id))
    cells.append(nbformat.v4.new_code_cell(grader + "_grader().report()"))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = cells
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    return notebook


def run_hand_in(handed_in: list[tuple[str, Path]], exercises: dict, timeout: int) -> dict:
    """Execute a student's notebooks in one kernel; ``{grade_id: result}`` of the checks run."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    notebook = grading_notebook(handed_in, exercises)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        allow_errors=True,
        interrupt_on_timeout=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(handed_in[0][1].resolve().parent)}},
    )
    try:
        # the kernel process's own stderr carries only its start-up warnings (the students'
        # output goes to the notebook); keep them off the grader's report
        client.execute(stderr=subprocess.DEVNULL)
    except DeadKernelError as error:
        return {"__kernel__": f"the kernel died: {error}"}
    last = notebook.cells[-1]
    for output in last.get("outputs", []):
        text = output.get("text", "")
        if MARKER in text:
            return json.loads(text.split(MARKER, 1)[1])
    errors = [f"{o['ename']}: {o['evalue']}" for o in last.get("outputs", []) if "ename" in o]
    return {"__kernel__": "the grading cells did not report " + "; ".join(errors)}


def grade_student(notebooks: list[Path], exercises: dict, timeout: int = 600) -> list[Score]:
    """Scores for every part of the exercises this student handed in."""
    import nbformat

    handed_in, skipped = [], []
    for path in notebooks:
        try:
            notebook = nbformat.read(path, as_version=4)
        except Exception as error:  # not a readable notebook: say so, grade the rest
            skipped.append(f"{path.name}: unreadable ({type(error).__name__})")
            continue
        name = which_exercise(notebook, path, exercises)
        if name is None:
            skipped.append(f"{path.name}: not an exercise notebook")
        elif name in dict(handed_in):
            skipped.append(f"{path.name}: a second {name}")
        else:
            handed_in.append((name, path))
    handed_in.sort(key=lambda item: exercise_order(Path(item[0])))
    results = run_hand_in(handed_in, exercises, timeout) if handed_in else {}
    scores = []
    for name, _ in handed_in:
        for part in exercises[name][1]:
            scores.append(score(part, results))
    for note in skipped:
        scores.append(Score(Part("", "", 0, True), 0, "skipped", note))
    return scores


def score(part: Part, results: dict) -> Score:
    if not part.automatic:
        return Score(part, 0, "by hand")
    if part.grade_id not in results:
        why = results.get("__kernel__", "the check cell is not in the notebook")
        return Score(part, 0, "missing", why)
    result = results[part.grade_id]
    flags = result["flags"]
    if result["error"] is None and not flags:
        return Score(part, part.points, "passed")
    if result["error"] is None:
        return Score(part, 0, "failed", "passes only with the package's own code", flags)
    # a failed check fails its hidden assert; what the check printed says why
    detail = result["error"] if result["error"].startswith("interrupted") else result["why"]
    detail = detail or result["error"]
    return Score(part, 0, "failed", detail, flags)


_CURRENT = None


def current_grader(shell=None) -> KernelGrader:
    """The kernel's grader; the first call, with the shell, starts it."""
    global _CURRENT
    if shell is not None:
        _CURRENT = KernelGrader(shell)
    return _CURRENT


class KernelGrader:
    """Runs inside the student's kernel: each check cell, its outcome, and what it was given."""

    def __init__(self, shell):
        self.shell = shell
        self.results = {}

    def run(self, grade_id: str, source: str) -> None:
        namespace = self.shell.user_ns
        printed = io.StringIO()
        error = None
        with contextlib.redirect_stdout(printed):
            try:
                exec(compile(source, f"<{grade_id}>", "exec"), namespace)
            except KeyboardInterrupt:
                # nbclient interrupts a cell that runs past --timeout
                error = "interrupted: the check ran past --timeout"
            except Exception as raised:
                error = f"{type(raised).__name__}: {raised}".strip()
        print(printed.getvalue(), end="")
        flags = [flag for name in checked_names(source) for flag in package_use(name, namespace)]
        self.results[grade_id] = {"error": error, "flags": flags, "why": why(printed.getvalue())}

    def report(self) -> None:
        print(MARKER + json.dumps(self.results))


def why(printed: str) -> str:
    """What a failed check printed, in one line: "not implemented yet", or its first failing
    case and the hints below it."""
    lines = [line.strip() for line in printed.splitlines()]
    if "not implemented yet" in " ".join(lines):
        return "not implemented yet"
    failing = [line for line in lines if line.startswith("✗")]
    hints = [line for line in lines if line.startswith("hint:")]
    return "; ".join(failing[:1] + hints)


def checked_names(source: str) -> list[str]:
    """The names a check cell hands to ``check_*`` calls: the student's functions."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "").startswith("check_"):
            names += [arg.id for arg in node.args if isinstance(arg, ast.Name)]
    return names


def package_use(name: str, namespace: dict) -> list[str]:
    """How the object ``namespace[name]`` leans on the package: it is the package's, or it
    calls the package's version of what it was asked to write (through a global, a module's
    attribute, or an import inside the function)."""
    value = namespace.get(name)
    module = getattr(value, "__module__", "") or ""
    if module.startswith("elpo_min") and not module.startswith("elpo_min.course"):
        return [f"{name} is {module}.{getattr(value, '__name__', name)}, the package's own"]
    if not isinstance(value, types.FunctionType):
        return []
    forbidden = FORBIDDEN.get(value.__name__, {value.__name__})
    used, imported = names_used(value.__code__)
    # where each name the function uses may come from: its globals, or its own imports
    modules = [value.__globals__.get(n) for n in used] + [_module(m) for m in imported]
    found = set()
    for called in forbidden & used:
        candidates = [value.__globals__.get(called)]
        candidates += [getattr(m, called, None) for m in modules if isinstance(m, types.ModuleType)]
        for target in candidates:
            target_module = getattr(target, "__module__", "") or ""
            if callable(target) and target_module.startswith("elpo_min"):
                found.add(f"{name} calls {target_module}.{called}")
    return sorted(found)


def _module(name: str):
    """The module ``name`` if it is the package's and imports, else None."""
    if not name.startswith("elpo_min"):
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def names_used(code: types.CodeType) -> tuple[set[str], set[str]]:
    """Every global or attribute name a function's code uses, and the modules it imports
    (nested functions included)."""
    names, imported = set(code.co_names), set()
    for instruction in dis.get_instructions(code):
        if instruction.opname == "IMPORT_NAME":
            imported.add(instruction.argval)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            more, more_imported = names_used(constant)
            names |= more
            imported |= more_imported
    return names, imported


def grade(path: Path, sources: Path, timeout: int = 600, csv_path: Path | None = None) -> dict:
    """Grade every student under ``path``; print the points per part; write the CSV."""
    exercises = exercise_sources(sources)
    students = students_under(path)
    table = {}
    for student, notebooks in students.items():
        scores = grade_student(notebooks, exercises, timeout)
        table[student] = scores
        print_scores(student, scores)
    if csv_path is not None:
        write_csv(csv_path, table)
        print(f"wrote {csv_path}: one row per student")
    return table


def print_scores(student: str, scores: list[Score]) -> None:
    print(f"{student}")
    exercise = None
    for s in scores:
        if s.status == "skipped":
            print(f"  skipped {s.detail}")
            continue
        if s.part.exercise != exercise:
            exercise = s.part.exercise
            print(f"  {exercise}")
        if s.status == "by hand":
            print(f"    {s.part.grade_id:32s}  ?/{s.part.points:g}  written answer: grade by hand")
            continue
        line = f"    {s.part.grade_id:32s} {s.points:g}/{s.part.points:g}  {s.status}"
        if s.detail and s.status != "passed":
            line += f": {s.detail}"
        print(line)
        for flag in s.flags:
            print(f"      reported: {flag}")
    automatic = [s for s in scores if s.status not in ("by hand", "skipped")]
    by_hand = sum(s.part.points for s in scores if s.status == "by hand")
    total = sum(s.points for s in automatic)
    possible = sum(s.part.points for s in automatic)
    print(f"  total {total:g}/{possible:g} from the checks; {by_hand:g} more to grade by hand")


def write_csv(path: Path, table: dict) -> None:
    """One row per student: the points of every automatic part, totals, and what was
    reported."""
    columns = []
    for scores in table.values():
        for s in scores:
            if s.part.automatic and s.part.grade_id and s.part.grade_id not in columns:
                columns.append(s.part.grade_id)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", *columns, "total", "possible", "by_hand_points", "reported"])
        for student, scores in table.items():
            points = {s.part.grade_id: s.points for s in scores if s.part.automatic}
            possible = {s.part.grade_id: s.part.points for s in scores if s.part.automatic}
            by_hand = sum(s.part.points for s in scores if s.status == "by hand")
            flags = "; ".join(flag for s in scores for flag in s.flags)
            row = [points.get(c, "") for c in columns]
            total = sum(p for p in points.values())
            writer.writerow([student, *row, total, sum(possible.values()), by_hand, flags])
