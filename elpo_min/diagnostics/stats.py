"""Means with their 95% intervals, for comparisons over a few seeds.

Runs are few (3-6 seeds), so the interval uses Student's t quantile for n - 1 degrees of freedom
rather than the normal 1.96: with 6 seeds the half-width is 2.57 standard errors, not 1.96. For
two arms run on the same seeds, take the interval of the per-seed differences (a paired
comparison), which removes what the seeds share.
"""

from __future__ import annotations

import statistics

# t(0.975, df) for df = 1..30; beyond, the normal quantile is close enough
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]
T975 += [2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086]
T975 += [2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def mean_ci(values: list[float]) -> tuple[float, float]:
    """The mean and the half-width of its 95% t-interval (0 for a single value).

    Args:
        values: one number per seed (or per paired difference).

    Returns:
        ``(mean, half_width)``: the interval is mean ± half_width.
    """
    values = list(values)
    if not values:
        raise ValueError("mean_ci needs at least one value")
    mean = statistics.mean(values)
    if len(values) == 1:
        return mean, 0.0
    df = len(values) - 1
    quantile = T975[df - 1] if df <= len(T975) else 1.96
    return mean, quantile * statistics.stdev(values) / len(values) ** 0.5
