"""The clipped policy objective with error-localized adaptive clipping (paper §3.2 and §4.3-4.4).

Per token, ``r = exp(logp - logp_old)`` and the objective is
``min(r * A, clip(r, 1 - eps_low_t, 1 + eps_high) * A)`` (Eqs. 2 and 12). ELC makes
``eps_low_t`` per token (Eq. 11): ``eps_low + eps_elc`` on the critical step and its suffix in a
failed trajectory, ``eps_low`` elsewhere. The lower bound only binds when A < 0, so ELC lets the
update push the probability of the fatal tokens further down before the clip stops the
gradient, and leaves everything else as in GRPO/DAPO. Per-token objectives are then averaged
per trajectory and over the group (Eq. 1), or over all tokens (DAPO's token-mean).
"""

from __future__ import annotations

import torch

from .config import Config

AGGREGATIONS = ("seq-mean-token-mean", "token-mean")


def clip_bounds(
    elc_mask: torch.Tensor, eps_low: float = Config.eps_low, eps_elc: float = Config.eps_elc
) -> torch.Tensor:
    """Eq. (11): eps_low_t = eps_low + eps_elc where ``elc_mask`` is 1, else eps_low ([B, T])."""
    return eps_low + eps_elc * elc_mask.float()


def clipped_objective(
    ratio: torch.Tensor, advantages: torch.Tensor, lower: torch.Tensor, upper: float
) -> torch.Tensor:
    """Eqs. (2) and (12), per token: min(r A, clip(r, lower, upper) A).

    Args:
        ratio, advantages, lower: [B, T]; ``lower`` is 1 - eps_low_t.
        upper: 1 + eps_high.
    """
    clipped = torch.minimum(torch.maximum(ratio, lower), torch.full_like(ratio, upper))  # [B, T]
    return torch.minimum(ratio * advantages, clipped * advantages)  # [B, T]


def aggregate(
    objective: torch.Tensor,
    mask: torch.Tensor,
    aggregation: str = Config.aggregation,
    normalizer: float | None = None,
) -> torch.Tensor:
    """Eq. (1): the mean over trajectories of each one's masked token mean (or, with
    ``"token-mean"``, the mean over all action tokens). Sequences without action tokens are left
    out, never divided by zero.

    Args:
        objective, mask: [B, T]; ``mask`` is 1 on action tokens.
        normalizer: the denominator when these rows are part of a larger batch (micro-batches,
            ranks): its action-token count (``token-mean``) or number of sequences with action
            tokens, so the parts add up to the whole batch's mean. Default: this call's.
    """
    tokens = mask.sum(-1)  # [B]
    if aggregation == "token-mean":
        total = tokens.sum().clamp(min=1.0) if normalizer is None else normalizer
        return (objective * mask).sum() / total
    has_tokens = tokens > 0  # [B]
    per_seq = (objective * mask).sum(-1) / tokens.clamp(min=1.0)  # [B]
    total = has_tokens.sum().clamp(min=1) if normalizer is None else normalizer
    return (per_seq * has_tokens).sum() / total


def clipped_policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    eps_low: float | torch.Tensor,
    eps_high: float,
    aggregation: str = Config.aggregation,
    region: torch.Tensor | None = None,
    normalizer: float | None = None,
) -> tuple[torch.Tensor, dict]:
    """Minus the clipped surrogate objective, aggregated.

    Args:
        logp, old_logp, advantages, mask: [B, T]; ``mask`` is 1 on action tokens.
        eps_low: the lower clip width, a float or a [B, T] tensor (ELC, :func:`clip_bounds`).
        eps_high: the upper clip width.
        aggregation: ``"seq-mean-token-mean"`` (Eq. 1) or ``"token-mean"`` (DAPO).
        region: optional [B, T] 0/1 mask (e.g. the ELC suffix) to split the clip statistics.
        normalizer: see :func:`aggregate`.

    Returns:
        ``(loss, stats)``: the scalar to minimize, and floats ``clip_frac`` (also ``_low``,
        ``_high``, and ``_in_region`` / ``_out_region`` with ``region``), ``ratio_mean`` and
        ``approx_kl``.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; use one of {AGGREGATIONS}")
    mask = mask.float()
    ratio = torch.exp(logp - old_logp)  # [B, T]
    eps_low_t = eps_low if torch.is_tensor(eps_low) else torch.full_like(ratio, eps_low)  # [B, T]
    lower = 1.0 - eps_low_t  # [B, T]
    upper = 1.0 + eps_high
    objective = clipped_objective(ratio, advantages, lower, upper)  # [B, T]
    loss = -aggregate(objective, mask, aggregation, normalizer)
    with torch.no_grad():
        stats = clip_stats(logp, old_logp, ratio, advantages, mask, lower, upper, region)
    return loss, stats


def clip_stats(logp, old_logp, ratio, advantages, mask, lower, upper, region=None) -> dict:
    """How many action tokens the clip stopped, and how far the ratio moved."""
    n = mask.sum().clamp(min=1.0)
    # a token is clipped when its side of the bound is the one that binds for its advantage
    low = ((ratio < lower) & (advantages < 0)).float() * mask  # [B, T]
    high = ((ratio > upper) & (advantages > 0)).float() * mask  # [B, T]
    log_ratio = (logp - old_logp) * mask  # [B, T]
    stats = {
        "clip_frac": ((low + high).sum() / n).item(),
        "clip_frac_low": (low.sum() / n).item(),
        "clip_frac_high": (high.sum() / n).item(),
        "ratio_mean": ((ratio * mask).sum() / n).item(),
        "approx_kl": (((log_ratio.exp() - 1) - log_ratio) * mask).sum().item() / n.item(),
    }
    if region is not None:
        inside = region.float() * mask  # [B, T]
        outside = (1 - region.float()) * mask  # [B, T]
        for name, where in (("in", inside), ("out", outside)):
            clipped = ((low + high) * where).sum().item()
            stats[f"clip_frac_{name}_region"] = clipped / max(where.sum().item(), 1)
    return stats


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(pi || ref) per token, masked mean: exp(ref - logp) - (ref - logp) - 1."""
    delta = ref_logp - logp  # [B, T]
    return ((delta.exp() - delta - 1) * mask).sum() / mask.sum().clamp(min=1.0)
