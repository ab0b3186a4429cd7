"""Binary Error Localization (SPEC 3.1-3.2): find the first irrecoverable step.

Two layers, so the search can be taught and tested without a model:

* :func:`binary_error_localization` is the policy-agnostic binary search; it only
  sees a step count, a budget and a ``probe(m, n)`` callable.
* :func:`build_trees` runs the per-prompt BEL loop for a whole batch of prompts
  with the rollout engine.

Both are generators (:func:`search_steps`, :func:`prompt_program`) that *yield requests*
("sample n full trajectories", "probe prefix(m) n times") and receive the outcomes. The
sequential driver answers one request at a time; the batched one advances every prompt by
one request per round and answers them all with one batched rollout. Both run the very
same generator, so each prompt's rollout accounting is exactly the sequential pseudo-code's.
Collection asks for ``min(B_max - len(buffer), budget left)`` trajectories at once: the
pseudo-code would sample that many before looking at the buffer, so batching changes nothing.

The search assumes recoverability is monotone along a trajectory (once prefix(m)
is lost, so is every longer prefix); notebook 02 shows what happens when it is not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field


def step_entropies(traj, window: int = 32) -> tuple[float, list[float]]:
    """H_root(tau) (first turn) and H_step(tau, m) for m = 1..K-1: the mean entropy of the first
    ``window`` tokens generated right after the m-th tool output (H_root for a step whose output
    ended the trajectory: no turn follows)."""
    h_root = traj.turn_entropy(0, window)
    return h_root, [traj.turn_entropy(m, window) if m < len(traj.turns) else h_root
                    for m in range(1, traj.num_steps + 1)]


def entropy_gap(traj, window: int = 32) -> float:
    """H_tool(tau) - H_root(tau), with H_tool the mean of H_step over the steps (0 if K = 0)."""
    h_root, h_steps = step_entropies(traj, window)
    return (sum(h_steps) / len(h_steps) - h_root) if h_steps else 0.0


def suffix_count(h_step: float, h_root: float, x_min: int = 1, x_max: int = 3,
                 beta: float = 5.0) -> int:
    """X_m = round(X_min + (X_max - X_min) * sigmoid(beta * (H_step - H_root))), half up (2.5 -> 3)."""
    z = beta * (h_step - h_root)
    sigmoid = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return int(math.floor(x_min + (x_max - x_min) * sigmoid + 0.5))


@dataclass
class BELResult:
    """``t_crit`` (first irrecoverable step), ``probes`` [(anchor m, outcomes)], ``spent``."""

    t_crit: int
    probes: list[tuple[int, list[bool]]] = field(default_factory=list)
    spent: int = 0


def search_steps(num_steps: int, budget: int, n_suffix: int | Callable[[int], int] = 2,
                 anchor: Callable[[int, int], int] = lambda lo, hi: (lo + hi) // 2) -> Generator:
    """The binary search as a generator: yields ``(m, n)``, receives n success flags. ``L, R = 1, K``;
    while ``L < R`` and budget is left: ``m = (L + R) // 2``; if any continuation from prefix(m)
    succeeds, ``L = m + 1`` (still recoverable), else ``R = m``. Returns ``t_crit = L``."""
    result, left, right = BELResult(t_crit=1), 1, num_steps
    while left < right and result.spent < budget:
        m = anchor(left, right)  # the midpoint; an ablation may pick another step in [L, R - 1]
        wanted = n_suffix(m) if callable(n_suffix) else n_suffix
        if wanted < 1:
            raise ValueError(f"n_suffix gave {wanted} continuations for step {m}; it must be >= 1")
        n = min(wanted, budget - result.spent)
        outcomes = [bool(o) for o in (yield m, n)]
        if len(outcomes) != n:
            raise ValueError(f"probe({m}, {n}) returned {len(outcomes)} outcomes, expected {n}")
        result.spent += n
        result.probes.append((m, outcomes))
        left, right = (m + 1, right) if any(outcomes) else (left, m)
    result.t_crit = left if num_steps >= 1 else 1
    return result


def binary_error_localization(num_steps: int, probe: Callable[[int, int], list[bool]], budget: int,
                              n_suffix: int | Callable[[int], int] = 2) -> BELResult:
    """Locate the first irrecoverable step of a failed trajectory with K = ``num_steps``.

    Args:
        num_steps: K, the number of tool calls of the trajectory.
        probe: ``probe(m, n)`` samples n continuations from prefix(m), returns success flags.
        budget: rollouts this search may spend; never exceeded.
        n_suffix: continuations per anchor, an int or ``m -> int`` (e.g. :func:`suffix_count`).

    Returns:
        :class:`BELResult` with 1 <= t_crit <= max(1, K); ``probe`` is never called with n = 0.
    """
    gen = search_steps(num_steps, budget, n_suffix)
    try:
        request = next(gen)
        while True:
            request = gen.send(probe(*request))
    except StopIteration as stop:
        return stop.value


@dataclass
class PromptTree:
    """Everything BEL produced for one prompt."""

    problem: object
    trajectories: list = field(default_factory=list)  # parents before children
    parents: dict = field(default_factory=dict)  # id(continuation) -> (tau*, m)
    searches: list = field(default_factory=list)  # [(tau*, BELResult)]
    rollouts: int = 0


def prompt_program(problem, n_total: int = 16, b_max: int = 3, x_min: int = 1, x_max: int = 3,
                   beta: float = 5.0, entropy_window: int = 32) -> Generator:
    """The per-prompt BEL loop of SPEC 3.2 as a generator: yields ``("sample", None, 0, n)`` for n
    full trajectories or ``("probe", tau, m, n)`` for n continuations from prefix(m) of tau,
    receives the trajectories, returns a :class:`PromptTree`."""
    tree = PromptTree(problem)
    while tree.rollouts < n_total:
        buffer = []
        while len(buffer) < b_max and tree.rollouts < n_total:
            n = min(b_max - len(buffer), n_total - tree.rollouts)
            batch = yield "sample", None, 0, n
            tree.rollouts += n
            tree.trajectories += batch
            buffer += [t for t in batch if t.reward == 0]
        if not buffer:
            break
        tau = max(buffer, key=lambda t: entropy_gap(t, entropy_window))  # first of ties
        h_root, h_steps = step_entropies(tau, entropy_window)
        search = search_steps(tau.num_steps, n_total - tree.rollouts,
                              lambda m: suffix_count(h_steps[m - 1], h_root, x_min, x_max, beta))
        try:
            m, n = next(search)
            while True:
                children = yield "probe", tau, m, n
                tree.rollouts += n
                tree.trajectories += children
                tree.parents.update({id(c): (tau, m) for c in children})
                m, n = search.send([c.reward > 0 for c in children])
        except StopIteration as stop:
            tree.searches.append((tau, stop.value))
    return tree


def build_trees(engine, problems: list, progress: Callable[[int], None] | None = None,
                **bel_args) -> list[PromptTree]:
    """Run BEL for every problem in lockstep rounds: each round advances every unfinished
    prompt by one request and answers all of them with one batched ``engine.rollout`` call
    (full trajectories and continuations from prefixes, side by side).

    Args:
        engine, problems: anything with ``start(problem)`` and ``rollout(seeds, counts)``; one per tree.
        progress: called with the number of rollouts finished in each round.
        **bel_args: ``n_total, b_max, x_min, x_max, beta, entropy_window``.
    """
    programs = [prompt_program(p, **bel_args) for p in problems]
    requests = {i: next(prog) for i, prog in enumerate(programs)}
    trees: list[PromptTree | None] = [None] * len(problems)
    while requests:
        order = list(requests)
        seeds = [engine.start(problems[i]) if requests[i][1] is None
                 else requests[i][1].prefix(requests[i][2]) for i in order]
        groups = engine.rollout(seeds, [requests[i][3] for i in order])
        if progress:
            progress(sum(len(g) for g in groups))
        for i, group in zip(order, groups):
            try:
                requests[i] = programs[i].send(group)
            except StopIteration as stop:
                trees[i] = stop.value
                del requests[i]
    return trees
