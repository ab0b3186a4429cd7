"""The toy world's data files: JSONL rows ``{"id", "start", "ops": ["*7", "+710", ...], "answer"}``.

``python -m elpo_min make-data`` rewrites the shipped splits byte for byte from
:func:`~elpo_min.toy.generate_problems`; the test split is held out from every kind of training
data (:func:`held_out`).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError
from ..toy import OPS, Problem, generate_problems
from .files import data_dir, read_jsonl, write_jsonl

MAKE_DATA = "python -m elpo_min make-data"
# the shipped splits' sizes
N_TRAIN = 4000
N_TEST = 1000


def problem_to_row(problem: Problem) -> dict:
    ops = [f"{op}{x}" for op, x in problem.ops]
    return {"id": problem.id, "start": problem.start, "ops": ops, "answer": problem.answer}


def problem_from_row(row: dict) -> Problem:
    ops = tuple((op[0], int(op[1:])) for op in row["ops"])
    return Problem(row["start"], ops, id=row["id"])


def _check_chain(row: dict, where: str) -> None:
    """A row's ops must parse and its answer must be what the chain gives."""
    for op in row["ops"]:
        if not (isinstance(op, str) and re.fullmatch(r"[-+*]\d+", op)):
            raise DataError(
                f"{where}: field 'ops' needs strings like '*7' or '+120' "
                f"(op in {OPS!r}, then an integer), got {op!r}"
            )
    chained = problem_from_row(row).answer
    if chained != row["answer"]:
        raise DataError(
            f"{where}: field 'answer' is {row['answer']}, but the chain gives {chained}"
        )


def load_problems(path: str | Path, limit: int | None = None) -> list[Problem]:
    """The toy split at ``path``, every row validated (``path:line`` names a bad one)."""
    fields = {"id": str, "start": int, "ops": list, "answer": int}
    rows = read_jsonl(path, fields, MAKE_DATA, limit, _check_chain)
    return [problem_from_row(row) for row in rows]


def save_problems(problems: list[Problem], path: str | Path) -> None:
    """Write problems as a JSONL split that :func:`load_problems` reads back."""
    write_jsonl([problem_to_row(p) for p in problems], path)


def held_out(n_test: int = N_TEST) -> set:
    """``(start, ops)`` of the test split's problems: training data of any kind must avoid them."""
    return {(p.start, p.ops) for p in generate_problems(n_test, seed=2, prefix="test")}


def make_data(
    out_dir: str | Path | None = None, n_train: int = N_TRAIN, n_test: int = N_TEST
) -> None:
    """Write the shipped splits (deterministic: the same bytes on every run)."""
    out_dir = Path(out_dir) if out_dir else data_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    test = generate_problems(n_test, seed=2, prefix="test")
    test_keys = held_out(n_test)
    candidates = generate_problems(n_train + 50, seed=1, prefix="train")
    train = [p for p in candidates if (p.start, p.ops) not in test_keys][:n_train]
    save_problems(train, out_dir / "toy_train.jsonl")
    save_problems(test, out_dir / "toy_test.jsonl")
