"""Who this process is, and the collectives training needs; here, for a single process.

The trainer never asks whether it is distributed: it calls these methods, which for one process
do nothing or hand their input back. :mod:`elpo_min.parallel` subclasses :class:`Runtime` for
data parallelism, where the same calls shard prompts, sum counts and reduce gradients.
"""

from __future__ import annotations

import contextlib

import torch


class Runtime:
    """Rank 0 of 1."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def prepare(self, forward, optimizer):
        """``(training forward, optimizer)``, ready for this runtime; data parallelism wraps both.

        ``forward`` is a :class:`~elpo_min.logprobs.LogProbs` module around the policy.
        """
        return forward, optimizer

    def shard(self, items: list) -> list:
        """This rank's share of ``items``, dealt round-robin (nothing is dropped)."""
        return items[self.rank :: self.world_size]

    def all_sum(self, values: list[float]) -> list[float]:
        return [float(v) for v in values]

    def gather(self, obj) -> list:
        return [obj]

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def no_sync(self, forward, sync: bool):
        """Skip the gradient all-reduce of every micro-batch but the last."""
        return contextlib.nullcontext()

    def clip_grad_norm(self, params, max_norm: float) -> float:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def full_weights(self, forward):
        """Within it, sharded weights are whole on this rank (generation needs every weight)."""
        return contextlib.nullcontext()

    def reduce_record(self, record: dict) -> dict:
        return {**record, "world_size": self.world_size}

    def barrier(self) -> None:
        pass
