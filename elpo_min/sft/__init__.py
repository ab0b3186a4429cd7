"""Supervised training before RL: the tiny policy's warm-up and a chat model's cold start.

* ``demos``: worked toy solutions with controlled mistakes (mis-copied numbers, calls that raise
  and are retried), in the toy's tags or the fenced chat format.
* ``warmup``: trains the tiny policy from scratch on them to a moderate success rate, which is
  how ``data/tiny_policy`` was made (``python -m elpo_min warmup``).
* ``cold_start``: a supervised pass of a chat model on fenced demonstrations, tokenized piece by
  piece exactly as the rollout engine builds trajectories (``python -m elpo_min cold-start``).

It sits outside the core because ELPO starts from a policy; how that policy was made is not
part of the method.
"""

from .cold_start import chat_example, cold_start, padded_batch, run_cold_start, sft_loss
from .demos import demo_pieces, demo_steps, demonstration
from .warmup import warmup
