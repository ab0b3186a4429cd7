"""Exercises E6 and E7: find the bugs. The checks of the fixed functions and of the students'
own tests.

Each exercise hands the student a plausible function with three planted bugs that its visible
tests miss: E6 the per-failure part of BEL (Eq. 5's X_m per anchor and Algorithm 1's search),
E7 the training rows of one prompt's tree (A_hier per token and the ELC mask). The student
fixes it, explains each bug, and writes tests that would have caught them.

* ``check_localize`` / ``check_batch_rows`` compare the fixed function with the package on
  hidden cases; each planted bug is a knob of a wrong version (:func:`localize_with`,
  :func:`rows_with`), so a bug left in is named by its symptom.
* ``check_localize_tests`` / ``check_batch_rows_tests`` run the student's test function on the
  right version (it must pass) and on each single-bug version (it must fail each).
"""

from __future__ import annotations

import random

import torch

from ..advantages import build_tree, hierarchical_advantages
from ..bel import binary_error_localization, step_entropies, suffix_count
from ..train import CreditedTree, token_advantages
from ..trajectory import Trajectory, Turn
from .checker import FAIL, PASS, Case, make_case, outcome_of, run_check, wrong
from .entropy_checks import trajectory_of
from .search_checks import recoverable_probe

# E6's planted bugs, named by the inputs that expose them (not by their fix)
STEP_SHIFT = (
    "X_m is off at anchors where the steps' entropies differ: which step's H_step does Eq. 5 "
    "read at anchor m?"
)
MAJORITY = "a probe with mixed outcomes (some continuations succeed, some fail) moves the bracket"
MAJORITY += " the wrong way"
WRONG_END = "when the budget runs out before the bracket closes, the t_crit is not Algorithm 1's"

# E7's planted bugs, named the same way
SHARED_TURNS = (
    "the rows of continuations are off: which node's A_hier does each of their turns get?"
)
LAMBDA_DROPPED = "the rows are right at lambda_tree = 0.5 only"
ELC_LATE = "the ELC mask starts at the wrong turn: how does t_crit count turns?"
# and of the student's tests
TESTS_FAIL_RIGHT = "a test that fails a correct function tests something else: fix it first"


# ---- E6: localize -------------------------------------------------------------------------


def localize_with(
    turn_entropies,
    probe,
    budget,
    x_min=1,
    x_max=3,
    beta=5.0,
    window=32,
    step=lambda m: m - 1,
    recoverable=any,
    answer=lambda left, right: left,
):
    """BEL for one failure with one knob per planted bug; the defaults are right."""
    h_root, h_steps = step_entropies(trajectory_of(turn_entropies), window)

    def continuations(m: int) -> int:
        return suffix_count(h_steps[step(m)], h_root, x_min, x_max, beta)

    left, right = 1, len(h_steps)
    spent, probes = 0, []
    while left < right and spent < budget:
        m = (left + right) // 2
        n = min(continuations(m), budget - spent)
        outcomes = probe(m, n)
        spent += n
        probes.append((m, outcomes))
        if recoverable(outcomes):
            left = m + 1
        else:
            right = m
    return answer(left, right), probes


LOCALIZE_BUGS = {
    STEP_SHIFT: {"step": lambda m: m},
    MAJORITY: {"recoverable": lambda outcomes: sum(outcomes) > len(outcomes) / 2},
    WRONG_END: {"answer": lambda left, right: right},
}


def localize_reference(turn_entropies, probe, budget, x_min=1, x_max=3, beta=5.0, window=32):
    """The package's BEL for one failure: step_entropies, suffix_count and Algorithm 1."""
    h_root, h_steps = step_entropies(trajectory_of(turn_entropies), window)

    def continuations(m: int) -> int:
        return suffix_count(h_steps[m - 1], h_root, x_min, x_max, beta)

    result = binary_error_localization(len(h_steps), probe, budget, continuations)
    return result.t_crit, result.probes


