"""Exercise E2's check: binary error localization under a budget (Algorithm 1).

The probe is a simulated policy whose prefixes are recoverable (with a chance per
continuation) before a known step and lost from it on; it records every call, so a search that
asks for zero continuations or spends past its budget shows. Chances below 1 give probes with
mixed outcomes, which is where ``any`` and ``all`` part ways. The worked example replays the
outcomes that notebook 02's search drew.

Every usual mistake of the search is a knob of :func:`wrong_search`, which is Algorithm 1 with
its defaults; the check predicts each mistake's answer by turning one knob.
"""

from __future__ import annotations

import random

from ..bel import binary_error_localization
from .checker import Case, outcome_of, run_check, symptom, wrong

# the usual mistakes, one hint each
MIDPOINT_UP = "the anchor is m = floor((L + R) / 2); rounding up probes a step too far right"
ALL_NOT_ANY = "one successful continuation proves prefix(m) recoverable: test any(), not all()"
BRANCHES_SWAPPED = "a success means the fatal step is after m (L = m + 1); all failed: R = m"
LEFT_NOT_PAST_M = "after a success, L = m + 1: prefix(m) is recoverable, so m is not t_crit"
RIGHT_BEFORE_M = "after all failed, R = m: the fatal step is at or before m, maybe m itself"
RETURNS_RIGHT = "when the budget runs out with L < R, Algorithm 1 returns L, not R"
ZERO_BASED = "steps are 1-based: the bracket starts at L, R = 1, K"
PROBE_ZERO = "probe was called with n = 0: stop when the budget is gone instead"
OVER_BUDGET = "the search spent more than its budget: ask for min(X_m, budget left)"
K_PROBED = "with K <= 1 there is nothing to search: return t_crit = 1 without probing"
K_ZERO = "t_crit is at least 1, also for K = 0 (the left end of the bracket [1, K])"
CALLABLE = "n_suffix can be a function of m (Eq. 5's X_m): call it at each anchor"
FORM = "return a pair (t_crit, probes), probes a list of (m, outcomes) in the order made"


def recoverable_probe(first_dead: int, chance: float, seed: int, replay: dict | None = None):
    """``probe(m, n)`` for a policy whose prefixes are recoverable (each continuation succeeds
    with ``chance``) before step ``first_dead`` and lost from it on; it records every call.

    ``replay`` maps an anchor to the outcomes its first probe returns (a recorded search)."""
    rng = random.Random(seed)
    replay = dict(replay or {})
    calls = []

    def probe(m: int, n: int) -> list[bool]:
        calls.append((m, n))
        if m in replay and len(replay[m]) == n:
            return list(replay.pop(m))
        p = chance if m < first_dead else 0.0
        return [rng.random() < p for _ in range(n)]

    return probe, calls


def reference_search(num_steps, budget, n_suffix, world):
    """What the package's Algorithm 1 returns on the recorded probe: ``(t_crit, probes,
    calls)``."""
    probe, calls = recoverable_probe(*world)
    result = binary_error_localization(num_steps, probe, budget, n_suffix)
    return result.t_crit, result.probes, calls


def wrong_search(
    num_steps,
    budget,
    n_suffix,
    world,
    anchor=lambda left, right: (left + right) // 2,
    recoverable=any,
    after_success=lambda left, right, m: (m + 1, right),
    after_failure=lambda left, right, m: (left, m),
    bracket=lambda k: (1, k),
    answer=lambda left, right: left,
    small=None,
):
    """Algorithm 1 with one knob per usual mistake; the defaults are the right search.

    ``small``, when given, answers K <= 1 without a search: ``small(K)`` is its t_crit."""
    probe, calls = recoverable_probe(*world)
    if small is not None and num_steps <= 1:
        return small(num_steps), [], calls
    left, right = bracket(num_steps)
    spent, probes = 0, []
    while left < right and spent < budget:
        m = anchor(left, right)
        wanted = n_suffix(m) if callable(n_suffix) else n_suffix
        n = min(wanted, budget - spent)
        outcomes = probe(m, n)
        spent += n
        probes.append((m, outcomes))
        left, right = (after_success if recoverable(outcomes) else after_failure)(left, right, m)
    return answer(left, right), probes, calls


