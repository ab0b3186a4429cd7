"""Write the student copies of the exercise notebooks, every solution replaced by a stub.

``make exercises`` runs it: each ``exercises/E*.py`` (a jupytext source holding the solutions
between nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers) becomes
``<out_dir>/E*.ipynb`` without outputs. In a code cell a solution becomes ``raise
NotImplementedError``, which the checks report as "not implemented yet"; in a markdown cell it
becomes "YOUR ANSWER HERE". What only the course's own tests need goes too: nbgrader's hidden
tests (``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``), nbval's markers
(``# NBVAL_CHECK_OUTPUT`` and the like) and linter comments (``# noqa``). The cells keep their
nbgrader metadata, so the copies can also be collected and graded with nbgrader. No nbgrader
needed to write them.
"""

import argparse
import re
import sys
from pathlib import Path

import jupytext

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN = re.compile(
    r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*\n?", re.S | re.M
)
# a line that is nothing but an nbval marker
NBVAL = re.compile(r"^[ \t]*# NBVAL_[A-Z_]+[ \t]*\n?", re.M)
# a linter's comment at the end of a line
NOQA = re.compile(r"[ \t]+# noqa\b.*$", re.M)
HERE = Path(__file__).resolve().parent


def strip_solutions(source: str, markdown: bool) -> str:
    """The cell's source with each solution block replaced by a stub at its indentation."""
    kept, inside = [], False
    for line in source.splitlines():
        marker = line.strip()
        if marker == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            kept.append(indent + ("YOUR ANSWER HERE" if markdown else "raise NotImplementedError"))
            inside = True
        elif marker == END:
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise ValueError(f"a solution block is not closed:\n{source}")
    return "\n".join(kept)


def strip_test_only(source: str) -> str:
    """The cell without hidden tests, nbval markers and linter comments."""
    source = HIDDEN.sub("", source)
    source = NBVAL.sub("", source)
    return NOQA.sub("", source).rstrip("\n")


def write_student_copies(out_dir: Path, sources: Path = HERE) -> dict[str, int]:
    """Write every student copy into ``out_dir``; returns the stubs made per notebook."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stubs = {}
    for path in sorted(sources.glob("E*.py")):
        notebook = jupytext.read(path)
        stubs[path.stem] = 0
        for cell in notebook.cells:
            if BEGIN in cell.source:
                stubs[path.stem] += cell.source.count(BEGIN)
                cell.source = strip_solutions(cell.source, cell.cell_type == "markdown")
            if cell.cell_type == "code":
                cell.source = strip_test_only(cell.source)
                cell.outputs = []
                cell.execution_count = None
        jupytext.write(notebook, out_dir / f"{path.stem}.ipynb")
    return stubs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Write the student copies of the exercise notebooks: every solution replaced by a "
            "stub, hidden tests and test-only markers removed, no outputs."
        ),
        epilog="Hand out the folder it writes; keep exercises/*.py and docs/course/ to yourself.",
    )
    parser.add_argument(
        "out_dir",
        nargs="?",
        type=Path,
        default=HERE / "student",
        help="the folder to write the notebooks into (default: exercises/student)",
    )
    args = parser.parse_args(argv)
    for name, count in write_student_copies(args.out_dir).items():
        print(f"{args.out_dir / name}.ipynb: {count} solutions replaced by stubs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
