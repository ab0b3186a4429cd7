"""Single-token attention without copying the cache once per query head.

transformers' sdpa (5.17) runs ``repeat_kv`` before attention: with grouped-query attention the
cache is copied once per query head that shares a KV head (7x its bytes per layer for
Qwen2.5-0.5B). For one query token, the query heads of a group can instead be folded into rows
of their shared KV head, which gives the same result without the copy (transformers >= 5.2x
does the same). :func:`packed_attention` swaps this in for the duration of a decode.
"""

from __future__ import annotations

import contextlib

import torch

REGISTERED_NAME = "elpo_packed_sdpa"


def packed_sdpa(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' sdpa, with the query heads of a KV group folded into rows for one token."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    if query.shape[2] != 1 or groups == 1 or attention_mask is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    batch, heads, _, dim = query.shape
    folded = query.reshape(batch, heads // groups, groups, dim)  # [B, KV heads, groups, D]
    out = torch.nn.functional.scaled_dot_product_attention(
        folded, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling
    )  # [B, KV heads, groups, D]
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


@contextlib.contextmanager
def packed_attention(model):
    """Within the block, a model configured for sdpa uses :func:`packed_sdpa`."""
    config = model.config
    stock = getattr(config, "_attn_implementation", None)
    if stock == "sdpa":
        from transformers import AttentionInterface

        AttentionInterface.register(REGISTERED_NAME, packed_sdpa)
        config._attn_implementation = REGISTERED_NAME
    try:
        yield
    finally:
        config._attn_implementation = stock
