"""Checkpoints that no crash can lose and no corruption can pass off as good.

Layout of ``out_dir``::

    checkpoints/step-000010/   model/ (or the LoRA adapter) + tokenizer, trainer_state.pt,
                               config.json, manifest.json (a SHA-256 digest of every file)
    checkpoint -> checkpoints/step-000010

A version is written completely under a temporary name, renamed into ``checkpoints/``, and only
then published by replacing the ``checkpoint`` link, one atomic rename. A crash at any point
leaves the previous checkpoint or the new one, never none; older versions are deleted after the
switch (the previous one is kept). Loading checks every digest, so changed bytes are a clear
error instead of a run that resumes on garbage. ``checkpoint/`` stays a path that works with
``--model out_dir/checkpoint/model``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
from pathlib import Path

import torch

from ..errors import MissingFile, UserError
from ..runtime import Runtime

# versions kept besides the one published
KEEP_PREVIOUS = 1


def rng_state() -> dict:
    """This process's random-number states: Python's, torch's CPU one, and CUDA's if any."""
    cuda = {"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}
    return {"python": random.getstate(), "torch": torch.get_rng_state(), **cuda}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below ``folder`` but the manifest, by relative path."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = str(path.relative_to(folder))
        if name != "manifest.json":
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def is_shard(value) -> bool:
    """Whether ``value`` is an FSDP shard (a DTensor). Without FSDP nothing has imported
    torch.distributed.tensor (0.7 s to import), and no value can be one."""
    dtensor = sys.modules.get("torch.distributed.tensor")
    return dtensor is not None and isinstance(value, dtensor.DTensor)


def whole(value):
    """A tensor as one process holds it: an FSDP shard gathered from every rank (a collective),
    anything else as it is."""
    return value.full_tensor() if is_shard(value) else value


def full_state(model, optimizer) -> tuple[dict, dict]:
    """The model's and the optimizer's state dicts with whole tensors, as a checkpoint holds them.

    Under FSDP every rank must call it, in the same order (each tensor is gathered); a peft model
    then gathers only its trainable tensors (the adapter, all it saves), not the frozen base.
    """
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    adapter_only = hasattr(model, "peft_config")
    weights = {
        name: whole(value)
        for name, value in model.state_dict().items()
        if name in trainable or not adapter_only
    }
    optimizer_state = optimizer.state_dict()
    if "state" in optimizer_state:  # a torch optimizer's layout (DeepSpeed's differs)
        optimizer_state["state"] = {
            index: {key: whole(value) for key, value in entry.items()}
            for index, entry in optimizer_state["state"].items()
        }
    return weights, optimizer_state


def write_version(folder: Path, model, tokenizer, state, step, config, rng_states) -> None:
    """Everything a resume needs, then the manifest of its digests, last.

    Args:
        state: ``(model state dict, optimizer state dict)`` from :func:`full_state`.
    """
    weights, optimizer_state = state
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder / "model", state_dict=weights)
    tokenizer.save_pretrained(folder / "model")
    trainable = {
        n: weights[n].detach().cpu() for n, p in model.named_parameters() if p.requires_grad
    }
    state = {"step": step, "trainable": trainable, "optimizer": optimizer_state}
    torch.save({**state, "rng": rng_states}, folder / "trainer_state.pt")
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "manifest.json").write_text(json.dumps(digests(folder), indent=2))


def publish(out_dir: Path, version: Path) -> None:
    """Point ``out_dir/checkpoint`` at ``version`` with one atomic rename of a new link."""
    link = out_dir / "checkpoint"
    if link.is_dir() and not link.is_symlink():
        # a checkpoint of the layout before versions: keep it as a version of its own
        os.replace(link, out_dir / "checkpoints" / "step-legacy")
    staged = out_dir / ".checkpoint-link"
    staged.unlink(missing_ok=True)
    staged.symlink_to(version.relative_to(out_dir))
    os.replace(staged, link)


def prune(out_dir: Path, keep: Path) -> None:
    """Delete versions and leftovers of interrupted saves but the published one and the last few."""
    versions = sorted((out_dir / "checkpoints").glob("step-*"))
    old = [v for v in versions if v != keep][: max(len(versions) - 1 - KEEP_PREVIOUS, 0)]
    for path in old + list((out_dir / "checkpoints").glob(".step-*")):
        shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(
    out_dir, model, tokenizer, optimizer, step, config, rng_states=None, state=None
) -> None:
    """Write, publish and prune: ``out_dir/checkpoint`` then holds the state after ``step``.

    Args:
        out_dir: the run's folder.
        model, tokenizer, optimizer: what to save (a peft model saves only its adapter).
        step: the number of finished steps.
        config: the run's config as a dict.
        rng_states: one per data-parallel rank (default: this process's).
        state: :func:`full_state` of model and optimizer, gathered beforehand by every rank
            under FSDP (default: gathered here, which one process can do alone).
    """
    state = state or full_state(model, optimizer)
    out_dir = Path(out_dir)
    versions = out_dir / "checkpoints"
    versions.mkdir(parents=True, exist_ok=True)
    version = versions / f"step-{step:06d}"
    staging = versions / f".step-{step:06d}-{os.getpid()}"
    write_version(staging, model, tokenizer, state, step, config, rng_states or [rng_state()])
    if version.exists():
        # the same step saved again (a resumed run): set the old copy aside, not in place
        os.replace(version, versions / f".step-{step:06d}-replaced-{os.getpid()}")
    os.replace(staging, version)
    publish(out_dir, version)
    prune(out_dir, version)


def verify(folder: Path) -> None:
    """Raise a clear error unless every file of the version matches its recorded digest."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        # a checkpoint from before digests were recorded
        return
    expected = json.loads(manifest.read_text())
    found = digests(folder)
    for name, digest in expected.items():
        if found.get(name) != digest:
            raise UserError(
                f"checkpoint {folder}: {name} does not match the digest recorded when it was "
                f"saved (changed or missing bytes); point {folder.parent.parent}/checkpoint at an "
                f"earlier version in {folder.parent} (ln -sfn), or start without --resume"
            )


def saved_config(out_dir) -> dict | None:
    """The config the published checkpoint was written with, or None without a checkpoint."""
    path = Path(out_dir) / "checkpoint" / "config.json"
    return json.loads(path.read_text()) if path.is_file() else None


def like(param, value: torch.Tensor) -> torch.Tensor:
    """A whole saved tensor shaped as ``param`` holds it: under FSDP, this rank's shard (cut from
    the whole, which every rank loaded: no communication)."""
    if not is_shard(param):
        return value
    from torch.distributed.tensor import distribute_tensor

    value = value.to(param.device)
    return distribute_tensor(value, param.device_mesh, param.placements, src_data_rank=None)


def load_checkpoint(out_dir, model, optimizer, rt: Runtime | None = None) -> int:
    """Restore weights, optimizer and this rank's RNG state; returns the step to continue from."""
    rt = rt or Runtime()
    folder = Path(out_dir) / "checkpoint"
    path = folder / "trainer_state.pt"
    if not path.is_file():
        raise MissingFile(f"nothing to resume: {path} does not exist (start without --resume)")
    verify(folder.resolve())
    state = torch.load(path, weights_only=False)
    rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
    if len(rngs) != rt.world_size:
        raise UserError(
            f"the checkpoint in {out_dir} was written by {len(rngs)} process(es) and this run has "
            f"{rt.world_size}: resume with {len(rngs)} (the world size cannot change)"
        )
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["trainable"].items():
            params[name].copy_(like(params[name], value))
    optimizer.load_state_dict(state["optimizer"])
    for param, entry in optimizer.state.items():
        for key, value in entry.items():
            if is_shard(param) and value.shape == param.shape:
                entry[key] = like(param, value)
    set_rng_state(rngs[rt.rank])
    return state["step"]
