"""The memory-saving output head, through which the training forwards score tokens.

The textbook computation (:func:`elpo_min.logprobs.token_logprobs`) materializes the logits of
every position over the whole vocabulary: for 8 sequences of 1k tokens over a 150k vocabulary
that is 5 GB in fp32, and autograd through ``log_softmax`` keeps several such tensors for
backward. This head computes the same numbers in a bounded amount of memory:

* the output layer runs only on the positions that are wanted (the action tokens);
* it runs ``chunk`` tokens at a time;
* :class:`HeadLogprobs` has its own backward, which recomputes one [chunk, V] buffer and turns it
  in place into the gradient, where autograd would keep 3-4 such buffers per chunk.

``tests/test_fast_update.py`` holds it to the textbook version: log-probs and every gradient
equal in float64, with padding and a temperature.
"""

from __future__ import annotations

import torch

from ..config import Config
from ..logprobs import LogProbs, at_least_float32, position_ids


class HeadLogprobs(torch.autograd.Function):
    """log p(target) = logit[target] - logsumexp(logits) for c tokens through the output head.

    Backward recomputes the logits into one fp32 [c, V] buffer and turns it in place into
    d logp / d logit = onehot(target) - softmax, where autograd would hold 3-4 such buffers.
    (fp32 for half-precision weights, fp64 for fp64 ones.)
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, temperature: float):
        # hidden [c, H], weight [V, H], targets [c]
        logits = at_least_float32(hidden @ weight.T).div_(temperature)  # [c, V]
        log_z = logits.logsumexp(-1)  # [c]
        logp = logits.gather(-1, targets[:, None]).squeeze(-1) - log_z  # [c]
        ctx.save_for_backward(hidden, weight, targets, log_z)
        ctx.temperature = temperature
        return logp

    @staticmethod
    def backward(ctx, grad):
        hidden, weight, targets, log_z = ctx.saved_tensors
        logits = at_least_float32(hidden @ weight.T).div_(ctx.temperature)  # [c, V]
        probs = logits.sub_(log_z[:, None]).exp_()  # [c, V]
        # (onehot - p) * grad, in place
        probs.mul_(-grad[:, None]).scatter_add_(-1, targets[:, None], grad[:, None])
        d_logits = probs.div_(ctx.temperature).to(hidden.dtype)  # [c, V]
        d_hidden = d_logits @ weight if ctx.needs_input_grad[0] else None  # [c, H]
        d_weight = d_logits.T @ hidden if ctx.needs_input_grad[1] else None  # [V, H]
        return d_hidden, d_weight, None, None


def output_head(model):
    """The model's output layer, which must have no bias (as in Qwen and Llama)."""
    head = model.get_output_embeddings()
    if has_bias(head):
        raise ValueError("the chunked head needs an output layer without bias (as in Qwen, Llama)")
    return head


def has_bias(head) -> bool:
    return getattr(head, "bias", None) is not None


def wanted_positions(input_ids: torch.Tensor, target_mask: torch.Tensor | None):
    """(rows, cols) of the tokens to score: those of ``target_mask`` (every token for None),
    never position 0, which has no prefix to score it from. The caller's mask is not changed."""
    wanted = (
        torch.ones_like(input_ids, dtype=torch.bool) if target_mask is None else target_mask != 0
    )
    # `&` makes a new tensor, so clearing position 0 leaves the caller's mask alone
    wanted = wanted & (torch.arange(input_ids.shape[1], device=input_ids.device) > 0)  # [B, T]
    return wanted.nonzero(as_tuple=True)  # N wanted tokens


def head_logprobs(head, states, targets, temperature: float, chunk: int) -> torch.Tensor:
    """log p(target) of N tokens from the hidden states before them, ``chunk`` at a time.

    Args:
        head: the output layer.
        states: [N, H], the hidden state before each target.
        targets: [N] token ids.

    Returns:
        [N] log-probs, float32 (float64 for float64 weights).
    """
    if len(targets) == 0:
        return states.new_zeros(0, dtype=torch.promote_types(head.weight.dtype, torch.float32))
    states = states.to(head.weight.dtype)  # [N, H]
    pieces = []
    for s in range(0, len(targets), chunk):
        piece = HeadLogprobs.apply(
            states[s : s + chunk], head.weight, targets[s : s + chunk], temperature
        )  # [c]
        pieces.append(piece)
    return torch.cat(pieces)  # [N]


def chunked_token_logprobs(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    temperature: float = 1.0,
    chunk: int = Config.logprob_chunk,
    target_mask: torch.Tensor | None = None,
):
    """Teacher-forced log-prob of every wanted token given its prefix, in bounded memory.

    Args and returns as :func:`elpo_min.logprobs.token_logprobs`, plus ``chunk``: tokens per
    call of the output head. Only the positions of ``target_mask`` go through the head.
    """
    hidden = model.get_decoder()(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids(attention_mask),
    ).last_hidden_state  # [B, T, H]
    rows, cols = wanted_positions(input_ids, target_mask)  # N wanted tokens
    # the hidden state before each wanted token
    states = hidden[rows, cols - 1]  # [N, H]
    targets = input_ids[rows, cols]  # [N]
    logp = head_logprobs(output_head(model), states, targets, temperature, chunk)  # [N]
    return logp.new_zeros(input_ids.shape).index_put((rows, cols), logp)  # [B, T]


class ChunkedLogProbs(LogProbs):
    """The training forward on per-leaf rows through the memory-saving head
    (``logprobs="chunked"``; the packed update's fallback)."""

    def __init__(self, model, chunk: int = Config.logprob_chunk):
        super().__init__(model)
        self.chunk = chunk

    def forward(self, input_ids, attention_mask, target_mask, temperature: float = 1.0):
        return chunked_token_logprobs(
            self.model, input_ids, attention_mask, temperature, self.chunk, target_mask
        )
