"""Data parallelism on torch.distributed, launched by ``accelerate launch`` or ``torchrun``.

* The step's ``prompts_per_step`` prompts are split over the ranks; a BEL tree never spans
  ranks, so trees, advantages and ELC masks are built locally.
* The loss is the *global* one: each rank divides by the global action-token count
  (``token-mean``) or the global count of sequences with action tokens
  (``seq-mean-token-mean``), one all-reduce per mini-batch, and scales by the world size
  because DDP averages gradients: N ranks take the update one process would take on the
  union of their batches (tests/test_distributed.py).
* Evaluation is sharded and its counts summed; step records are gathered to rank 0, which
  alone writes ``metrics.jsonl``, the curve and checkpoints (with every rank's RNG state, so
  resume is exact at the same world size). A plain run never imports accelerate.
* Sharded weights (FSDP, DeepSpeed ZeRO-3) are gathered for rollouts (:meth:`Runtime.full_weights`):
  generation needs every weight, and a LoRA policy's fit one GPU. DDP and ZeRO-2 replicate them.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import torch

from .models import token_logprobs

SUMMED = {"sequences", "unprobed", "loss", "rollouts", "kl_ref"}  # everything else is averaged over ranks


class LogProbs(torch.nn.Module):
    """The training forward as one module call, so DDP/FSDP hooks see it."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self._no_split_modules = getattr(model, "_no_split_modules", None)  # FSDP auto-wrap

    def forward(self, input_ids, attention_mask, target_mask, temperature: float = 1.0, chunk: int = 256):
        return token_logprobs(self.model, input_ids, attention_mask, temperature, chunk, target_mask=target_mask)


@dataclass
class Runtime:
    """Who this process is, and the few collectives training needs."""

    rank: int = 0
    world_size: int = 1
    accelerator: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def prepare(self, model, optimizer):
        """``(training forward, optimizer)``, wrapped for DDP/FSDP/DeepSpeed when distributed."""
        forward = LogProbs(model)
        return (forward, optimizer) if self.accelerator is None else self.accelerator.prepare(forward, optimizer)

    def shard(self, items: list) -> list:
        """This rank's share of ``items``, dealt round-robin (nothing is dropped)."""
        return items[self.rank::self.world_size]

    def all_sum(self, values: list[float]) -> list[float]:
        if self.world_size == 1:
            return [float(v) for v in values]
        t = torch.tensor(values, dtype=torch.float64, device=self.accelerator.device)
        torch.distributed.all_reduce(t)
        return t.tolist()

    def gather(self, obj) -> list:
        out = [obj] * self.world_size
        if self.world_size > 1:
            torch.distributed.all_gather_object(out, obj)
        return out

    def backward(self, loss: torch.Tensor) -> None:
        (loss.backward if self.accelerator is None else lambda: self.accelerator.backward(loss))()

    def no_sync(self, forward, sync: bool):
        """Skip the gradient all-reduce on all but the last micro-batch of a mini-batch."""
        return contextlib.nullcontext() if sync or self.accelerator is None else self.accelerator.no_sync(forward)

    def clip_grad_norm(self, params, max_norm: float) -> float:
        if self.accelerator is None:
            return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        norm = self.accelerator.clip_grad_norm_(params, max_norm)  # DeepSpeed clips itself: None
        return float(norm) if norm is not None else float("nan")

    def full_weights(self, forward):
        """A context in which the policy's weights are whole on this rank (for generation)."""
        if self.accelerator is None:
            return contextlib.nullcontext()
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        if isinstance(forward, FSDP):
            return FSDP.summon_full_params(forward, writeback=False)
        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        if plugin is not None and plugin.zero_stage == 3:
            import deepspeed

            return deepspeed.zero.GatheredParameters(list(forward.parameters()))
        return contextlib.nullcontext()

    def reduce_record(self, record: dict) -> dict:
        """One step record from every rank's: counts summed, equal values kept, the rest averaged."""
        records, out = self.gather(record), {}
        for key in record:
            values = [r[key] for r in records if r.get(key) is not None]
            if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                out[key] = record[key]  # text, or None on every rank
            else:
                mean = values[0] if len(set(values)) == 1 else sum(values) / len(values)
                out[key] = sum(values) if key in SUMMED else mean
        return {**out, "world_size": self.world_size}

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()


def runtime() -> Runtime:
    """The single-process runtime, or (under a launcher that set ``WORLD_SIZE`` > 1) an
    accelerate one: gloo on CPU, NCCL on GPUs, FSDP/DeepSpeed as its config says."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Runtime()
    try:
        from accelerate import Accelerator
    except ImportError:
        raise ImportError("a multi-process launch needs accelerate: pip install 'elpo_min[dist]'") from None
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    return Runtime(accelerator.process_index, accelerator.num_processes, accelerator)