KNOBS = {
    MIDPOINT_UP: {"anchor": lambda left, right: (left + right + 1) // 2},
    ALL_NOT_ANY: {"recoverable": all},
    BRANCHES_SWAPPED: {
        "after_success": lambda left, right, m: (left, m),
        "after_failure": lambda left, right, m: (m + 1, right),
    },
    LEFT_NOT_PAST_M: {"after_success": lambda left, right, m: (m, right)},
    RIGHT_BEFORE_M: {"after_failure": lambda left, right, m: (left, m - 1)},
    RETURNS_RIGHT: {"answer": lambda left, right: right},
    ZERO_BASED: {"bracket": lambda k: (0, k - 1)},
    K_ZERO: {"small": lambda k: k},
}


def well_formed(got) -> bool:
    """``(t_crit, probes, calls)`` as the case's call builds it from a well-formed answer."""
    return isinstance(got, tuple) and len(got) == 3


def check_bel_search(fn) -> bool:
    """``fn(num_steps, probe, budget, n_suffix) -> (t_crit, probes)``; ``n_suffix`` is an int
    or ``m -> int``, ``probes`` the list of ``(m, outcomes)`` in order."""
    # (name, K, budget, X_m, world = (first dead step, chance, seed[, replayed outcomes]))
    worked = {3: [True, False], 5: [False, False], 4: [False, False]}
    inputs = [
        ("worked example: K = 6, lost from step 4", 6, 13, 2, (4, 0.5, 0, worked)),
        ("K = 1: nothing to search", 1, 16, 2, (1, 1.0, 0)),
        ("K = 0: nothing to search", 0, 16, 2, (1, 1.0, 0)),
        ("every probe fails: t_crit = 1", 8, 16, 2, (1, 1.0, 0)),
        ("every probe succeeds: t_crit = K", 8, 16, 2, (9, 1.0, 0)),
        ("notebook 02: chance 0.5 before step 6", 8, 13, 2, (6, 0.5, 1)),
        ("the budget runs out mid-search", 8, 3, 2, (6, 1.0, 0)),
        ("X_m from a function of m", 9, 20, lambda m: 1 + m % 3, (5, 0.6, 3)),
        ("three continuations at chance 0.4", 10, 30, 3, (7, 0.4, 5)),
    ]
    rng = random.Random(2)
    for i in range(4):
        k = rng.randint(2, 10)
        world = (rng.randint(1, k), 0.5, i)
        inputs.append((f"random, K = {k}", k, rng.randint(2, 12), 2, world))
    cases = []
    for name, k, budget, n_suffix, world in inputs:
        mistakes = [
            wrong(hint, outcome_of(wrong_search, k, budget, n_suffix, world, **knobs))
            for hint, knobs in KNOBS.items()
        ]
        mistakes += [
            symptom(PROBE_ZERO, lambda got: any(n == 0 for _, n in got[2])),
            symptom(OVER_BUDGET, lambda got, b=budget: sum(n for _, n in got[2]) > b),
            symptom(FORM, lambda got: not isinstance(got, Exception) and not well_formed(got)),
        ]
        if k <= 1:
            mistakes.append(symptom(K_PROBED, lambda got: len(got[2]) > 0))
        if callable(n_suffix):
            mistakes.append(symptom(CALLABLE, lambda got: isinstance(got, TypeError)))
        x_m = "a function of m" if callable(n_suffix) else n_suffix
        first_dead, chance = world[:2]
        shown = f"num_steps={k}, budget={budget}, n_suffix={x_m}; continuations succeed"
        shown += f" with chance {chance} before step {first_dead}"
        if len(world) > 3:
            shown += f", first probes replayed {world[3]}"
        expected = reference_search(k, budget, n_suffix, world)
        cases.append(
            Case(name, run_search(fn, k, budget, n_suffix, world), expected, shown, mistakes)
        )
    return run_check("binary error localization (Algorithm 1)", cases)


def run_search(fn, k, budget, n_suffix, world):
    """The call of a search case: ``(t_crit, probes, the probe's calls)``, or what ``fn``
    returned when it is not a pair."""

    def run():
        probe, calls = recoverable_probe(*world)
        answer = fn(k, probe, budget, n_suffix)
        if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
            return answer
        t_crit, probes = answer
        return t_crit, [(m, list(o)) for m, o in probes], calls

    return run
