"""How a check runs: cases one by one, a ✓ each, and at the first failure what went wrong.

A student's function is compared with the package's on hand-worked cases and seeded random
ones. At the first case that differs, the check prints the input, the expected value and what
the function returned, and then looks for a known mistake: each mistake is a function that says
whether the student's output is the one that mistake produces, with a one-line hint. The
reference code is never printed. A stub that still raises ``NotImplementedError`` gets "not
implemented yet" instead of a traceback.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

PASS, FAIL = "✓", "✗"


@dataclass
class Case:
    """One input to check: a name, the student's call, and the expected value."""

    name: str
    # () -> what the student's function returned (the case calls it with its own input)
    run: Callable[[], Any]
    expected: Any
    # what to print as the input when the case fails
    shown: str = ""
    # [(hint, output -> bool)]: known mistakes that produce this output
    mistakes: list = field(default_factory=list)


def close(a, b, tol: float = 1e-5) -> bool:
    """Equal within ``tol``, for numbers, tensors and (nested) lists or tuples of them."""
    if torch.is_tensor(a) or torch.is_tensor(b):
        a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
        return a.shape == b.shape and bool(torch.allclose(a, b, atol=tol, rtol=tol))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
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
    """Run the cases in order; print ✓ per case and stop at the first failure.

    Returns:
        True when every case passed.
    """
    print(title)
    for case in cases:
        try:
            got = case.run()
        except NotImplementedError:
            print("  not implemented yet")
            return False
        except Exception as error:  # the student's code raised: show it as one line
            print(f"  {FAIL} {case.name}: raised {type(error).__name__}: {error}")
            if case.shown:
                print(f"    input:    {case.shown}")
            for hint, matches in case.mistakes:
                if _safe(matches, error):
                    print(f"    hint: {hint}")
            return False
        if close(got, case.expected):
            print(f"  {PASS} {case.name}")
            continue
        print(f"  {FAIL} {case.name}")
        if case.shown:
            print(f"    input:    {case.shown}")
        print(f"    expected: {short(case.expected)}")
        print(f"    got:      {short(got)}")
        for hint, matches in case.mistakes:
            if _safe(matches, got):
                print(f"    hint: {hint}")
        return False
    print(f"  all {len(cases)} cases pass")
    return True


def _safe(matches: Callable, got) -> bool:
    """Does a mistake's detector recognise ``got``? A detector that fails says no."""
    try:
        return bool(matches(got))
    except Exception:
        return False


def make_case(name, fn, args, expected, mistakes=(), shown=None) -> Case:
    """A case that calls ``fn`` on a fresh copy of ``args``, so in-place edits stay local."""
    return Case(
        name,
        lambda: fn(*copy.deepcopy(args)),
        expected,
        shown if shown is not None else ", ".join(short(a, 120) for a in args),
        list(mistakes),
    )
