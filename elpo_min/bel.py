"""Binary Error Localization (paper §4.1 and Algorithm 1): find the first irrecoverable step.

Two layers, so the search can be taught and tested without a model: the policy-agnostic binary
search (:func:`binary_error_localization`: a step count, a budget and a ``probe(m, n)``
callable), and the per-prompt BEL loop for a batch of prompts with the rollout engine
(:func:`build_trees`).

Both are generators (:func:`search_steps`, :func:`prompt_program`) that *yield requests*
("sample n full trajectories", "probe prefix(m) n times") and receive the outcomes. The
sequential driver answers one request at a time; the batched one advances every prompt by one
request per round and answers them all with one batched rollout. Both run the same generator,
so each prompt's rollout accounting is exactly the sequential pseudo-code's. Collection asks for
``min(B_max - len(buffer), budget left)`` trajectories at once, which is what the pseudo-code
samples before it looks at the buffer.

The search assumes recoverability is monotone along a trajectory (once prefix(m) is lost, so is
every longer prefix); notebook 02 shows what happens when it is not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from .config import Config


def step_entropies(traj, window: int = Config.entropy_window) -> tuple[float, list[float]]:
    """H_root(tau) and H_step(tau, m) for m = 1..K (§4.1).

    H_root is the mean entropy of the first ``window`` tokens of turn 1; H_step(tau, m) that of
    the first ``window`` tokens generated right after the m-th tool output (turn m+1). A step
    whose output ended the trajectory has no turn after it and gets H_root.
    """
    h_root = traj.turn_entropy(0, window)
    h_steps = []
    for m in range(1, traj.num_steps + 1):
        h_steps.append(traj.turn_entropy(m, window) if m < len(traj.turns) else h_root)
    return h_root, h_steps


def entropy_gap(traj, window: int = Config.entropy_window) -> float:
    """The gap Eq. (4) ranks failures by (§4.1): H_tool(tau) - H_root(tau), with H_tool the
    mean of H_step over the steps (0 if K = 0)."""
    h_root, h_steps = step_entropies(traj, window)
    return (sum(h_steps) / len(h_steps) - h_root) if h_steps else 0.0


def select_failure(buffer: list, window: int = Config.entropy_window):
    """Eq. (4): tau* = argmax over the failure buffer of the entropy gap (the first of ties)."""
    return max(buffer, key=lambda traj: entropy_gap(traj, window))


def suffix_count(
    h_step: float,
    h_root: float,
    x_min: int = Config.x_min,
    x_max: int = Config.x_max,
    beta: float = Config.beta,
) -> int:
    """Eq. (5): X_m = round(X_min + (X_max - X_min) * sigmoid(beta * (H_step - H_root))),
    rounding half up (2.5 -> 3)."""
    z = beta * (h_step - h_root)
    # the two forms of the sigmoid that never overflow
    sigmoid = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return int(math.floor(x_min + (x_max - x_min) * sigmoid + 0.5))


@dataclass
class BELResult:
    """``t_crit`` (first irrecoverable step), ``probes`` [(anchor m, outcomes)], ``spent``."""

    t_crit: int
    probes: list[tuple[int, list[bool]]] = field(default_factory=list)
    spent: int = 0


def midpoint(left: int, right: int) -> int:
    """The anchor of Algorithm 1: m = floor((L + R) / 2)."""
    return (left + right) // 2


def search_steps(
    num_steps: int,
    budget: int,
    n_suffix: int | Callable[[int], int] = 2,
    anchor: Callable[[int, int], int] = midpoint,
) -> Generator:
    """The binary search of Algorithm 1 as a generator: yields ``(m, n)``, receives n flags.

    ``L, R = 1, K``; while ``L < R`` and budget is left: probe prefix(m) at the anchor; if any
    continuation succeeds, ``L = m + 1`` (prefix(m) is still recoverable), else ``R = m`` (the
    fatal step is at or before m). Returns a :class:`BELResult` with ``t_crit = L``.
    ``anchor`` lets an ablation pick another step in [L, R - 1] than the midpoint.
    """
    result = BELResult(t_crit=1)
    left, right = 1, num_steps
    while left < right and result.spent < budget:
        m = anchor(left, right)
        wanted = n_suffix(m) if callable(n_suffix) else n_suffix
        if wanted < 1:
            raise ValueError(f"n_suffix gave {wanted} continuations for step {m}; it must be >= 1")
        n = min(wanted, budget - result.spent)
        outcomes = [bool(o) for o in (yield m, n)]
        if len(outcomes) != n:
            raise ValueError(f"probe({m}, {n}) returned {len(outcomes)} outcomes, expected {n}")
        result.spent += n
        result.probes.append((m, outcomes))
        if any(outcomes):
            left = m + 1
        else:
            right = m
    result.t_crit = left if num_steps >= 1 else 1
    return result


def binary_error_localization(
    num_steps: int,
    probe: Callable[[int, int], list[bool]],
    budget: int,
    n_suffix: int | Callable[[int], int] = 2,
) -> BELResult:
    """Algorithm 1's search: the first irrecoverable step of a failed trajectory of K steps.

    Args:
        num_steps: K, the number of tool calls of the trajectory.
        probe: ``probe(m, n)`` samples n continuations from prefix(m), returns success flags.
        budget: rollouts this search may spend; never exceeded.
        n_suffix: continuations per anchor, an int or ``m -> int`` (e.g. :func:`suffix_count`).

    Returns:
        :class:`BELResult` with 1 <= t_crit <= max(1, K); ``probe`` is never called with n = 0.
    """
    search = search_steps(num_steps, budget, n_suffix)
    try:
        request = next(search)
        while True:
            request = search.send(probe(*request))
    except StopIteration as stop:
        return stop.value


@dataclass
class Request:
    """What a BEL program asks for next: ``n`` continuations from prefix(m) of ``tau`` (a probe),
    or, with ``tau`` None, ``n`` full trajectories of the prompt."""

    tau: object | None
    m: int
    n: int


@dataclass
class PromptTree:
    """Everything BEL produced for one prompt."""

    problem: object
    # parents before children
    trajectories: list = field(default_factory=list)
    # id(continuation) -> (tau*, m): the continuation was sampled from prefix(m) of tau*
    parents: dict = field(default_factory=dict)
    # [(tau*, BELResult)], one per search
    searches: list = field(default_factory=list)
    rollouts: int = 0


def prompt_program(
    problem,
    n_total: int = Config.n_total,
    b_max: int = Config.b_max,
    x_min: int = Config.x_min,
    x_max: int = Config.x_max,
    beta: float = Config.beta,
    entropy_window: int = Config.entropy_window,
) -> Generator:
    """The per-prompt BEL loop of Algorithm 1 as a generator.

    It yields a :class:`Request` (``Request(None, 0, n)`` for n full trajectories,
    ``Request(tau, m, n)`` for n continuations from prefix(m) of tau), receives the
    trajectories, and returns a :class:`PromptTree`. Every rollout, full or continuation, counts
    against ``n_total``.
    """
    tree = PromptTree(problem)
    while tree.rollouts < n_total:
        buffer = []
        while len(buffer) < b_max and tree.rollouts < n_total:
            n = min(b_max - len(buffer), n_total - tree.rollouts)
            batch = yield Request(None, 0, n)
            tree.rollouts += n
            tree.trajectories += batch
            buffer += [t for t in batch if t.reward == 0]
        if not buffer:
            break
        tau = select_failure(buffer, entropy_window)
        h_root, h_steps = step_entropies(tau, entropy_window)

        def continuations(m: int) -> int:
            return suffix_count(h_steps[m - 1], h_root, x_min, x_max, beta)

        search = search_steps(tau.num_steps, n_total - tree.rollouts, continuations)
        try:
            m, n = next(search)
            while True:
                children = yield Request(tau, m, n)
                tree.rollouts += n
                tree.trajectories += children
                tree.parents.update({id(c): (tau, m) for c in children})
                m, n = search.send([c.reward > 0 for c in children])
        except StopIteration as stop:
            tree.searches.append((tau, stop.value))
    return tree


def build_trees(
    engine, problems: list, progress: Callable[[int], None] | None = None, **bel_args
) -> list[PromptTree]:
    """Run BEL (Algorithm 1) for every problem in lockstep rounds.

    Each round advances every unfinished prompt by one request and answers all of them with one
    batched ``engine.rollout`` call (full trajectories and continuations side by side).

    Args:
        engine: anything with ``start(problem)`` and ``rollout(seeds, counts)``.
        problems: one tree each.
        progress: called with the number of rollouts finished in each round.
        **bel_args: ``n_total, b_max, x_min, x_max, beta, entropy_window``.
    """
    programs = [prompt_program(p, **bel_args) for p in problems]
    requests = {i: next(program) for i, program in enumerate(programs)}
    trees: list[PromptTree | None] = [None] * len(problems)
    while requests:
        order = list(requests)
        seeds = []
        for i in order:
            request = requests[i]
            full = request.tau is None
            seeds.append(engine.start(problems[i]) if full else request.tau.prefix(request.m))
        groups = engine.rollout(seeds, [requests[i].n for i in order])
        if progress:
            progress(sum(len(g) for g in groups))
        for i, group in zip(order, groups):
            try:
                requests[i] = programs[i].send(group)
            except StopIteration as stop:
                trees[i] = stop.value
                del requests[i]
    return trees
