"""How a check runs: cases one by one, a ✓ each, and at the first failure what went wrong.

A student's function is compared with the package's on hand-worked cases and seeded random
ones. At the first case that differs, the check prints the input, the expected value and what
the function returned, and names the mistake behind it when it recognises one.

A known mistake is a :class:`Mistake`: a one-line hint, and either the output the mistake
produces on this case (``predicted``, computed by running a wrong version of the reference) or
a test on the output (``symptom``, for mistakes that show in how the function behaved, such as
a search that spent past its budget). A hint is printed only when it explains the student's
output on the failing case, and, for predicted mistakes, also agrees with every other case:
a mistake that would have given another output anywhere is not the student's mistake. Two
mistakes can produce the same wrong number on one case; the other cases tell them apart.

The reference code is never printed. A stub that still raises ``NotImplementedError`` gets
"not implemented yet" instead of a traceback.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

PASS, FAIL = "✓", "✗"
# "no prediction": a Mistake with a symptom instead
_NOTHING = object()


@dataclass
class Mistake:
    """A usual mistake on one case: its hint, and how to recognise its output."""

    hint: str
    # the output the mistake gives on this case (an exception instance for one that raises)
    predicted: Any = _NOTHING
    # or: output -> bool, true when the output shows the mistake
    symptom: Callable | None = None
    # how an output is compared with the prediction: the case's comparison (set by the case)
    same: Callable | None = None

    @property
    def predicts(self) -> bool:
        return self.predicted is not _NOTHING

    def matches(self, got) -> bool:
        if self.predicts:
            if isinstance(self.predicted, BaseException):
                return isinstance(got, type(self.predicted))
            same = self.same or close
            return not isinstance(got, BaseException) and _safe(
                lambda g: same(g, self.predicted), got
            )
        return _safe(self.symptom, got)


def wrong(hint: str, predicted) -> Mistake:
    """A mistake recognised by the output it produces."""
    return Mistake(hint, predicted=predicted)


def symptom(hint: str, test: Callable) -> Mistake:
    """A mistake recognised by a test on the output (or on the exception raised)."""
    return Mistake(hint, symptom=test)


@dataclass
class Case:
    """One input to check: a name, the student's call, and the expected value."""

    name: str
    # () -> what the student's function returned (the case calls it with its own input)
    run: Callable[[], Any]
    expected: Any
    # what to print as the input when the case fails
    shown: str = ""
    # the usual mistakes that give a wrong output on this case
    mistakes: list = field(default_factory=list)
    # (got, expected) -> bool; default: equal within 1e-5
    same: Callable | None = None

    def __post_init__(self):
        # every mistake's prediction, the right ones included: a mistake that gets this case
        # right does not explain a student who got it wrong
        for mistake in self.mistakes:
            mistake.same = self.same
        self.predictions = [m for m in self.mistakes if m.predicts]
        # a predicted mistake that gives the right answer here is no sign of anything
        self.mistakes = [m for m in self.mistakes if not self._harmless(m)]

    def _harmless(self, mistake: Mistake) -> bool:
        if not mistake.predicts or isinstance(mistake.predicted, BaseException):
            return False
        return self.passes(mistake.predicted)

    def passes(self, got) -> bool:
        if isinstance(got, BaseException):
            return False
        return _safe(lambda g: (self.same or close)(g, self.expected), got)


def close(a, b, tol: float = 1e-5) -> bool:
    """Equal within ``tol``, for numbers, tensors and (nested) lists or tuples of them.

    NaN equals nothing, so a NaN output never passes."""
    if torch.is_tensor(a) or torch.is_tensor(b):
        try:
            a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            return False
        return a.shape == b.shape and bool(torch.allclose(a, b, atol=tol, rtol=tol))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b and type(a) is type(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    return a == b


def short(value, width: int = 300) -> str:
    """A value as text, cut to ``width`` characters."""
    if torch.is_tensor(value):
        value = [round(v, 4) for v in value.double().flatten().tolist()]
    text = repr(value)
    return text if len(text) <= width else text[:width] + " ..."


def run_check(title: str, cases: list[Case]) -> bool:
    """Run the cases in order; print ✓ per case and stop printing at the first failure.

    After a failure the remaining cases still run, silently: their outputs decide which hint
    explains the student's answer (see the module's docstring).

    Returns:
        True when every case passed.
    """
    print(title)
    outcomes = []
    failed = None
    for index, case in enumerate(cases):
        try:
            got = case.run()
        except NotImplementedError:
            if failed is None:
                print("  not implemented yet")
                return False
            got = NotImplementedError()
        except Exception as error:  # the student's code raised: keep it as the outcome
            got = error
        outcomes.append(got)
        if failed is not None:
            continue
        if case.passes(got):
            print(f"  {PASS} {case.name}")
            continue
        failed = index
        report(case, got)
    if failed is None:
        print(f"  all {len(cases)} cases pass")
        return True
    for hint in diagnose(cases, outcomes, failed):
        print(f"    hint: {hint}")
    return False


def report(case: Case, got) -> None:
    """The failing case: its input, the expected value and what came back."""
    if isinstance(got, BaseException):
        print(f"  {FAIL} {case.name}: raised {type(got).__name__}: {got}")
        if case.shown:
            print(f"    input:    {case.shown}")
        return
    print(f"  {FAIL} {case.name}")
    if case.shown:
        print(f"    input:    {case.shown}")
    print(f"    expected: {short(case.expected)}")
    print(f"    got:      {short(got)}")


def diagnose(cases: list[Case], outcomes: list, failed: int) -> list[str]:
    """The hints that explain the output of the first failing case, and agree with the rest.

    A hint is a candidate when one of its mistakes matches the failing output. A candidate is
    shown only if its predicted outputs match the student's on every case (a prediction that
    is right on a case the student got wrong counts against it too). A student with two
    mistakes at once may get no hint: a hint that explains one case and contradicts another
    would name a mistake the answer does not show.
    """
    candidates = []
    for mistake in cases[failed].mistakes:
        if mistake.matches(outcomes[failed]) and mistake.hint not in candidates:
            candidates.append(mistake.hint)

    def agrees(hint: str) -> bool:
        for case, got in zip(cases, outcomes):
            for mistake in case.predictions:
                if mistake.hint == hint and not mistake.matches(got):
                    return False
        return True

    return [hint for hint in candidates if agrees(hint)]


def _safe(matches: Callable, got) -> bool:
    """Does a test recognise ``got``? A test that fails says no."""
    try:
        return bool(matches(got))
    except Exception:
        return False


def outcome_of(fn: Callable, *args, copy_args: bool = True, **kwargs):
    """``fn(*args, **kwargs)`` on a copy of ``args``, or the exception it raised: how a wrong
    version's output is predicted. ``copy_args=False``: on ``args`` as they are (see
    :func:`make_case`)."""
    try:
        return fn(*(copy.deepcopy(args) if copy_args else args), **kwargs)
    except Exception as error:
        return error


def make_case(name, fn, args, expected, mistakes=(), shown=None, same=None, copy_args=True):
    """A case that calls ``fn`` on a fresh copy of ``args``, so in-place edits stay local.

    ``copy_args=False`` passes ``args`` as they are, for inputs that a copy would break (BEL's
    trees key their parents by the ids of their trajectories)."""
    if copy_args:
        run = lambda: fn(*copy.deepcopy(args))  # noqa: E731
    else:
        run = lambda: fn(*args)  # noqa: E731
    shown = shown if shown is not None else ", ".join(short(a, 120) for a in args)
    return Case(name, run, expected, shown, list(mistakes), same)
