"""``python -m elpo_min.course``: grade students' exercise notebooks, list the points, or
estimate the time each notebook takes.

    python -m elpo_min.course grade PATH [--csv FILE] [--timeout S] [--source DIR]
    python -m elpo_min.course points [--source DIR]
    python -m elpo_min.course times

PATH is one notebook, a folder of one student's notebooks, or a class folder with one
subfolder per student.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import grading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m elpo_min.course", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="run and score students' notebooks")
    grade.add_argument("path", type=Path, help="a notebook, a student's folder, or a class folder")
    grade.add_argument("--csv", type=Path, help="write one row per student to this file")
    grade.add_argument(
        "--timeout", type=int, default=600, help="seconds a cell may run (default 600)"
    )
    grade.add_argument(
        "--source",
        type=Path,
        default=grading.default_sources(),
        help="the exercise sources, exercises/E*.py (default: the checkout's)",
    )
    points = commands.add_parser("points", help="the points of every graded part")
    points.add_argument("--source", type=Path, default=grading.default_sources())
    commands.add_parser("times", help="the estimated time of every notebook, and how")
    args = parser.parse_args(argv)
    try:
        if args.command == "grade":
            grading.grade(args.path, args.source, args.timeout, args.csv)
        elif args.command == "points":
            print_points(args.source)
        else:
            from .estimates import print_estimates

            print_estimates()
    except (FileNotFoundError, ValueError) as error:
        print(f"python -m elpo_min.course {args.command}: {error}", file=sys.stderr)
        return 2
    return 0


def print_points(sources: Path) -> None:
    """Every graded part of every exercise, with its points: the rubric's table."""
    total = 0.0
    for path, parts in grading.exercise_sources(sources).values():
        print(f"{path.stem}")
        for part in parts:
            kind = "check" if part.automatic else "written, by hand"
            print(f"  {part.grade_id:32s} {part.points:>3g}  {kind}")
            total += part.points
    print(f"total {total:g}")


if __name__ == "__main__":
    sys.exit(main())
