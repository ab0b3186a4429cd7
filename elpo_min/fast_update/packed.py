"""The packed update: each micro-batch's shared tokens forwarded once, the same log-probs out.

:class:`PackedLogProbs` is a training forward like :class:`~elpo_min.logprobs.LogProbs`: it
takes the per-leaf rows and returns their [B, T] log-probs, so the trainer's loss, advantages,
ELC mask, aggregations, KL term and normalizers are computed exactly as on the per-leaf path.
Inside, the rows are merged into token trees (:mod:`.packing`), the model runs once over every
distinct root-to-token path with an ancestor-only mask and depth positions, the output head
scores each distinct token once (the memory-saving head of :mod:`.head`), and each row gathers
its tokens' log-probs back. A token shared by two leaves gets one log-prob, and in backward the
gradients of its two uses add up, which is what the two per-leaf rows' gradients sum to.
Leaves whose shared tokens carry different advantages (two GRPO samples with the same opening)
are therefore right by construction: the advantage multiplies the gathered log-prob per row.

Where packing does not apply the module says so once and computes the per-leaf rows:

* the attention must honour a custom 4D mask: ``sdpa`` and ``eager`` take the dense boolean
  (or additive) mask built here; other implementations (``flash_attention_2`` reads only
  padding) fall back. On CUDA, where torch and transformers offer FlexAttention, the packed
  forward runs the model's attention as ``flex_attention`` with a block mask built from the
  subtree ends, so a tree of several thousand tokens never builds a dense [L, L] matrix and
  the blocks no query needs are skipped (its first call compiles the kernel);
* the output head must have no bias (as the memory-saving head needs).

``tests/test_packed_update.py`` holds the packed update to the per-leaf one: loss, statistics
and every gradient equal within 1e-10 in float64.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from ..config import Config
from ..logprobs import LogProbs
from .head import chunked_token_logprobs, has_bias, head_logprobs, output_head, wanted_positions
from .packing import PackedRows, ancestor_mask, pack_rows

# attention implementations that honour a custom mask, and how they take it
DENSE_MASK = ("sdpa", "eager")
BLOCK_MASK = ("flex_attention",)


def attention_implementation(model) -> str:
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) or "eager"


def why_not_packable(model) -> str | None:
    """Why packing cannot apply to ``model``, or None when it can."""
    attention = attention_implementation(model)
    if attention not in DENSE_MASK + BLOCK_MASK:
        return f"its attention ({attention}) ignores a custom attention mask"
    if has_bias(model.get_output_embeddings()):
        return "its output head has a bias"
    return None


def flex_available(model) -> bool:
    """FlexAttention for the packed forward: on CUDA, where torch and transformers offer it."""
    if not next(model.parameters()).is_cuda:
        return False
    from transformers.utils import is_torch_flex_attn_available

    return is_torch_flex_attn_available()


@contextlib.contextmanager
def attention_as(model, attention: str):
    """Within it, the model's attention layers run ``attention`` (they read the implementation
    from the shared config at every call)."""
    config = model.config
    before = config._attn_implementation
    config._attn_implementation = attention
    try:
        yield
    finally:
        config._attn_implementation = before


def packed_mask(packed: PackedRows, attention: str, dtype: torch.dtype):
    """The ancestor-only mask in the form the attention implementation takes."""
    if attention in BLOCK_MASK:
        from torch.nn.attention.flex_attention import create_block_mask

        end = packed.subtree_end  # [P, L]

        def ancestor(b, h, q, k):
            return (k <= q) & (q < end[b, k])

        rows, width = end.shape
        # compiled, so that not even the mask is built densely
        return create_block_mask(
            ancestor, rows, None, width, width, device=end.device, _compile=True
        )
    allowed = ancestor_mask(packed.subtree_end)  # [P, 1, L, L]
    if attention == "sdpa":
        return allowed
    # eager attention adds its mask to the scores
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(
        ~allowed, torch.finfo(dtype).min
    )


def packed_token_logprobs(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    temperature: float = 1.0,
    chunk: int = Config.logprob_chunk,
    target_mask: torch.Tensor | None = None,
    budget: int = Config.pack_tokens,
    flex: bool = False,
) -> torch.Tensor:
    """Teacher-forced log-probs of right-padded rows, each distinct token computed once.

    Args and returns as :func:`~elpo_min.fast_update.chunked_token_logprobs`, plus ``budget``:
    the longest packed row, in tokens, and ``flex``: attend through FlexAttention's block mask.
    """
    lengths = attention_mask.sum(-1)  # [B]
    if not torch.equal(lengths, attention_mask.cumprod(-1).sum(-1)):
        raise ValueError("packed log-probs need right-padded rows (every row's tokens first)")
    packed = pack_rows(input_ids, lengths.tolist(), budget)
    attention = "flex_attention" if flex else attention_implementation(model)
    decoder = model.get_decoder()
    dtype = next(decoder.parameters()).dtype
    with attention_as(model, attention):
        hidden = decoder(
            input_ids=packed.input_ids,
            attention_mask=packed_mask(packed, attention, dtype),
            position_ids=packed.position_ids,
        ).last_hidden_state  # [P, L, H]
    rows, cols = wanted_positions(input_ids, target_mask)  # N wanted tokens
    packed_row = packed.row[rows]  # [N]
    # one log-prob per distinct token: the same (packed row, position) is computed once
    width = packed.input_ids.shape[1]
    key = packed_row * width + packed.index[rows, cols]  # [N]
    distinct, inverse = torch.unique(key, return_inverse=True)  # [D], [N]
    # any use of a token tells where it and its parent are: they are the same for all its uses
    use = torch.empty_like(distinct).scatter_(0, inverse, torch.arange(len(key), device=key.device))
    use_row, use_col = rows[use], cols[use]  # [D]
    at_row = packed.row[use_row]  # [D]
    parent = packed.index[use_row, use_col - 1]  # [D]
    states = hidden[at_row, parent]  # [D, H]
    targets = input_ids[use_row, use_col]  # [D]
    per_token = head_logprobs(output_head(model), states, targets, temperature, chunk)  # [D]
    return per_token.new_zeros(input_ids.shape).index_put((rows, cols), per_token[inverse])


class PackedLogProbs(LogProbs):
    """The training forward with each micro-batch's shared tokens forwarded once.

    Falls back to the per-leaf rows through the memory-saving head (or, for an output head with
    a bias, the textbook pass), with a one-line warning, where packing does not apply.
    """

    def __init__(self, model, chunk: int = Config.logprob_chunk, budget: int = Config.pack_tokens):
        super().__init__(model)
        self.chunk = chunk
        self.budget = budget
        self.reason = why_not_packable(model)
        self.flex = self.reason is None and flex_available(model)
        # the memory-saving head needs an output layer without bias; the textbook pass does not
        self.biased = has_bias(model.get_output_embeddings())
        if self.reason:
            warnings.warn(
                f"packed update off: {self.reason}; training on per-leaf rows", stacklevel=2
            )

    def forward(self, input_ids, attention_mask, target_mask, temperature: float = 1.0):
        args = (self.model, input_ids, attention_mask, temperature)
        if self.reason is None:
            return packed_token_logprobs(*args, self.chunk, target_mask, self.budget, self.flex)
        if self.biased:
            return super().forward(input_ids, attention_mask, target_mask, temperature)
        return chunked_token_logprobs(*args, self.chunk, target_mask)
