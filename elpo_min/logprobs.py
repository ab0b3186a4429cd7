"""Teacher-forced token log-probs: the training side of the ratio r = exp(logp - logp_old).

The output head is where memory goes: logits for 8 sequences of 1k tokens over a 150k vocabulary
are 5 GB in fp32, and autograd through ``log_softmax`` keeps several such tensors for backward.
So :func:`token_logprobs` runs the head only on the positions that are wanted (the action
tokens), ``chunk`` tokens at a time, through :class:`HeadLogprobs`, whose hand-written backward
recomputes one [chunk, V] buffer instead of keeping it.
"""

from __future__ import annotations

import torch

from .config import Config


class HeadLogprobs(torch.autograd.Function):
    """log p(target) = logit[target] - logsumexp(logits) for c tokens through the output head.

    Backward recomputes the logits into one fp32 [c, V] buffer and turns it in place into
    d logp / d logit = onehot(target) - softmax, where autograd would hold 3-4 such buffers.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, temperature: float):
        # hidden [c, H], weight [V, H], targets [c]
        logits = (hidden @ weight.T).float().div_(temperature)  # [c, V]
        log_z = logits.logsumexp(-1)  # [c]
        logp = logits.gather(-1, targets[:, None]).squeeze(-1) - log_z  # [c]
        ctx.save_for_backward(hidden, weight, targets, log_z)
        ctx.temperature = temperature
        return logp

    @staticmethod
    def backward(ctx, grad):
        hidden, weight, targets, log_z = ctx.saved_tensors
        logits = (hidden @ weight.T).float().div_(ctx.temperature)  # [c, V]
        probs = logits.sub_(log_z[:, None]).exp_()  # [c, V]
        # (onehot - p) * grad, in place
        probs.mul_(-grad[:, None]).scatter_add_(-1, targets[:, None], grad[:, None])
        d_logits = probs.div_(ctx.temperature).to(hidden.dtype)  # [c, V]
        d_hidden = d_logits @ weight if ctx.needs_input_grad[0] else None  # [c, H]
        d_weight = d_logits.T @ hidden if ctx.needs_input_grad[1] else None  # [V, H]
        return d_hidden, d_weight, None, None


def token_logprobs(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    temperature: float = 1.0,
    chunk: int = Config.logprob_chunk,
    target_mask: torch.Tensor | None = None,
):
    """Teacher-forced log-prob of every token given its prefix.

    Args:
        model: a causal LM, peft-wrapped or not.
        input_ids, attention_mask: [B, T], any padding.
        temperature: the temperature the tokens were sampled at.
        chunk: tokens per call of the output head.
        target_mask: [B, T], 1 where a log-prob is wanted (default: every position but 0);
            only those positions go through the output head.

    Returns:
        logp [B, T], where ``logp[:, t]`` scores ``input_ids[:, t]`` (0 where not wanted).
    """
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # [B, T]
    decoder = model.get_decoder()
    hidden = decoder(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
    ).last_hidden_state  # [B, T, H]
    head = model.get_output_embeddings()
    if getattr(head, "bias", None) is not None:
        raise ValueError("token_logprobs needs an output head without bias (as in Qwen, Llama)")
    if target_mask is None:
        wanted = torch.ones_like(input_ids, dtype=torch.bool)  # [B, T]
    else:
        # a new tensor (a bool mask's .bool() is the mask itself): position 0 is cleared below
        wanted = target_mask != 0  # [B, T]
    # position 0 has no prefix to score it from
    wanted[:, 0] = False
    rows, cols = wanted.nonzero(as_tuple=True)  # N wanted tokens
    # the hidden state before each wanted token
    states = hidden[rows, cols - 1].to(head.weight.dtype)  # [N, H]
    targets = input_ids[rows, cols]  # [N]
    logp = torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)  # [B, T]
    pieces = []
    for s in range(0, len(targets), chunk):
        piece = HeadLogprobs.apply(
            states[s : s + chunk], head.weight, targets[s : s + chunk], temperature
        )  # [c]
        pieces.append(piece)
    if not pieces:
        return logp
    return logp.index_put((rows, cols), torch.cat(pieces))


class LogProbs(torch.nn.Module):
    """The training forward as one module call (so DDP/FSDP hooks see it): token log-probs of
    the action tokens."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        # FSDP's auto-wrap policy reads this
        self._no_split_modules = getattr(model, "_no_split_modules", None)

    def forward(
        self,
        input_ids,
        attention_mask,
        target_mask,
        temperature: float = 1.0,
        chunk: int = Config.logprob_chunk,
    ):
        return token_logprobs(
            self.model, input_ids, attention_mask, temperature, chunk, target_mask=target_mask
        )
