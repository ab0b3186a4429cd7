"""The :class:`~elpo_min.runtime.Runtime` of one rank among several, on ``accelerate``."""

from __future__ import annotations

import contextlib
import os

import torch

from ..errors import ConfigError, MissingExtra
from ..runtime import Runtime
from . import fsdp

# step-record fields that are counts (summed over ranks); the others are averaged
SUMMED = {"sequences", "unprobed", "loss", "kl_ref"}


class AcceleratedRuntime(Runtime):
    """Rank ``rank`` of ``world_size`` processes: gloo on CPU, NCCL on GPUs; DDP, or DeepSpeed as
    accelerate's config says, or FSDP2, which elpo_min applies itself (:mod:`.fsdp`).

    Args:
        accelerator: an ``accelerate.Accelerator``.
        fsdp_options: ``fully_shard``'s arguments when the launch asked for FSDP, else None.
    """

    def __init__(self, accelerator, fsdp_options: dict | None = None):
        self.accelerator = accelerator
        self.rank = accelerator.process_index
        self.world_size = accelerator.num_processes
        self.fsdp = fsdp_options

    def prepare(self, forward, optimizer):
        if self.fsdp is not None:
            fsdp.shard(forward, optimizer, **self.fsdp)
            return forward, optimizer
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
        if self.fsdp is not None:
            loss.backward()
        else:
            self.accelerator.backward(loss)

    def no_sync(self, forward, sync: bool):
        if sync:
            return contextlib.nullcontext()
        if self.fsdp is not None:
            return fsdp.no_sync(forward)
        return self.accelerator.no_sync(forward)

    def clip_grad_norm(self, params, max_norm: float) -> float:
        if self.fsdp is not None:
            return fsdp.clip_grad_norm(params, max_norm)
        norm = self.accelerator.clip_grad_norm_(params, max_norm)
        # DeepSpeed clips inside its own step and returns None
        return float(norm) if norm is not None else float("nan")

    def full_weights(self, forward):
        if self.fsdp is not None:
            return fsdp.unsharded(forward, **self.fsdp)
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
    # checked before accelerate reads the FSDP variables (it rejects FSDP1 on CPU less clearly)
    fsdp_options = fsdp.options() if fsdp.requested() else None
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    if deepspeed and not torch.cuda.is_available():
        raise ConfigError(
            "accelerate config: DeepSpeed without a GPU; on CPU accelerate would run plain DDP "
            "instead and say nothing (the DeepSpeed configs are untested: docs/distributed.md)"
        )
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    return AcceleratedRuntime(accelerator, fsdp_options)