def localize_inputs() -> list[tuple]:
    """``(name, turn_entropies, budget, settings, world)``; entropies that move X_m between 1
    and 3, probes that succeed by chance, budgets that run out."""
    rng = random.Random(6)
    rising = [[0.2] * 4] + [[0.2 + 0.15 * m] * 4 for m in range(1, 7)]
    falling = [[1.0] * 4] + [[1.0 - 0.14 * m] * 4 for m in range(1, 8)]
    inputs = [
        ("flat entropies, X_m = 2", [[0.3] * 5] * 7, 13, {}, (4, 1.0, 0)),
        ("entropy rising along the steps", rising, 16, {}, (4, 0.5, 1)),
        ("entropy falling along the steps", falling, 16, {}, (6, 0.5, 2)),
        ("three continuations at chance 0.4", [[0.1] * 3] * 9, 30, {"x_min": 3}, (6, 0.4, 3)),
        ("the budget runs out mid-search", rising, 3, {}, (6, 1.0, 0)),
    ]
    for i in range(4):
        k = rng.randint(3, 9)
        turns = [[round(rng.uniform(0, 1.5), 2) for _ in range(rng.randint(1, 5))]]
        turns += [
            [round(rng.uniform(0, 1.5), 2) for _ in range(rng.randint(1, 5))] for _ in range(k)
        ]
        world = (rng.randint(1, k), rng.choice([0.4, 0.6]), 10 + i)
        inputs.append((f"random, K = {k}", turns, rng.randint(3, 14), {}, world))
    return inputs


def run_localize(fn, turns, budget, settings, world):
    probe, calls = recoverable_probe(*world)
    t_crit, probes = fn(turns, probe, budget, **settings)
    return t_crit, [(m, list(o)) for m, o in probes], calls


def check_localize(fn) -> bool:
    """``fn(turn_entropies, probe, budget, x_min=1, x_max=3, beta=5.0, window=32) ->
    (t_crit, probes)``: E6's fixed function."""
    cases = []
    for name, turns, budget, settings, world in localize_inputs():
        case = (turns, budget, settings, world)
        expected = run_localize(localize_reference, *case)
        mistakes = [
            wrong(hint, outcome_of(run_localize, with_knobs(localize_with, knobs), *case))
            for hint, knobs in LOCALIZE_BUGS.items()
        ]
        first_dead, chance = world[:2]
        shown = f"K = {len(turns) - 1}, budget={budget}, {settings or 'the default X_min, X_max'}"
        shown += f"; continuations succeed with chance {chance} before step {first_dead}"
        run = lambda case=case: run_localize(fn, *case)  # noqa: E731
        cases.append(Case(name, run, expected, shown, mistakes))
    return run_check("BEL for one failure, fixed (E6)", cases)


def with_knobs(fn, knobs: dict):
    return lambda *args, **kwargs: fn(*args, **kwargs, **knobs)


def check_localize_tests(test_fn) -> bool:
    """``test_fn(localize)`` raises on a wrong ``localize``: it must pass the right one and
    fail each version with one planted bug."""
    return check_bug_tests(
        "your tests against the three planted bugs (E6)",
        test_fn,
        localize_reference,
        {hint: with_knobs(localize_with, knobs) for hint, knobs in LOCALIZE_BUGS.items()},
    )


def check_bug_tests(title: str, test_fn, right, buggy: dict) -> bool:
    """Run the student's tests on the right function and on each single-bug version."""
    print(title)
    try:
        test_fn(right)
    except NotImplementedError:
        print("  not implemented yet")
        return False
    except Exception as error:
        print(f"  {FAIL} your tests fail the right function: {type(error).__name__}: {error}")
        print(f"    hint: {TESTS_FAIL_RIGHT}")
        return False
    print(f"  {PASS} your tests pass the right function")
    ok = True
    for number, (bug, function) in enumerate(buggy.items(), start=1):
        try:
            test_fn(function)
        except Exception:
            print(f"  {PASS} your tests catch bug {number}")
            continue
        print(f"  {FAIL} your tests miss bug {number}")
        print(f"    hint: none of your tests fails on bug {number}: {bug}")
        ok = False
    return ok


# ---- E7: the training rows of one tree ----------------------------------------------------


def stand_ins(trajectories: list[dict], length: int) -> list[Trajectory]:
    """Trajectories with the given turns and rewards, ``length`` tokens each."""
    out = []
    for traj in trajectories:
        stand_in = Trajectory(None, [0] * length, [1] * length, [0.0] * length, [0.0] * length, 0)
        stand_in.turns = [Turn(*span) for span in traj["turns"]]
        stand_in.reward = float(traj["reward"])
        out.append(stand_in)
    return out


def batch_rows_reference(trajectories, parents, searches, lambda_tree, length):
    """The trainer's rows of one tree: ``(advantages [B, T], elc [B, T])`` in float64."""
    trajs = stand_ins(trajectories, length)
    by_id = {id(trajs[i]): (trajs[p], m) for i, (p, m) in parents.items()}
    root, path = build_tree(trajs, by_id)
    hierarchical_advantages(root, lambda_tree)
    elc_from = {id(trajs[i]): t_crit - 1 for i, t_crit in searches.items()}
    credited = CreditedTree(None, root, path, elc_from)
    rows = [token_advantages(traj, credited) for traj in trajs]
    advantages = torch.tensor([a for a, _ in rows], dtype=torch.float64)
    elc = torch.tensor([e for _, e in rows], dtype=torch.float64)
    return advantages, elc


