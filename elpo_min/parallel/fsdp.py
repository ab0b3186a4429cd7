"""FSDP2 (torch's ``fully_shard``) for :class:`~elpo_min.parallel.AcceleratedRuntime`.

elpo_min shards the model itself instead of handing it to ``accelerator.prepare``: accelerate
(1.16) turns on FSDP only on GPUs and, on CPU, silently runs DDP instead, so its path could never
be tested here; torch's ``fully_shard`` runs over gloo on CPU as it does over NCCL on GPUs. The
accelerate config still says what is wanted (``distributed_type: FSDP``, ``fsdp_version: 2``);
``accelerate launch`` passes it on as ``FSDP_*`` environment variables, read below.

Each decoder layer (the model's ``_no_split_modules``) is one FSDP unit, the rest (embeddings,
final norm, output head) belongs to the root, :class:`~elpo_min.logprobs.LogProbs`. Outside a
forward every rank holds 1/N of each parameter, as a DTensor; the optimizer steps on the shards.
"""

from __future__ import annotations

import contextlib
import os

import torch

from ..errors import ConfigError


def requested() -> bool:
    """Whether the launch asked for FSDP (``accelerate launch`` with an FSDP config)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def options() -> dict:
    """The ``fully_shard`` arguments from accelerate's ``FSDP_*`` variables; a ConfigError for
    a setting elpo_min does not implement (rather than a run that quietly ignores it)."""
    env = os.environ.get
    if env("FSDP_VERSION", "1") != "2":
        raise ConfigError(
            "accelerate config: elpo_min runs FSDP2 (torch's fully_shard); set fsdp_version: 2 "
            "as configs/accelerate/fsdp.yaml does (FSDP1 is deprecated)"
        )
    unsupported = {
        "FSDP_OFFLOAD_PARAMS": "fsdp_offload_params",
        "FSDP_ACTIVATION_CHECKPOINTING": "fsdp_activation_checkpointing (elpo_min turns "
        "gradient checkpointing on itself: gradient_checkpointing in the training config)",
    }
    for name, setting in unsupported.items():
        if env(name, "false").lower() == "true":
            raise ConfigError(f"accelerate config: elpo_min's FSDP does not implement {setting}")
    if env("ACCELERATE_MIXED_PRECISION", "no") != "no":
        raise ConfigError(
            "accelerate config: set mixed_precision: 'no' with FSDP (the training config's dtype "
            "sets the precision of the weights)"
        )
    policy = env("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP")
    if policy != "TRANSFORMER_BASED_WRAP":
        raise ConfigError(
            f"accelerate config: fsdp_auto_wrap_policy {policy}; elpo_min shards by decoder layer "
            "(TRANSFORMER_BASED_WRAP)"
        )
    return {"reshard_after_forward": env("FSDP_RESHARD_AFTER_FORWARD", "true").lower() == "true"}


def shard(forward, optimizer, reshard_after_forward: bool = True) -> None:
    """Shard ``forward`` (a LogProbs) in place, one unit per decoder layer plus the root, and point
    ``optimizer`` at the sharded parameters that replace the originals."""
    from torch.distributed.fsdp import fully_shard

    names = {param: name for name, param in forward.named_parameters()}
    layers = set(forward._no_split_modules or ())
    for module in [m for m in forward.modules() if type(m).__name__ in layers]:
        fully_shard(module, reshard_after_forward=reshard_after_forward)
    fully_shard(forward, reshard_after_forward=reshard_after_forward)
    sharded = dict(forward.named_parameters())
    for group in optimizer.param_groups:
        group["params"] = [sharded[names[param]] for param in group["params"]]
    # FSDP makes the first sharded module to run forward its root. Rollouts call the model, not
    # LogProbs, so run a forward through LogProbs now, before any rollout does.
    device = next(iter(sharded.values())).device
    ids = torch.zeros(1, 2, dtype=torch.long, device=device)  # [1, 2]
    with torch.no_grad():
        forward(ids, torch.ones_like(ids), torch.ones_like(ids))


@contextlib.contextmanager
def unsharded(forward, reshard_after_forward: bool = True):
    """Every parameter whole on every rank inside (generation needs all of them at every step).

    The layers' FSDP hooks still run at each decode step; told not to reshard after forward,
    they find their weights whole and do nothing, so ranks may decode different lengths.
    """
    from torch.distributed.fsdp import FSDPModule

    units = [m for m in forward.modules() if isinstance(m, FSDPModule)]
    forward.set_reshard_after_forward(False)
    for unit in units:
        unit.unshard()
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
            # as fully_shard left them: the root keeps its weights from forward to backward
            unit.set_reshard_after_forward(
                reshard_after_forward and unit is not forward, recurse=False
            )


@contextlib.contextmanager
def no_sync(forward):
    """Gradients accumulate unreduced on each rank inside; the next backward outside reduces."""
    forward.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        forward.set_requires_gradient_sync(True)


def clip_grad_norm(params, max_norm: float) -> float:
    """The global gradient norm over the shards (a replicated DTensor), clipped to max_norm."""
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
