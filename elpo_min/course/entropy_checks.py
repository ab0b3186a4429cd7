"""Exercise E1's checks: token entropy (Eq. 3), H_root and H_step (§4.1), tau* (Eq. 4), X_m
(Eq. 5).

Each check builds its expected values with the package's own functions, and the output of every
usual mistake with a small wrong version of them (the functions named after the mistake below):
a hint is printed when the student's output is the wrong version's.
"""

from __future__ import annotations

import math
import random

import torch

from ..bel import entropy_gap, select_failure, step_entropies, suffix_count
from ..rollout import token_entropy
from ..trajectory import Trajectory, Turn
from .checker import make_case, outcome_of, run_check, symptom, wrong

# the usual mistakes, one hint each
UNTEMPERED = "that is the entropy of the untempered distribution: divide the logits by T first"
TIMES_T = "the logits were multiplied by T: the sampling distribution is softmax(z / T)"
NEGATIVE = "check the sign: H = -sum p log p is never negative"
BITS = "that is the entropy in bits (log2): Eq. 3 uses the natural log, in nats"
MEAN_OVER_V = "that is a mean over the vocabulary: H sums p log p over the V tokens"
WRONG_DIM = "the softmax ran over the batch (dim 0): it runs over the vocabulary, dim -1"
ONE_NUMBER = "one entropy per row: reduce over the vocabulary only, the result is [B]"
LOG_OF_SOFTMAX = (
    "NaN on a confident row: log(softmax(z)) is log(0) = -inf where a probability underflows, "
    "and 0 * -inf = NaN; take torch.log_softmax"
)
WINDOW = "H_root and H_step average only the first `window` generated tokens of a turn"
ROOT_IN_STEPS = "turn 0 is H_root, not a step: H_step(m) for m = 1..K reads turns 1..K"
DROP_ANSWER = "the last turn (the answer) follows the K-th tool output: it is H_step(K)"
POOLED = "the gap is the mean of the K per-step means, not the mean over all their tokens"
GAP_REVERSED = "the gap is mean(H_step) - H_root, not H_root - mean(H_step)"
GAP_SUM = "the gap takes the mean of H_step over the K steps, not their sum"
ARGMIN = "Eq. 4 takes the failure with the largest entropy gap, not the smallest"
LAST_TIE = "on a tie Eq. 4 keeps the first failure (a later equal gap does not replace it)"
ABSOLUTE = "the gap is signed: a large negative gap (the policy grew surer) ranks last"
ONE_BASED = "return a 0-based index into the list (the first failure is 0)"
GAP_NOT_INDEX = "that is the largest gap itself: return its index in the buffer"
HALF_EVEN = "round() sends 2.5 to 2; Eq. 5 rounds half up here: floor(x + 0.5)"
TRUNCATED = "int() cuts 2.9 to 2: round to the nearest count, half up, floor(x + 0.5)"
CEILING = "math.ceil sends 1.002 to 2: round to the nearest count, half up, floor(x + 0.5)"
UNROUNDED = "X_m is a number of continuations: round it to an int"
GAP_SIGN = "the difference is H_step - H_root: more uncertainty after a tool output, more X_m"
NO_BETA = "beta multiplies the entropy difference inside the sigmoid"
RANGE = "the sigmoid scales the range X_max - X_min, added to X_min"
OVERFLOW = (
    "math.exp overflowed for a large entropy drop: for z < 0 use the equivalent "
    "exp(z) / (1 + exp(z)), which never overflows"
)


