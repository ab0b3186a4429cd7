"""The update's fast path: the same log-probs as :mod:`elpo_min.logprobs`, in less memory.

* ``packed``: :class:`PackedLogProbs`, the trainer's default training forward
  (``logprobs="packed"``). Each micro-batch's rows are merged into token trees (``packing``) and
  every distinct root-to-token path is forwarded once, with an ancestor-only mask.
* ``head``: the memory-saving output head both forwards score through. The output layer runs
  only on action tokens, a chunk at a time, with a hand-written backward
  (:class:`HeadLogprobs`), so no [batch, length, vocabulary] tensor is kept for backward.
  :class:`ChunkedLogProbs` uses it on the per-leaf rows (``logprobs="chunked"``).

It sits outside the core because it is an optimization: the core's textbook
:func:`elpo_min.logprobs.token_logprobs` computes the same numbers, and
``tests/test_fast_update.py`` and ``tests/test_packed_update.py`` hold them equal.
"""

from .head import ChunkedLogProbs, HeadLogprobs, chunked_token_logprobs, head_logprobs
from .packed import PackedLogProbs, packed_token_logprobs, why_not_packable
from .packing import PackedRows, Trie, ancestor_mask, pack_rows
