"""Exercise E1's checks: token entropy (Eq. 3), H_root and H_step (§4.1), tau* (Eq. 4), X_m
(Eq. 5). Each check builds its cases with the package's own functions."""

from __future__ import annotations

import math
import random

import torch

from ..bel import select_failure, step_entropies, suffix_count
from ..rollout import token_entropy
from ..trajectory import Trajectory, Turn
from .checker import close, make_case, run_check

# the usual mistakes, one hint each
UNTEMPERED = "that is the entropy of the untempered distribution: divide the logits by T first"
NEGATIVE = "check the sign: H = -sum p log p is never negative"
WINDOW = "H_root and H_step average only the first `window` generated tokens of a turn"
ARGMIN = "Eq. 4 takes the failure with the largest entropy gap (the first one on a tie)"
HALF_EVEN = "round() sends 2.5 to 2; Eq. 5 rounds half up here: floor(x + 0.5)"
GAP_SIGN = "the difference is H_step - H_root: more uncertainty after a tool output, more X_m"


def reference_entropy(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The package's Eq. 3 on the tempered log-probs, in float64."""
    return token_entropy(torch.log_softmax(logits.double() / temperature, -1))


def check_token_entropy(fn) -> bool:
    """``fn(logits [B, V], temperature) -> [B]``: the entropy of softmax(logits / T)."""
    rng = torch.Generator().manual_seed(0)
    inputs = [
        ("uniform over 4 tokens: log 4", torch.zeros(1, 4), 1.0),
        ("two logits at T = 1", torch.tensor([[2.0, 0.0]]), 1.0),
        ("two logits at T = 2", torch.tensor([[2.0, 0.0]]), 2.0),
        ("random batch at T = 0.7", torch.randn(3, 10, generator=rng), 0.7),
        ("random batch at T = 1.5", 3 * torch.randn(4, 50, generator=rng), 1.5),
    ]
    cases = []
    for name, logits, temperature in inputs:
        expected = reference_entropy(logits, temperature)
        untempered = reference_entropy(logits, 1.0)
        mistakes = [
            (NEGATIVE, lambda got, e=expected: close(got, -e)),
            (UNTEMPERED, lambda got, u=untempered, t=temperature: t != 1.0 and close(got, u)),
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
        h_root, h_steps = step_entropies(trajectory_of(turns), window)
        expected = (h_root, h_steps, sum(h_steps) / len(h_steps) - h_root)
        whole = step_entropies(trajectory_of(turns), 10**9)
        no_window = (whole[0], whole[1], sum(whole[1]) / len(whole[1]) - whole[0])
        mistakes = [
            (WINDOW, lambda got, w=no_window, e=expected: not close(w, e) and close(got, w))
        ]
        cases.append(make_case(name, fn, (turns, window), expected, mistakes))
    return run_check("H_root, H_step and the entropy gap (§4.1)", cases)


def check_select_failure(fn) -> bool:
    """``fn(gaps) -> index``: the failure of Eq. 4 among the buffer's entropy gaps."""
    rng = random.Random(1)
    inputs = [
        ("the worked example's buffer", [-0.0400, -0.0444, -0.0567]),
        ("a positive gap wins", [-0.2, 0.3, 0.1]),
        ("a tie: the first one", [0.1, 0.5, 0.5]),
        ("one failure", [-1.0]),
        ("random buffer of 5", [round(rng.uniform(-1, 1), 3) for _ in range(5)]),
    ]
    cases = []
    for name, gaps in inputs:
        stand_ins = [trajectory_of([[0.0], [g]]) for g in gaps]
        expected = stand_ins.index(select_failure(stand_ins))
        lowest = gaps.index(min(gaps))
        mistakes = [(ARGMIN, lambda got, low=lowest, e=expected: low != e and got == low)]
        cases.append(make_case(name, fn, (gaps,), expected, mistakes))
    return run_check("tau* from the failure buffer (Eq. 4)", cases)


def check_suffix_count(fn) -> bool:
    """``fn(h_step, h_root, x_min, x_max, beta) -> int``: X_m of Eq. 5, half rounded up."""
    inputs = [
        ("equal entropies: the middle", (0.5, 0.5, 1, 3, 5.0)),
        ("much more uncertain after the tool", (2.0, 0.5, 1, 3, 5.0)),
        ("much more certain after the tool", (0.1, 1.5, 1, 3, 5.0)),
        ("exactly halfway: 2.5 rounds up", (0.3, 0.3, 1, 4, 5.0)),
        ("a wider range", (0.9, 0.7, 2, 8, 5.0)),
        ("steep beta", (0.62, 0.6, 1, 3, 50.0)),
    ]
    cases = []
    for name, args in inputs:
        h_step, h_root, x_min, x_max, beta = args
        expected = suffix_count(*args)
        z = beta * (h_step - h_root)
        half_even = round(x_min + (x_max - x_min) / (1.0 + math.exp(-z)))
        swapped = suffix_count(h_root, h_step, x_min, x_max, beta)
        mistakes = [
            (HALF_EVEN, lambda got, h=half_even, e=expected: h != e and got == h),
            (GAP_SIGN, lambda got, s=swapped, e=expected: s != e and got == s),
        ]
        cases.append(make_case(name, fn, args, expected, mistakes))
    return run_check("X_m (Eq. 5)", cases)