def reference_entropy(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The package's Eq. 3 on the tempered log-probs, in float64."""
    return token_entropy(torch.log_softmax(logits.double() / temperature, -1))


def entropy_over_batch(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    log_probs = torch.log_softmax(logits.double() / temperature, dim=0)
    return -(log_probs.exp() * log_probs).sum(-1)


def one_number(expected: torch.Tensor):
    """A scalar equal to the batch's sum or mean of the right entropies."""

    def test(got) -> bool:
        got = torch.as_tensor(got, dtype=torch.float64)
        total = [expected.sum().item(), expected.mean().item()]
        return got.numel() == 1 and any(math.isclose(got.item(), t, rel_tol=1e-5) for t in total)

    return test


def has_nan(got) -> bool:
    return bool(torch.isnan(torch.as_tensor(got, dtype=torch.float64)).any())


def check_token_entropy(fn) -> bool:
    """``fn(logits [B, V], temperature) -> [B]``: the entropy of softmax(logits / T)."""
    rng = torch.Generator().manual_seed(0)
    inputs = [
        ("uniform over 4 tokens: log 4", torch.zeros(1, 4), 1.0),
        ("two logits at T = 1", torch.tensor([[2.0, 0.0]]), 1.0),
        ("two logits at T = 2", torch.tensor([[2.0, 0.0]]), 2.0),
        # exp(-120) is 0 in float32: a probability that underflows
        ("a confident row beside a uniform one", torch.tensor([[120.0, 0, 0], [1, 1, 1]]), 1.0),
        ("random batch at T = 0.7", torch.randn(3, 10, generator=rng), 0.7),
        ("random batch at T = 1.5", 3 * torch.randn(4, 50, generator=rng), 1.5),
    ]
    cases = []
    for name, logits, temperature in inputs:
        expected = reference_entropy(logits, temperature)
        mistakes = [
            wrong(NEGATIVE, -expected),
            wrong(UNTEMPERED, reference_entropy(logits, 1.0)),
            wrong(TIMES_T, reference_entropy(logits * temperature**2, temperature)),
            wrong(BITS, expected / math.log(2)),
            wrong(MEAN_OVER_V, expected / logits.shape[-1]),
            wrong(WRONG_DIM, entropy_over_batch(logits, temperature)),
            symptom(ONE_NUMBER, one_number(expected)),
            symptom(LOG_OF_SOFTMAX, has_nan),
        ]
        cases.append(make_case(name, fn, (logits, temperature), expected, mistakes))
    return run_check("token entropy (Eq. 3)", cases)


def trajectory_of(turn_entropies: list[list[float]]) -> Trajectory:
    """A stand-in trajectory whose turns generated these entropies (no prompt, no outputs).

    Turn 0 is the first turn, turn m the one after the m-th tool output; every turn but the
    last made a tool call.
    """
    entropies, turns = [], []
    for i, values in enumerate(turn_entropies):
        start = len(entropies)
        entropies += values
        code = "call" if i < len(turn_entropies) - 1 else None
        turns.append(Turn(start, len(entropies), len(entropies), code))
    n = len(entropies)
    return Trajectory(None, [0] * n, [1] * n, [0.0] * n, entropies, 0, turns)


def head_mean(values: list[float], window: int) -> float:
    head = values[:window]
    return sum(head) / len(head)


def reference_steps(turns: list[list[float]], window: int):
    """``(h_root, h_steps, gap)`` from the package's step_entropies and entropy_gap."""
    traj = trajectory_of(turns)
    return (*step_entropies(traj, window), entropy_gap(traj, window))


def steps_from(turns, window, h_steps_of):
    """H_root, the given turns' H_step and the mean gap: the frame of the mistakes below."""
    h_root = head_mean(turns[0], window)
    h_steps = [head_mean(turn, window) for turn in h_steps_of(turns)]
    return h_root, h_steps, sum(h_steps) / len(h_steps) - h_root


def pooled_gap(turns, window):
    h_root, h_steps, _ = reference_steps(turns, window)
    pooled = [v for turn in turns[1:] for v in turn[:window]]
    return h_root, h_steps, sum(pooled) / len(pooled) - h_root


def reversed_gap(turns, window):
    h_root, h_steps, gap = reference_steps(turns, window)
    return h_root, h_steps, -gap


def summed_gap(turns, window):
    h_root, h_steps, _ = reference_steps(turns, window)
    return h_root, h_steps, sum(h_steps) - h_root


def check_step_entropies(fn) -> bool:
    """``fn(turn_entropies, window) -> (h_root, h_steps, gap)``, K = len(turn_entropies) - 1."""
    rng = random.Random(0)
    inputs = [
        ("by hand: H_root 0.2, steps 0.4 and 0.1", [[0.1, 0.3], [0.4], [0.1, 0.1]], 32),
        ("the window cuts long turns", [[1.0] * 3 + [5.0] * 3, [2.0] * 4, [0.0]], 3),
        ("one step", [[0.5, 0.7], [0.2, 0.2]], 32),
    ]
    for k in (3, 5):
        turns = [[round(rng.random(), 3) for _ in range(rng.randint(1, 8))] for _ in range(k + 1)]
        inputs.append((f"random, K = {k}, window 4", turns, 4))
    cases = []
    for name, turns, window in inputs:
        mistakes = [
            wrong(WINDOW, outcome_of(reference_steps, turns, 10**9)),
            wrong(ROOT_IN_STEPS, outcome_of(steps_from, turns, window, lambda t: t)),
            wrong(DROP_ANSWER, outcome_of(steps_from, turns, window, lambda t: t[1:-1])),
            wrong(POOLED, pooled_gap(turns, window)),
            wrong(GAP_REVERSED, reversed_gap(turns, window)),
            wrong(GAP_SUM, summed_gap(turns, window)),
        ]
        expected = reference_steps(turns, window)
        cases.append(make_case(name, fn, (turns, window), expected, mistakes))
    return run_check("H_root, H_step and the entropy gap (§4.1)", cases)


def check_select_failure(fn) -> bool:
    """``fn(gaps) -> index``: the failure of Eq. 4 among the buffer's entropy gaps."""
    rng = random.Random(1)
    inputs = [
        ("the worked example's buffer", [-0.0400, -0.0444, -0.0567]),
        ("a positive gap wins", [-0.2, 0.3, 0.1]),
        ("a large negative gap loses", [-0.9, 0.3, 0.1]),
        ("a tie: the first one", [0.1, 0.5, 0.5]),
        ("one failure", [-1.0]),
        ("random buffer of 5", [round(rng.uniform(-1, 1), 3) for _ in range(5)]),
    ]
    cases = []
    for name, gaps in inputs:
        stand_ins = [trajectory_of([[0.0], [g]]) for g in gaps]
        expected = stand_ins.index(select_failure(stand_ins))
        largest = max(gaps)
        mistakes = [
            wrong(ARGMIN, gaps.index(min(gaps))),
            wrong(LAST_TIE, len(gaps) - 1 - gaps[::-1].index(largest)),
            wrong(ABSOLUTE, max(range(len(gaps)), key=lambda i: abs(gaps[i]))),
            wrong(ONE_BASED, expected + 1),
            wrong(GAP_NOT_INDEX, largest),
        ]
        cases.append(make_case(name, fn, (gaps,), expected, mistakes))
    return run_check("tau* from the failure buffer (Eq. 4)", cases)


def unrounded_count(h_step, h_root, x_min, x_max, beta) -> float:
    """Eq. 5 before the rounding, computed without overflow."""
    z = beta * (h_step - h_root)
    sigmoid = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return x_min + (x_max - x_min) * sigmoid


def overflowed(got) -> bool:
    return isinstance(got, OverflowError)


def check_suffix_count(fn) -> bool:
    """``fn(h_step, h_root, x_min, x_max, beta) -> int``: X_m of Eq. 5, half rounded up."""
    inputs = [
        ("equal entropies: the middle", (0.5, 0.5, 1, 3, 5.0)),
        ("much more uncertain after the tool", (2.0, 0.5, 1, 3, 5.0)),
        ("much more certain after the tool", (0.1, 1.5, 1, 3, 5.0)),
        ("exactly halfway: 2.5 rounds up", (0.3, 0.3, 1, 4, 5.0)),
        ("a wider range", (0.9, 0.7, 2, 8, 5.0)),
        ("steep beta", (0.62, 0.6, 1, 3, 50.0)),
        ("an entropy drop of 200 nats: beta * gap = -1000", (0.0, 200.0, 1, 3, 5.0)),
    ]
    cases = []
    for name, args in inputs:
        h_step, h_root, x_min, x_max, beta = args
        x = unrounded_count(*args)
        spread = x_max - x_min
        sigmoid = (x - x_min) / spread
        mistakes = [
            wrong(HALF_EVEN, round(x)),
            wrong(TRUNCATED, int(x)),
            wrong(CEILING, math.ceil(x)),
            wrong(UNROUNDED, x),
            wrong(GAP_SIGN, suffix_count(h_root, h_step, x_min, x_max, beta)),
            wrong(NO_BETA, suffix_count(h_step, h_root, x_min, x_max, 1.0)),
            wrong(RANGE, math.floor(x_min + x_max * sigmoid + 0.5)),
            symptom(OVERFLOW, overflowed),
        ]
        expected = suffix_count(*args)
        cases.append(make_case(name, fn, args, expected, mistakes))
    return run_check("X_m (Eq. 5)", cases)
