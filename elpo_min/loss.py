"""The clipped policy objective with error-localized adaptive clipping (SPEC 3.4-3.5).

Per token, ``r = exp(logp - logp_old)`` and the objective is
``min(r * A, clip(r, 1 - eps_low_t, 1 + eps_high) * A)``. ELC makes ``eps_low_t``
per token: ``eps_low + eps_elc`` on the critical step and its suffix in a failed
trajectory, ``eps_low`` elsewhere. The lower bound only binds when A < 0, so ELC
lets the update push the probability of the fatal tokens further down before the
clip stops the gradient, and leaves everything else as in GRPO/DAPO.
"""

from __future__ import annotations

import torch


def clip_bounds(elc_mask: torch.Tensor, eps_low: float = 0.2, eps_elc: float = 0.115) -> torch.Tensor:
    """eps_low_t = eps_low + eps_elc where ``elc_mask`` is 1, eps_low elsewhere ([B, T])."""
    return eps_low + eps_elc * elc_mask.float()


def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                        mask: torch.Tensor, eps_low: float | torch.Tensor, eps_high: float,
                        aggregation: str = "seq-mean-token-mean", region: torch.Tensor | None = None,
                        normalizer: float | None = None) -> tuple[torch.Tensor, dict]:
    """Minus the clipped surrogate objective.

    Args:
        logp, old_logp, advantages, mask: [B, T]; ``mask`` is 1 on action tokens.
        eps_low, eps_high: lower clip width, a float or [B, T] per token (ELC); upper width.
        aggregation: ``"seq-mean-token-mean"`` (paper Eq. 1: mean over sequences of the
            masked token mean) or ``"token-mean"`` (DAPO: mean over all action tokens).
            Sequences without action tokens are left out, never divided by zero.
        region: optional [B, T] 0/1 mask (e.g. the ELC suffix) for split clip stats.
        normalizer: the denominator when these rows are part of a larger batch (micro-batches,
            ranks): its action-token count (``token-mean``) or number of sequences with action
            tokens, so the parts' losses add up to the whole batch's. Default: this call's.

    Returns ``(loss, stats)``: the scalar to minimize; ``clip_frac`` (``_low``, ``_high``, and
    ``_in_region`` / ``_out_region`` with ``region``), ``ratio_mean``, ``approx_kl``.
    """
    if aggregation not in ("seq-mean-token-mean", "token-mean"):
        raise ValueError(f"unknown aggregation {aggregation!r}; use 'seq-mean-token-mean' or 'token-mean'")
    mask = mask.float()
    ratio = torch.exp(logp - old_logp)  # [B, T]
    lower = 1.0 - (eps_low if torch.is_tensor(eps_low) else torch.full_like(ratio, eps_low))  # [B, T]
    upper = 1.0 + eps_high
    clipped = torch.minimum(torch.maximum(ratio, lower), torch.full_like(ratio, upper))  # [B, T]
    objective = torch.minimum(ratio * advantages, clipped * advantages)  # [B, T]
    tokens = mask.sum(-1)  # [B]
    if aggregation == "token-mean":
        total = tokens.sum().clamp(min=1.0) if normalizer is None else normalizer
        loss = -(objective * mask).sum() / total
    else:
        has_tokens = tokens > 0  # [B]
        per_seq = (objective * mask).sum(-1) / tokens.clamp(min=1.0)  # [B]
        total = has_tokens.sum().clamp(min=1) if normalizer is None else normalizer
        loss = -(per_seq * has_tokens).sum() / total

    with torch.no_grad():
        n = mask.sum().clamp(min=1.0)
        low = ((ratio < lower) & (advantages < 0)).float() * mask  # [B, T]
        high = ((ratio > upper) & (advantages > 0)).float() * mask  # [B, T]
        log_ratio = (logp - old_logp) * mask
        stats = {"clip_frac": ((low + high).sum() / n).item(), "clip_frac_low": (low.sum() / n).item(),
                 "clip_frac_high": (high.sum() / n).item(), "ratio_mean": ((ratio * mask).sum() / n).item(),
                 "approx_kl": (((log_ratio.exp() - 1) - log_ratio) * mask).sum().item() / n.item()}
        if region is not None:
            for name, where in (("in", region.float() * mask), ("out", (1 - region.float()) * mask)):
                stats[f"clip_frac_{name}_region"] = ((low + high) * where).sum().item() / max(where.sum().item(), 1)
    return loss, stats


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(pi || ref) per token, masked mean: exp(ref - logp) - (ref - logp) - 1."""
    delta = ref_logp - logp  # [B, T]
    return ((delta.exp() - delta - 1) * mask).sum() / mask.sum().clamp(min=1.0)
