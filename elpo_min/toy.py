"""The toy tool-integrated-reasoning world: chain arithmetic that needs the tool.

A problem is a start number and a chain of operations applied left to right::

    Q: 4821 *7 +7710 -5          (prompt, ends with a newline)
    <c>4821*7</c><o>33747</o>     step 1: the policy copies numbers, the tool computes
    <c>33747+7710</c><o>41457</o> step 2
    <c>41457-5</c><o>41452</o>    step 3
    <a>41452</a>                  final answer (not a step)

The policy never does arithmetic itself; it must carry each tool output into the next call.
That gives the two kinds of mistakes ELPO is about:

* **recoverable**: a call that raises (``<c>33747+7710)</c>`` gives a SyntaxError); the correct
  number is still in context, so a retry repairs it;
* **irrecoverable**: a wrong number carried forward (a mis-copied digit); every later tool output
  is wrong, and nothing in context says so.

Two oracles read a trajectory's tool outputs against the correct computation:
:func:`first_error_step` names the first step whose output departs from it, and
:func:`fatal_step` the first *fatal* one (a wrong value carried forward and never repaired),
which is what BEL's t_crit should find. Both are policy-independent; which departures a given
policy cannot recover from is what BEL estimates.

The shipped splits (``data/toy_*.jsonl``) are made by :func:`generate_problems`; their files
are read and written by :mod:`elpo_min.tasks.toy_data`.
"""

from __future__ import annotations

import operator
import random
import re
from dataclasses import dataclass

CALL_OPEN, CALL_CLOSE = "<c>", "</c>"
OUTPUT_OPEN, OUTPUT_CLOSE = "<o>", "</o>"
ANSWER_OPEN, ANSWER_CLOSE = "<a>", "</a>"
MARKERS = [CALL_OPEN, CALL_CLOSE, OUTPUT_OPEN, OUTPUT_CLOSE, ANSWER_OPEN, ANSWER_CLOSE]
OPS = "+-*"
APPLY = {"+": operator.add, "-": operator.sub, "*": operator.mul}


@dataclass(frozen=True)
class Problem:
    """One chain-arithmetic problem. ``ops`` is a tuple of ``(op, operand)``."""

    start: int
    ops: tuple[tuple[str, int], ...]
    id: str = ""

    @property
    def values(self) -> list[int]:
        """Correct intermediate values v_0 = start, v_i = v_{i-1} op_i operand_i."""
        values = [self.start]
        for op, operand in self.ops:
            values.append(APPLY[op](values[-1], operand))
        return values

    @property
    def answer(self) -> int:
        return self.values[-1]

    @property
    def prompt(self) -> str:
        chain = " ".join([str(self.start)] + [f"{op}{x}" for op, x in self.ops])
        return f"Q: {chain}\n"


def generate_problems(
    n: int,
    seed: int,
    min_ops: int = 3,
    max_ops: int = 6,
    digits: int = 3,
    prefix: str = "p",
    hard_digits: int = 0,
) -> list[Problem]:
    """Seeded problems.

    Args:
        n, seed: how many, and the seed that makes them.
        min_ops, max_ops: operations per problem.
        digits: of the start number and of +/- operands; multipliers are 2-9, so values stay
            at most ~10 digits.
        prefix: ids are ``f"{prefix}{seed}-{i}"``.
        hard_digits: > 0 turns one random step into +/- a ``hard_digits``-digit operand
            (:func:`hard_step` finds it).
    """
    if not 1 <= min_ops <= max_ops:
        raise ValueError(f"need 1 <= min_ops <= max_ops, got {min_ops}, {max_ops}")
    rng = random.Random(seed)
    lo, hi = 10 ** (digits - 1), 10**digits - 1
    problems = []
    for i in range(n):
        ops = []
        for _ in range(rng.randint(min_ops, max_ops)):
            op = rng.choice(OPS)
            operand = rng.randint(2, 9) if op == "*" else rng.randint(lo, hi)
            ops.append((op, operand))
        if hard_digits:
            # this order of draws is the one the shipped regime data was made with
            hard_op = rng.choice("+-")
            hard_operand = rng.randint(10 ** (hard_digits - 1), 10**hard_digits - 1)
            ops[rng.randrange(len(ops))] = (hard_op, hard_operand)
        problems.append(Problem(rng.randint(lo, hi), tuple(ops), id=f"{prefix}{seed}-{i}"))
    return problems


def parse_turn(
    text: str, call=(CALL_OPEN, CALL_CLOSE), answer=(ANSWER_OPEN, ANSWER_CLOSE)
) -> tuple[str | None, str | None]:
    """Split one generated assistant turn into ``(code, answer)``; both None if malformed.

    A call wins over an answer in the same turn (the turn stopped at the call's end).
    """
    for (open_, close), is_code in ((call, True), (answer, False)):
        found = re.search(re.escape(open_) + r"(.*?)" + re.escape(close), text, re.S)
        if found:
            return (found.group(1), None) if is_code else (None, found.group(1))
    return None, None


def check_answer(problem: Problem, answer: str | None) -> bool:
    """Exact integer match; anything that is not an integer is wrong."""
    try:
        return answer is not None and int(answer.strip()) == problem.answer
    except ValueError:
        return False


def first_error_step(problem: Problem, tool_outputs: list[str]) -> int | None:
    """The first step whose output departs from the correct computation (1-based), or None.

    Step i is correct when its output is the next correct value ``v_{done+1}`` (then ``done``
    advances); an error followed by a repair still counts.
    """
    values, done, first = problem.values, 0, None
    for i, out in enumerate(tool_outputs, start=1):
        if done < len(values) - 1 and out.strip() == str(values[done + 1]):
            done += 1
        elif first is None:
            first = i
    return first


def fatal_step(problem: Problem, tool_outputs: list[str]) -> int | None:
    """The first *irrecoverable* step: the first wrong numeric output after the last step that
    advanced the chain (1-based).

    None for a success; for a failure whose only mistakes were calls that raised (recoverable
    slips, retried); for a wrong value that a later step repaired (the chain advanced after it);
    and for a wrong final copy (every step advanced).
    """
    values, done, last_advance = problem.values, 0, 0
    for i, out in enumerate(tool_outputs, start=1):
        if done < len(values) - 1 and out.strip() == str(values[done + 1]):
            done, last_advance = done + 1, i
    for i, out in enumerate(tool_outputs, start=1):
        if i > last_advance and re.fullmatch(r"-?\d+", out.strip()):
            return i
    return None


def hard_step(problem: Problem) -> int:
    """The 1-based step with the longest operand (the first of equals): ``hard_digits``'s step."""
    lengths = [len(str(operand)) for _, operand in problem.ops]
    return lengths.index(max(lengths)) + 1
