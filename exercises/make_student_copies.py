"""Write the student copies of the exercise notebooks, every solution replaced by a stub.

``make exercises`` runs it: each ``exercises/E*.py`` (a jupytext source holding the solutions
between nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers) becomes
``exercises/student/E*.ipynb`` without outputs. In a code cell a solution becomes ``raise
NotImplementedError``, which the checks report as "not implemented yet"; in a markdown cell it
becomes "YOUR ANSWER HERE". No nbgrader needed; a teacher who uses nbgrader can take the
``.ipynb`` files of ``exercises/`` as they are.

    python exercises/make_student_copies.py [out_dir]
"""

import sys
from pathlib import Path

import jupytext

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
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


def write_student_copies(out_dir: Path) -> dict[str, int]:
    """Write every student copy into ``out_dir``; returns the stubs made per notebook."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stubs = {}
    for path in sorted(HERE.glob("E*.py")):
        notebook = jupytext.read(path)
        stubs[path.stem] = 0
        for cell in notebook.cells:
            if BEGIN in cell.source:
                stubs[path.stem] += cell.source.count(BEGIN)
                cell.source = strip_solutions(cell.source, cell.cell_type == "markdown")
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
        jupytext.write(notebook, out_dir / f"{path.stem}.ipynb")
    return stubs


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "student"
    for name, count in write_student_copies(out).items():
        print(f"{out / name}.ipynb: {count} solutions replaced by stubs")
