"""Binary Error Localization (paper §4.1, Eqs. 3-5 and Algorithm 1): the search, its edge
cases, and the batched tree builder against a direct transcription of the pseudo-code."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elpo_min import binary_error_localization, suffix_count
from elpo_min.bel import build_trees, entropy_gap, step_entropies
from elpo_min.rollout import Trajectory, Turn


def test_suffix_count_by_hand():
    assert suffix_count(1.0, 1.0) == 2  # sigmoid(0) = 0.5 -> 1 + 2 * 0.5
    assert suffix_count(3.0, 1.0) == 3  # 1 + 2 * sigmoid(10) = 2.99991
    assert suffix_count(0.0, 1.0) == 1  # 1 + 2 * sigmoid(-5) = 1.0134
    assert suffix_count(1.1, 1.0) == 2  # 1 + 2 * sigmoid(0.5) = 2.245
    assert suffix_count(1.0, 1.0, x_min=1, x_max=2) == 2  # 1.5 rounds half up
    assert suffix_count(1e6, 0.0) == 3 and suffix_count(-1e6, 0.0) == 1  # no overflow


def oracle_probe(t_true, num_steps):
    """Deterministic monotone world: prefix(m) is recoverable iff m < t_true."""
    calls = []

    def probe(m, n):
        assert 1 <= m < num_steps and n >= 1
        calls.append((m, n))
        return [m < t_true] * n

    return probe, calls


@pytest.mark.parametrize("num_steps", range(2, 12))
def test_finds_the_first_irrecoverable_step_exactly(num_steps):
    for t_true in range(1, num_steps + 1):
        probe, calls = oracle_probe(t_true, num_steps)
        result = binary_error_localization(num_steps, probe, budget=100, n_suffix=2)
        assert result.t_crit == t_true
        assert len(calls) <= math.ceil(math.log2(num_steps)) and result.spent == 2 * len(calls)


def test_edge_cases():
    never = lambda m, n: pytest.fail("probe must not be called")
    assert binary_error_localization(0, never, 10).t_crit == 1
    assert binary_error_localization(1, never, 10).t_crit == 1
    r = binary_error_localization(6, lambda m, n: [False] * n, 100)
    assert r.t_crit == 1 and [m for m, _ in r.probes] == [3, 2, 1]
    r = binary_error_localization(6, lambda m, n: [True] * n, 100)
    assert r.t_crit == 6 and [m for m, _ in r.probes] == [3, 5]
    assert binary_error_localization(6, never, 0).t_crit == 1  # no budget: t_crit = L = 1
    r = binary_error_localization(8, lambda m, n: [True] * n, 3, n_suffix=2)  # runs out mid-search
    assert r.spent == 3 and [(m, len(o)) for m, o in r.probes] == [(4, 2), (6, 1)] and r.t_crit == 7


def test_probe_outcome_count_is_checked_and_n_suffix_must_be_positive():
    with pytest.raises(ValueError, match="returned 1 outcomes"):
        binary_error_localization(5, lambda m, n: [True], 10, n_suffix=2)
    with pytest.raises(ValueError, match="must be >= 1"):
        binary_error_localization(5, lambda m, n: [True] * n, 10, n_suffix=lambda m: 0)


@settings(max_examples=300, deadline=None)
@given(
    num_steps=st.integers(0, 40),
    budget=st.integers(0, 30),
    seed=st.integers(0, 10**6),
    n_fixed=st.integers(1, 4),
    use_callable=st.booleans(),
)
def test_search_properties(num_steps, budget, seed, n_fixed, use_callable):
    rng = random.Random(seed)
    seen = []

    def probe(m, n):
        seen.append(n)
        return [rng.random() < 0.5 for _ in range(n)]

    n_suffix = (lambda m: rng.randint(1, 3)) if use_callable else n_fixed
    r = binary_error_localization(num_steps, probe, budget, n_suffix)
    assert r.spent == sum(seen) <= budget and all(n >= 1 for n in seen)
    assert 1 <= r.t_crit <= max(1, num_steps)


# ---------------------------------------------------------------- simulated policy


class SimulatedPolicy:
    """Trajectories with known per-step recoverability, seeded per prompt.

    A full trajectory has K steps and a fatal step f (None = no fatal step, success).
    A continuation from prefix(m) of tau fails if tau's fatal step f <= m, else
    succeeds with probability 0.6. Every random draw of prompt p comes from p's own
    stream in request order, so any driver that issues the same requests per prompt
    sees the same outcomes.
    """

    def __init__(self, seed):
        self.seed = seed
        self.streams = {}

    def rng(self, problem):
        return self.streams.setdefault(problem, random.Random(f"{self.seed}-{problem}"))

    def start(self, problem):
        return Trajectory(problem, [0, 0], [0, 0], [0.0, 0.0], [0.0, 0.0], 2)

    def _extend(self, traj, k_total, rng):
        while traj.num_steps < k_total:
            s = len(traj.token_ids)
            h = [rng.random() * 3 for _ in range(2)]
            traj.token_ids += [1, 1, 9]
            traj.action_mask += [1, 1, 0]
            traj.logprobs += [-1.0, -1.0, 0.0]
            traj.entropies += h + [0.0]
            traj.turns.append(Turn(s, s + 2, s + 3, code="x", output="y"))
        s = len(traj.token_ids)
        traj.token_ids += [2]
        traj.action_mask += [1]
        traj.logprobs += [-1.0]
        traj.entropies += [rng.random() * 3]
        traj.turns.append(Turn(s, s + 1, s + 1, answer="a"))
        traj.done = True
        return traj

    def full(self, problem):
        rng = self.rng(problem)
        k = rng.randint(0, 7)
        traj = self._extend(self.start(problem), k, rng)
        traj.fatal = rng.randint(1, k) if k and rng.random() < 0.7 else None
        traj.reward = float(traj.fatal is None)
        return traj

    def continuation(self, parent, m):
        rng = self.rng(parent.problem)
        child = self._extend(parent.prefix(m), parent.num_steps + rng.randint(0, 2), rng)
        child.fatal = parent.fatal
        child.reward = float(
            not (parent.fatal is not None and parent.fatal <= m) and rng.random() < 0.6
        )
        return child

    def rollout(self, seeds, counts):  # the engine interface used by build_trees
        out = []
        for seed, n in zip(seeds, counts):
            if seed.num_steps == 0 and not seed.turns:
                out.append([self.full(seed.problem) for _ in range(n)])
            else:
                parent, m = self.pending[id(seed)]
                out.append([self.continuation(parent, m) for _ in range(n)])
        return out


class BatchedSimulation(SimulatedPolicy):
    """Routes prefix seeds back to their parent so continuations know the fatal step."""

    def __init__(self, seed):
        super().__init__(seed)
        self.pending = {}
        original = Trajectory.prefix

        def prefix(traj, m, _orig=original):
            p = _orig(traj, m)
            self.pending[id(p)] = (traj, m)
            return p

        self.patched = prefix


def sequential_pseudocode(problem, policy, n_total=16, b_max=3, x_min=1, x_max=3, beta=5.0):
    """A direct transcription of Algorithm 1 (Appendix A), one rollout at a time."""
    rollouts, searches = 0, []
    while rollouts < n_total:
        buffer = []
        while len(buffer) < b_max and rollouts < n_total:
            tau = policy.full(problem)
            rollouts += 1
            if tau.reward == 0:
                buffer.append(tau)
        if not buffer:
            break
        tau = max(buffer, key=entropy_gap)
        h_root, h_steps = step_entropies(tau)
        left, right, anchors = 1, tau.num_steps, []
        while left < right and rollouts < n_total:
            m = (left + right) // 2
            x_m = math.floor(
                x_min + (x_max - x_min) / (1 + math.exp(-beta * (h_steps[m - 1] - h_root))) + 0.5
            )
            n = min(x_m, n_total - rollouts)
            outcomes = [policy.continuation(tau, m).reward > 0 for _ in range(n)]
            rollouts += n
            anchors.append(m)
            left, right = (m + 1, right) if any(outcomes) else (left, m)
        searches.append((left, anchors))
    return searches, rollouts


def test_batched_builder_equals_the_pseudocode_over_200_seeds(monkeypatch):
    problems = [f"p{i}" for i in range(6)]
    nonzero = 0
    for seed in range(200):
        n_total = [16, 5, 9, 2][seed % 4]
        expected = {p: sequential_pseudocode(p, SimulatedPolicy(seed), n_total) for p in problems}
        sim = BatchedSimulation(seed)
        monkeypatch.setattr(Trajectory, "prefix", sim.patched)
        trees = build_trees(sim, problems, n_total=n_total)
        monkeypatch.undo()
        for p, tree in zip(problems, trees):
            searches, rollouts = expected[p]
            got = [(r.t_crit, [m for m, _ in r.probes]) for _, r in tree.searches]
            assert got == searches and tree.rollouts == rollouts <= n_total, (seed, p)
            assert len(tree.trajectories) == rollouts
            nonzero += sum(bool(a) for _, a in searches)
    assert nonzero > 300  # the comparison exercised real searches, not only empty ones


def test_search_anchor_can_be_replaced_for_ablations():
    """The random-anchors ablation swaps only the anchor rule: probing the left end first
    walks the interval one step at a time and still finds the first dead step."""
    from elpo_min.bel import search_steps

    dead_from = 4  # prefix(m) is recoverable for m < 4
    gen, probed = search_steps(6, budget=100, n_suffix=1, anchor=lambda lo, hi: lo), []
    try:
        m, n = next(gen)
        while True:
            probed.append(m)
            m, n = gen.send([m < dead_from])
    except StopIteration as stop:
        assert stop.value.t_crit == dead_from
    assert probed == [1, 2, 3, 4]
