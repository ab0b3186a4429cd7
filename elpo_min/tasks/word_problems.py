"""GSM8K-style word problems: the shipped gsm splits and hub datasets in GSM8K or MATH layout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, MissingExtra, NeedsNetwork
from .fenced import last_boxed
from .files import data_dir, read_jsonl, write_jsonl

# split -> (size, seed)
GSM_SPLITS = {"train": (2000, 11), "val": (200, 12), "test": (500, 13)}
MAKE_GSM = "python -m elpo_min make-data --task gsm"


@dataclass(frozen=True)
class WordProblem:
    """A word problem with its gold answer (a string math-verify can parse)."""

    question: str
    answer: str
    id: str = ""


def make_gsm_data(out_dir: str | Path | None = None) -> None:
    """Write ``gsm_{train,val,test}.jsonl`` from reasoning-gym's ``gsm_symbolic``.

    Seeded, so byte for byte the same files; a question already in an earlier split is skipped.
    """
    try:
        import reasoning_gym
    except ImportError:
        raise MissingExtra(
            "regenerating the gsm splits needs reasoning-gym: pip install reasoning-gym"
        ) from None
    out_dir = Path(out_dir) if out_dir else data_dir()
    seen = set()
    for split, (size, seed) in GSM_SPLITS.items():
        rows = []
        source = iter(reasoning_gym.create_dataset("gsm_symbolic", size=3 * size, seed=seed))
        while len(rows) < size:
            item = next(source)
            if item["question"] not in seen:
                seen.add(item["question"])
                row_id = f"gsm-{split}-{len(rows)}"
                rows.append(
                    {"id": row_id, "question": item["question"], "answer": str(item["answer"])}
                )
        write_jsonl(rows, out_dir / f"gsm_{split}.jsonl")


def load_word_problems(path: str | Path, limit: int | None = None) -> list[WordProblem]:
    """A JSONL split of ``{"id", "question", "answer"}`` rows, every row validated."""
    fields = {"id": str, "question": str, "answer": str}
    rows = read_jsonl(path, fields, MAKE_GSM, limit)
    return [WordProblem(row["question"], row["answer"], row["id"]) for row in rows]


def hub_problems(name: str, split: str, limit: int | None = None) -> list[WordProblem]:
    """A hub dataset in GSM8K or MATH layout, by ``NAME[:CONFIG]`` (needs network access)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        raise NeedsNetwork(
            f"--task hf:{name} downloads from the Hugging Face hub, but HF_HUB_OFFLINE is set. "
            "Unset HF_HUB_OFFLINE (and HF_DATASETS_OFFLINE) with network access, or use "
            "--task gsm (shipped offline)"
        )
    import datasets

    repo, _, config = name.partition(":")
    config = config or ("main" if repo == "openai/gsm8k" else None)
    rows = datasets.load_dataset(repo, config, split=split)
    out = []
    count = len(rows) if limit is None else min(limit, len(rows))
    for i, row in enumerate(rows.select(range(count))):
        problem_id = f"{repo}-{split}-{i}"
        if "question" in row and "answer" in row:
            # GSM8K: the answer ends in '#### N'
            gold = str(row["answer"]).rsplit("####", 1)[-1].strip().replace(",", "")
            out.append(WordProblem(row["question"], gold, problem_id))
        elif "problem" in row and "solution" in row:
            # MATH: the answer is the last \boxed{}
            out.append(WordProblem(row["problem"], last_boxed(row["solution"]) or "", problem_id))
        else:
            raise DataError(
                f"hub dataset {repo} row {i} has fields {sorted(row)}; expected GSM8K layout "
                "(question, answer) or MATH layout (problem, solution)"
            )
    return out
