"""Exercise E2's check: binary error localization under a budget (Algorithm 1).

The probe is a simulated policy whose prefixes are recoverable before a known step; it records
every call, so a search that asks for zero continuations or spends past its budget shows."""

from __future__ import annotations

import random

from ..bel import search_steps
from .checker import Case, close, run_check

# the usual mistakes, one hint each
MIDPOINT_UP = "the anchor is m = floor((L + R) / 2); rounding up probes a step too far right"
PROBE_ZERO = "probe was called with n = 0: stop when the budget is gone instead"
OVER_BUDGET = "the search spent more than its budget: ask for min(X_m, budget left)"
K_SMALL = "with K <= 1 there is nothing to search: return t_crit = 1 without probing"


def recoverable_probe(first_dead: int, chance: float, seed: int):
    """``probe(m, n)`` for a policy whose prefixes are recoverable (with ``chance`` per
    continuation) before step ``first_dead`` and lost from it on; it records every call."""
    rng = random.Random(seed)
    calls = []

    def probe(m: int, n: int) -> list[bool]:
        calls.append((m, n))
        return [m < first_dead and rng.random() < chance for _ in range(n)]

    return probe, calls


def reference_search(num_steps, budget, n_suffix, first_dead, chance, seed, anchor=None):
    """What Algorithm 1 returns on the recorded probe: ``(t_crit, probes, calls)``."""
    probe, calls = recoverable_probe(first_dead, chance, seed)
    kwargs = {"anchor": anchor} if anchor else {}
    search = search_steps(num_steps, budget, n_suffix, **kwargs)
    try:
        request = next(search)
        while True:
            request = search.send(probe(*request))
    except StopIteration as stop:
        return stop.value.t_crit, stop.value.probes, calls


def check_bel_search(fn) -> bool:
    """``fn(num_steps, probe, budget, n_suffix) -> (t_crit, probes)``; ``n_suffix`` is an int
    or ``m -> int``, ``probes`` the list of ``(m, outcomes)`` in order."""
    inputs = [
        ("worked example: K = 6, lost from step 4", (6, 16, 2, 4, 1.0, 0)),
        ("K = 1: nothing to search", (1, 16, 2, 1, 1.0, 0)),
        ("K = 0: nothing to search", (0, 16, 2, 1, 1.0, 0)),
        ("every probe fails: t_crit = 1", (8, 16, 2, 1, 1.0, 0)),
        ("every probe succeeds: t_crit = K", (8, 16, 2, 9, 1.0, 0)),
        ("the budget runs out mid-search", (8, 3, 2, 6, 1.0, 0)),
        ("X_m from a function of m", (9, 20, lambda m: 1 + m % 3, 5, 1.0, 0)),
    ]
    rng = random.Random(2)
    for i in range(4):
        k = rng.randint(2, 10)
        inputs.append((f"random, K = {k}", (k, rng.randint(2, 12), 2, rng.randint(1, k), 0.5, i)))
    cases = []
    for name, (k, budget, n_suffix, first_dead, chance, seed) in inputs:
        setting = (k, budget, n_suffix, first_dead, chance, seed)
        expected = reference_search(*setting)
        ceiling = reference_search(*setting, anchor=lambda left, right: (left + right + 1) // 2)
        mistakes = [
            (PROBE_ZERO, lambda got: any(n == 0 for _, n in got[2])),
            (OVER_BUDGET, lambda got, b=budget: sum(n for _, n in got[2]) > b),
            (MIDPOINT_UP, lambda got, c=ceiling, e=expected: not close(c, e) and close(got, c)),
        ]
        if k <= 1:
            mistakes.append((K_SMALL, lambda got: True))
        x_m = "a function of m" if callable(n_suffix) else n_suffix
        shown = f"num_steps={k}, budget={budget}, n_suffix={x_m}"
        shown += f"; continuations succeed before step {first_dead}"
        cases.append(Case(name, run_search(fn, setting), expected, shown, mistakes))
    return run_check("binary error localization (Algorithm 1)", cases)


def run_search(fn, setting):
    """The call of a search case: the student's ``(t_crit, probes)`` and the probe's calls."""
    k, budget, n_suffix, first_dead, chance, seed = setting

    def run():
        probe, calls = recoverable_probe(first_dead, chance, seed)
        t_crit, probes = fn(k, probe, budget, n_suffix)
        return t_crit, [(m, list(o)) for m, o in probes], calls

    return run
