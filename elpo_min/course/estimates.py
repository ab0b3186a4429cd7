"""How long a notebook takes a student: an estimate from what it asks, not a measurement.

Nobody has timed students on these notebooks. The estimate counts what a student has to do
and prices each unit with an assumed rate, so that the numbers can be recomputed, checked
against a real class, and corrected in one place:

* read prose (markdown, solutions left out) at ``READ_WPM`` words a minute, a slow rate for
  text with equations;
* read code: a lesson's cells at ``LESSON_CODE_LPM`` lines a minute (read, run, look at the
  output), an exercise's given code at ``GIVEN_CODE_LPM`` (read closely: two exercises are
  about finding bugs in it);
* write code: ``MINUTES_PER_SOLUTION_LINE`` per line of the reference solution (think,
  write, run the check, fix), the largest term; a line that the notebook already shows
  elsewhere (the given buggy function a fix starts from) is copied, not written, and free;
* write prose: the reference answers' words at ``WRITE_WPM`` words a minute;
* wait for the computer: ``COMPUTE_MINUTES``, from the runs measured on the 2-core
  development machine (notebook 05's 41 s alone, E9's full-size run 73 s); other notebooks
  run in seconds;
* a lesson adds ``TRY_NEXT_MINUTES`` for one "What to try next".

Totals are rounded up to 5 minutes. ``python -m elpo_min.course times`` prints the table the
teacher's kit quotes; the exercise headers carry the same numbers (a test keeps them equal).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from .grading import default_sources, exercise_order

READ_WPM = 120
LESSON_CODE_LPM = 6
GIVEN_CODE_LPM = 3
MINUTES_PER_SOLUTION_LINE = 2.0
WRITE_WPM = 12
TRY_NEXT_MINUTES = 5
COMPUTE_MINUTES = {"05": 0.7, "E9": 1.2}

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)


@dataclass
class Estimate:
    """What one notebook asks of a student, and the minutes that prices."""

    name: str
    prose_words: int
    code_lines: int
    solution_lines: int
    answer_words: int
    compute_minutes: float
    lesson: bool

    @property
    def minutes(self) -> int:
        code_rate = LESSON_CODE_LPM if self.lesson else GIVEN_CODE_LPM
        total = (
            self.prose_words / READ_WPM
            + self.code_lines / code_rate
            + self.solution_lines * MINUTES_PER_SOLUTION_LINE
            + self.answer_words / WRITE_WPM
            + self.compute_minutes
            + (TRY_NEXT_MINUTES if self.lesson else 0)
        )
        return 5 * math.ceil(total / 5)


def lines_of(source: str) -> list[str]:
    """The lines that are code, stripped: no blank lines, comments, imports or closing
    brackets."""
    lines = []
    for line in source.splitlines():
        text = line.strip()
        if text and not text.startswith(("#", "import ", "from ")) and text not in ")]}":
            lines.append(text)
    return lines


def estimate(path: Path) -> Estimate:
    """The estimate of one notebook's jupytext source."""
    import jupytext

    lesson = path.parent.name == "notebooks"
    cells = jupytext.read(path).cells
    shown_code = set()
    for cell in cells:
        if cell.cell_type == "code":
            shown_code |= set(lines_of(SOLUTION.sub("", HIDDEN.sub("", cell.source))))
    prose = code = solution = answers = 0
    for cell in cells:
        source = HIDDEN.sub("", cell.source)
        solved = "\n".join(SOLUTION.findall(source))
        shown = SOLUTION.sub("", source)
        if cell.cell_type == "markdown":
            prose += len(shown.split())
            answers += len(solved.split())
        else:
            code += len(lines_of(shown))
            solution += sum(line not in shown_code for line in lines_of(solved))
    key = path.stem.split("_")[0]
    return Estimate(path.stem, prose, code, solution, answers, COMPUTE_MINUTES.get(key, 0), lesson)


def all_estimates() -> list[Estimate]:
    lessons = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
    exercises = sorted(default_sources().glob("E*.py"), key=exercise_order)
    return [estimate(path) for path in lessons + exercises]


def print_estimates() -> None:
    print(__doc__.split("\n\n")[0])
    print(
        f"{'notebook':42s} {'prose':>6s} {'code':>5s} {'to write':>8s} {'answers':>8s} {'min':>4s}"
    )
    for e in all_estimates():
        print(
            f"{e.name:42s} {e.prose_words:6d} {e.code_lines:5d} {e.solution_lines:8d} "
            f"{e.answer_words:8d} {e.minutes:4d}"
        )
    print("prose and answers in words, code in lines; see elpo_min/course/estimates.py")
