"""A task by name: its train and test problems, the user text of a problem, and the reward."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import toy
from ..errors import ConfigError, DataError
from .answers import check_answer
from .files import data_dir
from .toy_data import load_problems
from .word_problems import hub_problems, load_word_problems


@dataclass
class Task:
    """What the trainer needs from a task: problems, the user text, and the reward."""

    name: str
    train: list
    test: list
    # problem -> the user message (chat models)
    question: Callable
    # (problem, answer text or None) -> bool
    check: Callable


def chat_question(problem: toy.Problem) -> str:
    """The toy's user message for instruct models (the chat format)."""
    return "Apply these operations left to right: " + problem.prompt[3:].strip()


def check_word_answer(problem, answer: str | None) -> bool:
    return check_answer(answer, problem.answer)


def load_task(
    name: str,
    train_data: str | None = None,
    test_data: str | None = None,
    test_limit: int | None = None,
) -> Task:
    """The task called ``name`` (``toy``, ``gsm`` or ``hf:NAME[:CONFIG]``).

    ``train_data`` / ``test_data`` replace its shipped JSONL splits; ``test_limit`` keeps the
    first problems of the test split.
    """
    if name == "toy":
        train = load_problems(train_data or data_dir() / "toy_train.jsonl")
        test = load_problems(test_data or data_dir() / "toy_test.jsonl", test_limit)
        task = Task(name, train, test, chat_question, toy.check_answer)
    elif name == "gsm":
        train = load_word_problems(train_data or data_dir() / "gsm_train.jsonl")
        test = load_word_problems(test_data or data_dir() / "gsm_test.jsonl", test_limit)
        task = Task(name, train, test, lambda p: p.question, check_word_answer)
    elif name.startswith("hf:"):
        if train_data:
            train = load_word_problems(train_data)
        else:
            train = hub_problems(name[3:], "train")
        if test_data:
            test = load_word_problems(test_data, test_limit)
        else:
            test = hub_problems(name[3:], "test", test_limit)
        task = Task(name, train, test, lambda p: p.question, check_word_answer)
    else:
        raise ConfigError(
            f"unknown task {name!r}; use 'toy', 'gsm' or 'hf:<dataset name>' (e.g. hf:openai/gsm8k)"
        )
    for split, problems, path in (
        ("train", task.train, train_data),
        ("test", task.test, test_data),
    ):
        if not problems:
            raise DataError(
                f"the {split} split of task {name} ({path or 'shipped'}) has no problems"
            )
    return task
