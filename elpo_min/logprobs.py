"""Teacher-forced token log-probs: the training side of the ratio r = exp(logp - logp_old).

The update needs, for every sampled action token, its log-prob under the current policy given
everything before it, at the temperature it was sampled at. The textbook way is one forward
pass over each whole sequence: the logits of position t, tempered and log-softmaxed over the
vocabulary, score the token at t + 1. That is what :func:`token_logprobs` does, and what a
learner should read.

It keeps a [B, T, V] tensor alive for backward, which a real vocabulary makes gigabytes. So by
default the trainer computes the same numbers through the engine room (:mod:`elpo_min.fast_update`:
each tree's shared tokens forwarded once, scored by a memory-saving head), which
``tests/test_fast_update.py`` and ``tests/test_packed_update.py`` hold to this function:
log-probs and gradients equal in float64.
"""

from __future__ import annotations

import torch


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Each token's position within its own sequence, whatever the padding ([B, T])."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or in float64 if it is: log-softmax in half precision loses the tail."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def token_logprobs(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    temperature: float = 1.0,
    target_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Teacher-forced log-prob of every token given its prefix.

    Args:
        model: a causal LM, peft-wrapped or not.
        input_ids, attention_mask: [B, T], any padding.
        temperature: the temperature the tokens were sampled at.
        target_mask: [B, T], nonzero where a log-prob is wanted (default: every position but 0).

    Returns:
        logp [B, T] in float32 (float64 for a float64 model), where ``logp[:, t]`` scores
        ``input_ids[:, t]`` (0 at position 0, which has no prefix, and wherever ``target_mask``
        is 0).
    """
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids(attention_mask),
    ).logits  # [B, T, V]
    # the distribution at position t is the one token t + 1 was sampled from
    log_probs = (at_least_float32(logits[:, :-1]) / temperature).log_softmax(-1)  # [B, T - 1, V]
    picked = log_probs.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # [B, T - 1]
    logp = torch.cat([picked.new_zeros(len(picked), 1), picked], dim=1)  # [B, T]
    if target_mask is None:
        return logp
    return torch.where(target_mask != 0, logp, 0.0)  # [B, T]


class LogProbs(torch.nn.Module):
    """The training forward as one module call (so that DDP's hooks see it): the log-probs of
    the action tokens, the textbook way. The trainer's default is its engine-room subclass
    :class:`elpo_min.fast_update.PackedLogProbs` (``Config.logprobs``)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        # FSDP's auto-wrap policy reads this
        self._no_split_modules = getattr(model, "_no_split_modules", None)

    def forward(self, input_ids, attention_mask, target_mask, temperature: float = 1.0):
        return token_logprobs(self.model, input_ids, attention_mask, temperature, target_mask)