def rows_with(
    trajectories,
    parents,
    searches,
    lambda_tree,
    length,
    shared=True,
    use_lambda=True,
    elc_first=lambda t_crit: t_crit - 1,
):
    """The rows of one tree with one knob per planted bug; the defaults are right."""
    trajs = stand_ins(trajectories, length)
    by_id = {id(trajs[i]): (trajs[p], m) for i, (p, m) in parents.items()}
    root, path = build_tree(trajs, by_id)
    hierarchical_advantages(root, lambda_tree if use_lambda else 0.5)
    advantages = torch.zeros(len(trajs), length, dtype=torch.float64)
    elc = torch.zeros(len(trajs), length, dtype=torch.float64)
    for i, traj in enumerate(trajs):
        m = parents.get(i, (None, 0))[1]
        nodes = path[id(traj)] if shared else path[id(traj)][m:]
        for k, (turn, node) in enumerate(zip(traj.turns, nodes)):
            advantages[i, turn.start : turn.end] = node.a_hier
            if i in searches and k >= elc_first(searches[i]):
                elc[i, turn.start : turn.end] = 1.0
    return advantages, elc


ROWS_BUGS = {
    SHARED_TURNS: {"shared": False},
    LAMBDA_DROPPED: {"use_lambda": False},
    ELC_LATE: {"elc_first": lambda t_crit: t_crit},
}


def chain_turns(first: int, sizes: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Consecutive turns from position ``first``: ``(generated, tool output)`` tokens each."""
    turns, at = [], first
    for generated, output in sizes:
        turns.append((at, at + generated, at + generated + output))
        at += generated + output
    return turns


def rows_inputs() -> list[tuple]:
    """``(name, trajectories, parents, searches, lambda_tree, length)``: trees with
    continuations, tool outputs and padding, at several lambda_tree."""
    tau = chain_turns(3, [(3, 2), (4, 2), (3, 2), (2, 0)])
    # continuations from prefix(2) and prefix(1) of tau: they share its first turns
    from2 = tau[:2] + chain_turns(tau[1][2], [(3, 2), (2, 0)])
    from1 = tau[:1] + chain_turns(tau[0][2], [(2, 1), (2, 0)])
    other = chain_turns(3, [(4, 1), (3, 0)])
    searched = [
        {"turns": tau, "reward": 0.0},
        {"turns": other, "reward": 1.0},
        {"turns": from2, "reward": 1.0},
        {"turns": from2, "reward": 0.0},
        {"turns": from1, "reward": 0.0},
    ]
    parents = {2: (0, 2), 3: (0, 2), 4: (0, 1)}
    group = [{"turns": chain_turns(2, [(3, 2), (2, 0)]), "reward": r} for r in (0.0, 1.0, 1.0)]
    return [
        ("three full trajectories, lambda_tree = 0.3", group, {}, {0: 1}, 0.3, 14),
        ("a searched failure and its continuations", searched, parents, {0: 2}, 0.5, 26),
        ("the same tree at lambda_tree = 0", searched, parents, {0: 3}, 0.0, 26),
        ("the same tree at lambda_tree = 0.8", searched, parents, {0: 1}, 0.8, 30),
    ]


def check_batch_rows(fn) -> bool:
    """``fn(trajectories, parents, searches, lambda_tree, length) -> (advantages, elc)``, both
    [B, T]: E7's fixed function."""
    cases = []
    for name, trajectories, parents, searches, lambda_tree, length in rows_inputs():
        args = (trajectories, parents, searches, lambda_tree, length)
        expected = batch_rows_reference(*args)
        mistakes = [
            wrong(hint, outcome_of(rows_with, *args, **knobs)) for hint, knobs in ROWS_BUGS.items()
        ]
        shown = f"{len(trajectories)} trajectories, parents={parents}, searches={searches}, "
        shown += f"lambda_tree={lambda_tree}, length={length}"
        cases.append(make_case(name, fn, args, expected, mistakes, shown))
    return run_check("the training rows of one tree, fixed (E7)", cases)


def check_batch_rows_tests(test_fn) -> bool:
    """``test_fn(batch_rows)`` raises on a wrong ``batch_rows``: it must pass the right one and
    fail each version with one planted bug."""
    return check_bug_tests(
        "your tests against the three planted bugs (E7)",
        test_fn,
        batch_rows_reference,
        {hint: with_knobs(rows_with, knobs) for hint, knobs in ROWS_BUGS.items()},
    )
