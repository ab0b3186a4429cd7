"""Course mode: the exercise notebooks, their checks, and the student copies.

Every solution passes its check; every student copy runs top to bottom and reports "not
implemented yet" for each stub; and each usual mistake, injected into a copy of a solution,
is caught with its own hint (one mutation test per mistake).
"""

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from elpo_min.course import capstone, credit_checks, entropy_checks, loss_checks, search_checks

EXERCISES = Path(__file__).resolve().parent.parent / "exercises"
SOURCES = sorted(EXERCISES.glob("E*.py"))
# E1-E4 are plain Python; E5 runs the others through IPython, so it runs in a kernel
PLAIN = [path for path in SOURCES if not path.stem.startswith("E5")]


def run_source(source: str) -> str:
    """Execute a notebook's code as one script; returns what it printed."""
    notebook = jupytext.reads(source, fmt="py:percent")
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<exercise>", "exec"), {"__name__": "exercise"})
    return printed.getvalue()


def checks_in(source: str) -> int:
    return len(re.findall(r"^check_\w+\(", source, flags=re.M))


def student_copies(out_dir: Path) -> dict[str, int]:
    spec = importlib.util.spec_from_file_location("make", EXERCISES / "make_student_copies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_student_copies(out_dir)


def test_there_are_five_exercises_each_with_its_ipynb_and_outputs():
    assert [p.stem[:2] for p in SOURCES] == ["E1", "E2", "E3", "E4", "E5"]
    for src in SOURCES:
        built = nbformat.read(src.with_suffix(".ipynb"), as_version=4)
        expected = [c.source for c in jupytext.read(src).cells]
        assert [c.source for c in built.cells] == expected, f"{src.name}: run `make notebooks`"
        for cell in built.cells:
            for out in cell.get("outputs", []):
                assert out.get("name") != "stderr", f"{src.stem}: stderr in {cell.source[:60]!r}"
                assert "✗" not in out.get("text", ""), f"{src.stem}: a check fails"


@pytest.mark.parametrize("path", PLAIN, ids=lambda p: p.stem)
def test_every_solution_passes_its_check(path):
    source = path.read_text()
    printed = run_source(source)
    assert "✗" not in printed and "not implemented" not in printed, printed
    assert printed.count("cases pass") >= checks_in(source)


def test_the_capstone_solution_passes_with_the_other_solutions():
    namespaces = {}
    for path in PLAIN + [EXERCISES / "E5_capstone.py"]:
        notebook = jupytext.read(path)
        code = "\n".join(
            c.source
            for c in notebook.cells
            if c.cell_type == "code" and not re.search(r"^check_\w+\(", c.source, flags=re.M)
        )
        # the capstone's own cells that define things; its IPython cell is left out
        code = code.replace('get_ipython().run_line_magic("run"', "pass  # (")
        namespace = {"__name__": "exercise"}
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, str(path), "exec"), namespace)
        namespaces.update(namespace)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        step = capstone.check_training_step(
            namespaces["hierarchical_advantages"], namespaces["elc_mask"], namespaces["policy_loss"]
        )
        trees = capstone.check_lambda_trees(namespaces["better_tree"], namespaces["worse_tree"])
    assert step and trees, printed.getvalue()


def test_student_copies_run_and_say_not_implemented_for_every_stub(tmp_path):
    stubs = student_copies(tmp_path)
    assert set(stubs) == {p.stem for p in SOURCES}
    assert all(count >= 1 for count in stubs.values())
    for path in PLAIN:
        copy = nbformat.read(tmp_path / f"{path.stem}.ipynb", as_version=4)
        source = jupytext.writes(copy, fmt="py:percent")
        assert "### BEGIN SOLUTION" not in source
        printed = run_source(source)
        assert printed.count("not implemented yet") == checks_in(source), printed
        assert "Traceback" not in printed


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


# (exercise, the solution's text, the mistake's text, the hint that must name it)
MUTANTS = [
    ("E1", "logits / temperature, dim", "logits, dim", entropy_checks.UNTEMPERED),
    ("E1", "return -(log_probs.exp()", "return (log_probs.exp()", entropy_checks.NEGATIVE),
    ("E1", "head = values[:window]", "head = values", entropy_checks.WINDOW),
    ("E1", "key=lambda i: gaps[i])", "key=lambda i: -gaps[i])", entropy_checks.ARGMIN),
    (
        "E1",
        "math.floor(x_min + (x_max - x_min) * sigmoid + 0.5)",
        "round(x_min + (x_max - x_min) * sigmoid)",
        entropy_checks.HALF_EVEN,
    ),
    ("E1", "-beta * (h_step - h_root)", "-beta * (h_root - h_step)", entropy_checks.GAP_SIGN),
    ("E2", "m = (left + right) // 2", "m = (left + right + 1) // 2", search_checks.MIDPOINT_UP),
    ("E2", "and spent < budget:", "and spent <= budget:", search_checks.PROBE_ZERO),
    ("E2", "n = min(wanted, budget - spent)", "n = wanted", search_checks.OVER_BUDGET),
    (
        "E2",
        "while left < right and spent < budget:",
        "while spent < budget:\n        if left >= right and probes:\n            break",
        search_checks.K_SMALL,
    ),
    ("E3", "statistics.pstdev(values)", "statistics.stdev(values)", credit_checks.SAMPLE_STD),
    (
        "E3",
        "node.value = statistics.mean(node_values(child) for child in node.children)",
        "[node_values(child) for child in node.children]\n"
        "        node.value = statistics.mean(float(leaf.reward) for leaf in node.leaves())",
        credit_checks.ALL_LEAVES,
    ),
    ("E3", "child.a_branch = node.a_branch", "child.a_branch = 0.0", credit_checks.SINGLE_CHILD),
    (
        "E3",
        "for leaf, score in zip(leaves, zscores([float(leaf.reward) for leaf in leaves])):\n"
        "        leaf.a_traj = score",
        "def below(node):\n"
        "        return [node] + [n for c in node.children for n in below(c)]\n\n"
        "    everything = [n.value for n in below(root)[1:]]\n"
        "    mean, std = statistics.mean(everything), statistics.pstdev(everything)\n"
        "    for leaf in leaves:\n"
        "        leaf.a_traj = (leaf.value - mean) / (std + 1e-6)",
        credit_checks.ALL_NODES,
    ),
    ("E4", "turns[t_crit - 1 :]", "turns[max(t_crit - 2, 0) :]", loss_checks.BEFORE_T_CRIT),
    ("E4", "for start, end, _ in turns", "for start, _, end in turns", loss_checks.TOOL_TOKENS),
    (
        "E4",
        "torch.full_like(ratio, 1 + eps_high))",
        "1 + eps_high + eps_elc * elc)",
        loss_checks.UPPER,
    ),
    ("E4", 'if aggregation == "token-mean":', "if True:", loss_checks.TOKEN_MEAN),
    (
        "E4",
        "sequences = (tokens > 0).sum().clamp(min=1)",
        "sequences = len(tokens)",
        loss_checks.EMPTY_ROWS,
    ),
]


@pytest.mark.parametrize("exercise, right, wrong, hint", MUTANTS, ids=lambda v: str(v)[:30])
def test_each_usual_mistake_is_caught_with_its_hint(exercise, right, wrong, hint):
    path = next(p for p in SOURCES if p.stem.startswith(exercise))
    source = path.read_text()
    assert source.count(right) == 1, f"{right!r} is not in {path.name} exactly once"
    printed = run_source(source.replace(right, wrong))
    assert "✗" in printed, printed
    assert f"hint: {hint}" in printed, printed
