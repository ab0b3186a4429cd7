"""Worked toy solutions with controlled mistakes, for supervised warm-up and cold start.

A converged model imitates its data, so the rate of each mistake in the demonstrations sets the
policy's error rate, and with it a success rate with room for RL. Two kinds of mistakes:

* a mis-copied digit of the carried number (``p_copy_error`` per step), which is irrecoverable:
  the chain goes on from the wrong value;
* a call that raises (``p_syntax_error`` per step), followed by the correct retry: recoverable.

``p_hard_error`` mis-copies only the operand of :func:`~elpo_min.toy.hard_step`, for the regime
whose errors concentrate at one step.
"""

from __future__ import annotations

import random

from ..tools import safe_arith
from ..toy import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    CALL_CLOSE,
    CALL_OPEN,
    OUTPUT_CLOSE,
    OUTPUT_OPEN,
    Problem,
    hard_step,
)


def miscopy(number: str, rng: random.Random) -> str:
    """``number`` with one digit replaced (never by a new leading zero)."""
    # index of the leading digit
    first = int(number[0] == "-")
    pos = rng.randrange(first, len(number))
    choices = []
    for digit in "0123456789":
        leading_zero = pos == first and digit == "0" and len(number) > first + 1
        if digit != number[pos] and not leading_zero:
            choices.append(digit)
    return number[:pos] + rng.choice(choices) + number[pos + 1 :]


def demo_steps(
    problem: Problem,
    rng: random.Random,
    p_copy_error: float = 0.0,
    p_syntax_error: float = 0.0,
    p_hard_error: float = 0.0,
) -> tuple[list[tuple[str, str]], int]:
    """A worked solution as ``[(code, tool output), ...]`` and the final answer, with mistakes
    drawn from ``rng`` at the given rates (see the module docstring)."""
    calls, current = [], problem.start
    for step, (op, operand) in enumerate(problem.ops, start=1):
        carried = str(current)
        if rng.random() < p_copy_error:
            carried = miscopy(carried, rng)
        if p_hard_error and step == hard_step(problem) and rng.random() < p_hard_error:
            operand = miscopy(str(operand), rng)
        if rng.random() < p_syntax_error:
            broken = rng.choice(
                [f"{carried}{op}{operand})", f"{carried}{op}", f"({carried}{op}{operand}"]
            )
            calls.append((broken, safe_arith(broken).render()))
        code = f"{carried}{op}{operand}"
        current = int(safe_arith(code).stdout)
        calls.append((code, str(current)))
    return calls, current


def demo_pieces(
    problem: Problem,
    rng: random.Random,
    p_copy_error: float = 0.0,
    p_syntax_error: float = 0.0,
    fenced: bool = False,
    p_hard_error: float = 0.0,
) -> list[tuple[str, str | None]]:
    """:func:`demo_steps` as assistant pieces ``[(text, tool output or None)]``.

    The toy's tags, or (``fenced``) one ```python block per step and a ``\\boxed{}`` answer, for
    a chat model's cold start.
    """
    calls, answer = demo_steps(problem, rng, p_copy_error, p_syntax_error, p_hard_error)
    if not fenced:
        pieces = [(f"{CALL_OPEN}{code}{CALL_CLOSE}", out) for code, out in calls]
        return pieces + [(f"{ANSWER_OPEN}{answer}{ANSWER_CLOSE}", None)]
    pieces = []
    for i, (code, out) in enumerate(calls, start=1):
        pieces.append((f"Step {i}:\n```python\n{code}\n```", out))
    return pieces + [(f"The final answer is \\boxed{{{answer}}}.", None)]


def demonstration(
    problem: Problem, rng: random.Random, p_copy_error: float = 0.0, p_syntax_error: float = 0.0
) -> str:
    """:func:`demo_pieces` in the toy's tag format as one string (prompt excluded)."""
    text = ""
    for piece, out in demo_pieces(problem, rng, p_copy_error, p_syntax_error):
        text += piece
        if out is not None:
            text += f"{OUTPUT_OPEN}{out}{OUTPUT_CLOSE}"
    return text
