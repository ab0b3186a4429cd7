"""Exercise E8's checks: the derivation of what a z-score keeps under an affine change of reward,
and what its ε does, checked against the package's z-scores.

With ``z_i = (r_i - mean) / (std + eps)`` (population std) and rewards ``r' = a r + b``, the
mean becomes ``a mean + b`` and the std ``|a| std``, so

    z'_i = a (r_i - mean) / (|a| std + eps) = sign(a) * (std + eps) / (std + eps / |a|) * z_i,

invariant for a > 0 up to how ``eps`` compares with ``|a| std``. Two siblings whose values differ
by ``delta`` get ``∓ delta / (delta + 2 eps)``: ε turns 0 / 0 into 0 and damps differences
smaller than about 2ε. The student writes these closed forms; the checks compare them with the
package's :func:`elpo_min.advantages.zscores` on the rewards themselves.
"""

from __future__ import annotations

import math
import random
import statistics

from ..advantages import zscores
from .checker import make_case, run_check, symptom, wrong

# the usual mistakes, one hint each
SIGN_LOST = "a negative a flips every z-score: (a r_i - a mean) has the sign of a"
NO_EPS = "ε does not scale with a: the std becomes |a| std, ε stays, so z changes when |a| std ~ ε"
SCALES_WITH_A = "the std scales with |a| too: a z-score does not grow with the rewards' scale"
SHIFTS_WITH_B = "b shifts every reward and the mean alike: it cancels in r_i - mean"
PAIR_NO_EPS = "that is the z-score without ε: two siblings get ∓1 however small their difference"
PAIR_SAMPLE_STD = "the std of two values a delta apart is delta / 2 (population), not delta / √2"
PAIR_WHOLE_DELTA = "each sibling is delta / 2 from the mean, and the std is delta / 2 as well"
PAIR_NAN = "equal siblings (delta = 0) get 0, not NaN: that 0 / 0 is what ε is there for"
HALF_AT_EPS = "at delta = ε a sibling gets ∓1/3: solve delta / (delta + 2ε) = 1/2"
HALF_AT_HALF_EPS = "at delta = ε / 2 a sibling gets ∓1/5: solve delta / (delta + 2ε) = 1/2"

EPS = 1e-6


def pstd(values: list[float]) -> float:
    return statistics.pstdev(values)


def affine_inputs() -> list[tuple]:
    """``(name, rewards, a, b, eps)``: scales above, below and around ε / std, both signs."""
    rng = random.Random(8)
    inputs = [
        ("{0, 1} to {-1, +1}: a = 2, b = -1", [0.0, 1.0, 1.0, 0.0, 1.0], 2.0, -1.0, EPS),
        ("a shift only: b = 5", [0.2, 0.9, 0.4], 1.0, 5.0, EPS),
        ("a negative scale: a = -1", [0.0, 1.0, 1.0], -1.0, 0.0, EPS),
        ("a scale near ε: a = 1e-6", [0.0, 1.0, 0.0, 0.0], 1e-6, 0.0, EPS),
        ("a large ε: 0.1, a = 0.5", [1.0, 3.0, 2.0], 0.5, 1.0, 0.1),
        ("equal rewards: all z-scores 0", [0.7, 0.7, 0.7], 3.0, 1.0, EPS),
    ]
    for _ in range(3):
        rewards = [round(rng.uniform(-2, 2), 3) for _ in range(rng.randint(3, 7))]
        a = rng.choice([-3.0, -0.5, 0.25, 4.0])
        inputs.append((f"random, a = {a}", rewards, a, round(rng.uniform(-3, 3), 2), EPS))
    return inputs


def check_rescaled_zscores(fn) -> bool:
    """``fn(z, std, a, b, eps) -> list``: the z-scores of ``a r + b`` from those of ``r``."""
    cases = []
    for name, rewards, a, b, eps in affine_inputs():
        z, std = zscores(rewards, eps), pstd(rewards)
        expected = zscores([a * r + b for r in rewards], eps)
        sign = math.copysign(1.0, a)
        factor = (std + eps) / (std + eps / abs(a))
        mistakes = [
            wrong(SIGN_LOST, [factor * v for v in z]),
            wrong(NO_EPS, [sign * v for v in z]),
            wrong(SCALES_WITH_A, [a * v for v in z]),
            wrong(SHIFTS_WITH_B, [v + b / (std + eps) for v in z]),
        ]
        shown = f"rewards {rewards} (z = {[round(v, 4) for v in z]}, std = {std:.4g}), "
        shown += f"a = {a}, b = {b}, eps = {eps}"
        cases.append(make_case(name, fn, (z, std, a, b, eps), expected, mistakes, shown))
    return run_check("z-scores after r -> a r + b (E8)", cases)


def has_nan(got) -> bool:
    return any(isinstance(v, float) and math.isnan(v) for v in got)


def check_pair_zscores(fn) -> bool:
    """``fn(delta, eps) -> (z_low, z_high)``: two siblings with values v and v + delta."""
    cases = []
    for delta, eps in [(1.0, EPS), (1e-3, EPS), (2e-6, EPS), (1e-9, EPS), (0.2, 0.1), (0.0, EPS)]:
        expected = tuple(zscores([0.0, delta], eps))
        full = delta / (delta + eps) if delta else 0.0
        sample = (delta / 2) / (delta / math.sqrt(2) + eps) if delta else 0.0
        mistakes = [
            # without ε, equal siblings divide 0 by 0
            wrong(PAIR_NO_EPS, (-1.0, 1.0) if delta else ZeroDivisionError()),
            wrong(PAIR_SAMPLE_STD, (-sample, sample)),
            wrong(PAIR_WHOLE_DELTA, (-full, full)),
            symptom(PAIR_NAN, has_nan),
        ]
        name = f"delta = {delta:g}, eps = {eps:g}"
        cases.append(make_case(name, fn, (delta, eps), expected, mistakes))
    return run_check("two siblings a delta apart (E8)", cases)


def relatively_close(got, expected) -> bool:
    """Within 1e-6 of ``expected``, relative: the answers here are of the order of ε."""
    return math.isclose(float(got), expected, rel_tol=1e-6)


def check_half_credit(fn) -> bool:
    """``fn(eps) -> delta``: the difference at which each of two siblings gets |z| = 1/2."""
    cases = []
    for eps in (1e-6, 0.1, 0.05):
        # solve |z| = 1/2 on the package's z-scores, by bisection on delta
        low, high = 0.0, 1.0
        for _ in range(200):
            middle = (low + high) / 2
            low, high = (middle, high) if zscores([0.0, middle], eps)[1] < 0.5 else (low, middle)
        expected = (low + high) / 2
        mistakes = [wrong(HALF_AT_EPS, eps), wrong(HALF_AT_HALF_EPS, eps / 2)]
        case = make_case(f"eps = {eps:g}", fn, (eps,), expected, mistakes, same=relatively_close)
        cases.append(case)
    return run_check("where a pair gets half its credit (E8)", cases)
