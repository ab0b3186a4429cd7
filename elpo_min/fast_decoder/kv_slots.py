"""The fast decoder's KV cache: fixed-shape per-layer buffers that every row writes in step.

All rows share one timeline of columns: each forward writes its keys and values at column
``col`` (and onwards) for every row at once, and ``valid[b, j]`` says whether column j holds a
token of row b. A row that stopped early, or was shorter, leaves masked holes instead of
forcing a re-prefill. Fixed shapes and fixed addresses are what let a CUDA graph replay a decode
step. ``update`` is all of ``transformers.Cache`` that the attention layers call.
"""

from __future__ import annotations

import torch


class KVSlots:
    """Per-layer [B, H, L, D] key and value buffers, allocated at the first write."""

    def __init__(self, batch: int, length: int, device):
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.length = length
        # [B, L]: which columns hold a token of each row
        self.valid = torch.zeros(batch, length, dtype=torch.bool, device=device)
        # the next column written; a tensor, so that a captured graph advances it
        self.col = torch.zeros(1, dtype=torch.long, device=device)
        # the columns attention reads: all of them under a graph, only those written when eager
        self.end = length

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        """Write ``key``/``value`` [B, H, n, D] at columns ``col..col+n``; return what is read."""
        if layer_idx == len(self.keys):
            shape = (*key.shape[:2], self.length, key.shape[-1])
            self.keys.append(key.new_zeros(shape))
            self.values.append(value.new_zeros(shape))
        columns = self.col + torch.arange(key.shape[2], device=key.device)  # [n]
        self.keys[layer_idx].index_copy_(2, columns, key)
        self.values[layer_idx].index_copy_(2, columns, value)
        return self.keys[layer_idx][:, :, : self.end], self.values[layer_idx][:, :, : self.end]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        # positions are always passed explicitly
        return 0

    def select(self, rows: torch.Tensor, length: int | None = None) -> KVSlots:
        """This cache's ``rows`` (a repeated row branches it), widened to ``length`` columns.

        It consumes ``self`` a layer at a time, so the copy never holds two whole caches.
        """
        length = length or self.length
        grow = length - self.length
        new = KVSlots(len(rows), length, self.valid.device)
        for old, out in ((self.keys, new.keys), (self.values, new.values)):
            while old:
                layer = old.pop(0)
                out.append(torch.nn.functional.pad(layer[rows], (0, 0, 0, grow)))
        new.valid = torch.nn.functional.pad(self.valid[rows], (0, grow))
        new.col = self.col.clone()
        return new
