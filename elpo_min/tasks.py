"""Tasks: a name in, train/test problems and a reward out (SPEC 6b).

* ``toy``: the chain-arithmetic world of :mod:`elpo_min.toy` (exact integer answers).
* ``gsm``: GSM8K-style word problems shipped in ``data/gsm_{train,val,test}.jsonl``,
  generated offline by reasoning-gym's ``gsm_symbolic`` (``python -m elpo_min make-data
  --task gsm`` rewrites them byte for byte).
* ``hf:NAME[:CONFIG]``: any hub dataset in GSM8K layout (``question``, ``answer`` ending
  in ``#### N``) or MATH layout (``problem``, ``solution`` with ``\\boxed{}``), for users
  with network access.

Word-problem answers are judged by :func:`check_answer` (math-verify underneath:
``\\boxed{\\dfrac{3}{4}}``, ``0.75``, ``18.00``, ``1,234``, ``x = 5`` all count);
:func:`answer_outcome` also says *why* one failed (no answer / unparseable / wrong).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import toy

DATA = Path(__file__).resolve().parent.parent / "data"
GSM_SPLITS = {"train": (2000, 11), "val": (200, 12), "test": (500, 13)}  # split -> (size, seed)
TIR_SYSTEM_PROMPT = (
    "Solve the problem by reasoning step by step and using Python. To run code, write one "
    "```python block and stop; its result comes back in an ```output block. Variables persist "
    "between blocks. Put the final answer in \\boxed{}.")


@dataclass(frozen=True)
class WordProblem:
    """A word problem with its gold answer (a string math-verify can parse)."""

    question: str
    answer: str
    id: str = ""


@dataclass
class Task:
    """What the trainer needs from a task: problems, the user text, and the reward."""

    name: str
    train: list
    test: list
    question: Callable  # problem -> user message (chat models)
    check: Callable  # (problem, answer text | None) -> bool


def last_boxed(text: str) -> str | None:
    """Contents of the last ``\\boxed{...}`` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)) if start >= 0 else ():
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j]
    return None


def _timeout() -> int | None:  # math-verify's timeouts use SIGALRM, which only the main thread may set
    return 5 if threading.current_thread() is threading.main_thread() else None


def _parse(text: str) -> list:
    from math_verify import parse

    text = text[-1000:]  # what a final answer needs; bounds math-verify's work
    found = parse(text, parsing_timeout=_timeout())
    if not found and "\\" in text and "$" not in text:  # bare LaTeX (\dfrac{3}{4}) is only found inside $...$
        found = parse(f"${text}$", parsing_timeout=_timeout())
    return found


def answer_outcome(prediction: str | None, gold: str) -> str:
    """``"correct"``, ``"no answer"``, ``"unparseable"`` or ``"wrong"``; never raises."""
    if prediction is None or not prediction.strip():
        return "no answer"
    try:
        from math_verify import verify

        found = _parse(prediction.replace("\\!", ""))
        if not found:
            return "unparseable"
        return "correct" if verify(_parse(gold), found, timeout_seconds=_timeout()) else "wrong"
    except Exception:  # math-verify on pathological text: an answer we cannot read
        return "unparseable"


def check_answer(prediction: str, gold: str) -> bool:
    """Is the model's final answer mathematically equal to ``gold``? (SPEC 4; never raises)."""
    return answer_outcome(prediction, gold) == "correct"


def make_gsm_data(out_dir: str | Path = DATA) -> None:
    """Write ``gsm_{train,val,test}.jsonl`` from reasoning-gym's ``gsm_symbolic`` (seeded,
    byte for byte; a question already in an earlier split is skipped)."""
    try:
        import reasoning_gym
    except ImportError:
        raise ImportError("regenerating the gsm splits needs reasoning-gym: pip install reasoning-gym") from None
    seen = set()
    for split, (size, seed) in GSM_SPLITS.items():
        rows, source = [], iter(reasoning_gym.create_dataset("gsm_symbolic", size=3 * size, seed=seed))
        while len(rows) < size:
            item = next(source)
            if item["question"] not in seen:
                seen.add(item["question"])
                rows.append({"id": f"gsm-{split}-{len(rows)}", "question": item["question"],
                             "answer": str(item["answer"])})
        with open(Path(out_dir) / f"gsm_{split}.jsonl", "w") as f:
            f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in rows)


def load_word_problems(path: str | Path, limit: int | None = None) -> list[WordProblem]:
    """A JSONL split of ``{"id", "question", "answer"}`` rows, every row validated."""
    rows = toy.read_jsonl(path, {"id": str, "question": str, "answer": str},
                          "python -m elpo_min make-data --task gsm", limit)
    return [WordProblem(r["question"], r["answer"], r["id"]) for r in rows]


def hub_problems(name: str, split: str, limit: int | None = None) -> list[WordProblem]:
    """A hub dataset in GSM8K or MATH layout, by ``NAME[:CONFIG]`` (needs network access)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        raise RuntimeError(f"--task hf:{name} downloads from the Hugging Face hub, but HF_HUB_OFFLINE is set. "
                           "Unset HF_HUB_OFFLINE (and HF_DATASETS_OFFLINE) with network access, or use "
                           "--task gsm (shipped offline)")
    import datasets

    repo, _, config = name.partition(":")
    rows = datasets.load_dataset(repo, config or ("main" if repo == "openai/gsm8k" else None), split=split)
    out = []
    for i, row in enumerate(rows.select(range(min(limit or len(rows), len(rows))))):
        if "question" in row and "answer" in row:  # GSM8K: the answer ends in '#### N'
            gold = str(row["answer"]).rsplit("####", 1)[-1].strip().replace(",", "")
            out.append(WordProblem(row["question"], gold, f"{repo}-{split}-{i}"))
        elif "problem" in row and "solution" in row:  # MATH: the answer is the last \boxed{}
            out.append(WordProblem(row["problem"], last_boxed(row["solution"]) or "", f"{repo}-{split}-{i}"))
        else:
            raise ValueError(f"hub dataset {repo} row {i} has fields {sorted(row)}; expected GSM8K layout "
                             "(question, answer) or MATH layout (problem, solution)")
    return out


def load_task(name: str, train_data: str | None = None, test_data: str | None = None,
              test_limit: int | None = None) -> Task:
    """The task called ``name`` (``toy``, ``gsm`` or ``hf:NAME[:CONFIG]``); ``train_data`` /
    ``test_data`` replace its shipped JSONL splits."""
    def word_check(problem, answer):
        return check_answer(answer, problem.answer)

    if name == "toy":
        train, test = (toy.load_problems(path, limit) for path, limit in (
            (train_data or DATA / "toy_train.jsonl", None), (test_data or DATA / "toy_test.jsonl", test_limit)))
        return Task(name, [*map(toy.problem_from_row, train)], [*map(toy.problem_from_row, test)],
                    toy.chat_question, toy.check_answer)
    if name == "gsm":
        return Task(name, load_word_problems(train_data or DATA / "gsm_train.jsonl"),
                    load_word_problems(test_data or DATA / "gsm_test.jsonl", test_limit),
                    lambda p: p.question, word_check)
    if name.startswith("hf:"):
        train = load_word_problems(train_data) if train_data else hub_problems(name[3:], "train")
        test = load_word_problems(test_data, test_limit) if test_data else hub_problems(name[3:], "test", test_limit)
        return Task(name, train, test, lambda p: p.question, word_check)
    raise ValueError(f"unknown task {name!r}; use 'toy', 'gsm' or 'hf:<dataset name>' (e.g. hf:openai/gsm8k)")

