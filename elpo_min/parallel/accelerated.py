"""The :class:`~elpo_min.runtime.Runtime` of one rank among several, on ``accelerate``."""

from __future__ import annotations

import contextlib
import os

import torch

from ..errors import MissingExtra
from ..runtime import Runtime

# step-record fields that are counts (summed over ranks); the others are averaged
SUMMED = {"sequences", "unprobed", "loss", "kl_ref"}


class AcceleratedRuntime(Runtime):
    """Rank ``rank`` of ``world_size`` processes: gloo on CPU, NCCL on GPUs, FSDP or DeepSpeed as
    accelerate's config says."""

    def __init__(self, accelerator):
        self.accelerator = accelerator
        self.rank = accelerator.process_index
        self.world_size = accelerator.num_processes

    def prepare(self, model, optimizer):
        forward, optimizer = super().prepare(model, optimizer)
        return self.accelerator.prepare(forward, optimizer)

    def all_sum(self, values: list[float]) -> list[float]:
        summed = torch.tensor(values, dtype=torch.float64, device=self.accelerator.device)
        torch.distributed.all_reduce(summed)
        return summed.tolist()

    def gather(self, obj) -> list:
        out = [obj] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def no_sync(self, forward, sync: bool):
        return contextlib.nullcontext() if sync else self.accelerator.no_sync(forward)

    def clip_grad_norm(self, params, max_norm: float) -> float:
        norm = self.accelerator.clip_grad_norm_(params, max_norm)
        # DeepSpeed clips inside its own step and returns None
        return float(norm) if norm is not None else float("nan")

    def full_weights(self, forward):
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        if isinstance(forward, FSDP):
            return FSDP.summon_full_params(forward, writeback=False)
        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        if plugin is not None and plugin.zero_stage == 3:
            import deepspeed

            return deepspeed.zero.GatheredParameters(list(forward.parameters()))
        return contextlib.nullcontext()

    def reduce_record(self, record: dict) -> dict:
        """One record from every rank's: counts summed, equal values kept, the rest averaged."""
        records = self.gather(record)
        out = {}
        for key in record:
            values = [r[key] for r in records if r.get(key) is not None]
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            if not values or not numeric:
                # text, or None on every rank
                out[key] = record[key]
            elif key in SUMMED:
                out[key] = sum(values)
            else:
                out[key] = values[0] if len(set(values)) == 1 else sum(values) / len(values)
        return {**out, "world_size": self.world_size}

    def barrier(self) -> None:
        torch.distributed.barrier()


def runtime() -> Runtime:
    """The single-process runtime, or (under a launcher that set ``WORLD_SIZE`` > 1) an
    accelerated one."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Runtime()
    try:
        from accelerate import Accelerator
    except ImportError:
        raise MissingExtra(
            "a multi-process launch needs accelerate: pip install 'elpo_min[dist]'"
        ) from None
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    return AcceleratedRuntime(accelerator)
