"""Checkpoints that no crash can lose and no corruption can pass off as good.

Layout of ``out_dir``::

    checkpoints/step-000010/   model/ (or the LoRA adapter) + tokenizer, trainer_state.pt,
                               config.json, manifest.json (a SHA-256 digest of every file)
    checkpoint -> checkpoints/step-000010

A version is written completely under a temporary name, renamed into ``checkpoints/``, and only
then published by replacing the ``checkpoint`` link, one atomic rename. A crash at any point
leaves the previous checkpoint or the new one, never none; older versions are deleted after the
switch (the one published before is kept). A version is never replaced in place: a step saved
twice gets a new name (``step-000010-2``). A write that fails (a full disk, any ``OSError``)
removes what it wrote and raises :class:`~elpo_min.errors.WriteFailed`, one line naming the
cause, the space needed and free, and the checkpoint still published.

Loading checks every digest against the manifest, which must be there: changed bytes or a
missing or unreadable manifest are a clear error naming the versions to go back to, instead of
a run that resumes on garbage. ``checkpoint/`` stays a path that works with
``--model out_dir/checkpoint/model``.
"""

from __future__ import annotations

import errno
import gc
import hashlib
import json
import os
import random
import re
import shutil
import sys
import traceback
from pathlib import Path

import torch

from ..errors import CheckpointError, MissingFile, UserError, WriteFailed
from ..runtime import Runtime

MIB = 1 << 20
# what a resume reads besides the weights: a manifest must vouch for both
REQUIRED = ("trainer_state.pt", "config.json")
# how libraries report an OSError they caught: safetensors' "(os error 28)"; torch.save's
# PytorchStreamWriter, which keeps no errno ("unexpected pos 576 vs 534")
OS_ERROR = re.compile(r"os error (\d+)")
TORCH_WRITE = ("inline_container", "PytorchStreamWriter", "iostream error")


def rng_state() -> dict:
    """This process's random-number states: Python's, torch's CPU one, and CUDA's if any."""
    cuda = {"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}
    return {"python": random.getstate(), "torch": torch.get_rng_state(), **cuda}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in blocks: a model's weights need not fit in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(16 * MIB):
            digest.update(block)
    return digest.hexdigest()


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below ``folder`` but the manifest, by relative path."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = str(path.relative_to(folder))
        if name != "manifest.json":
            out[name] = file_digest(path)
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


def versions(out_dir) -> list[Path]:
    """The versions in ``out_dir/checkpoints``, in the order of their names (of their steps)."""
    folder = Path(out_dir) / "checkpoints"
    return sorted(p for p in folder.glob("step-*") if p.is_dir())


def published(out_dir) -> Path | None:
    """The version ``out_dir/checkpoint`` points at, or None when the link is missing or dangles."""
    link = Path(out_dir) / "checkpoint"
    return link.resolve() if link.is_dir() else None


def step_name(version: Path | None) -> str:
    """``step 10`` for ``checkpoints/step-000010`` (and ``step-000010-2``)."""
    if version is None:
        return "none"
    number = version.name.split("-")[1] if version.name.startswith("step-") else ""
    return f"step {int(number)}" if number.isdigit() else version.name


def new_version(folder: Path, step: int) -> Path:
    """``step-NNNNNN``, or ``step-NNNNNN-2``, ... when that step was saved before (a resumed run
    interrupted before its first step ends saves its step again): a version is never replaced
    in place, so the one published stays whole until the link moves."""
    version, copy = folder / f"step-{step:06d}", 2
    while version.exists():
        version, copy = folder / f"step-{step:06d}-{copy}", copy + 1
    return version


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


def prune(out_dir: Path, keep: Path, previous: Path | None = None) -> None:
    """Delete every version but ``keep`` (published) and ``previous`` (published before it;
    without one, the newest other), and the leftovers of saves that never finished."""
    others = [v for v in versions(out_dir) if v.name != keep.name]
    names = [v.name for v in others]
    kept = [previous.name] if previous is not None and previous.name in names else names[-1:]
    old = [v for v in others if v.name not in kept]
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

    Raises:
        WriteFailed: a write failed (a full disk, any ``OSError``, or a library's error that
            wraps one); what this save wrote is removed, the published checkpoint untouched.
    """
    state = state or full_state(model, optimizer)
    out_dir = Path(out_dir)
    folder = out_dir / "checkpoints"
    staging = folder / f".step-{step:06d}-{os.getpid()}"
    previous = published(out_dir)
    version = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_version(staging, model, tokenizer, state, step, config, rng_states or [rng_state()])
        version = new_version(folder, step)
        os.replace(staging, version)
        publish(out_dir, version)
    except BaseException as error:
        free_then = free_space(out_dir)
        release_files(error)
        # what this save wrote goes, unless the link already points at it
        shutil.rmtree(staging, ignore_errors=True)
        (out_dir / ".checkpoint-link").unlink(missing_ok=True)
        if version is not None and published(out_dir) != version.resolve():
            shutil.rmtree(version, ignore_errors=True)
        failure = save_failure(error, step, out_dir, previous, state, model, free_then)
        if failure is None:
            raise
        raise failure from error
    prune(out_dir, version, previous)


def chain(error: BaseException | None):
    """``error`` and the exceptions it was raised from or during, each once."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def release_files(error: BaseException) -> None:
    """Let go of the files a failed write left open (torch.save's writer, kept alive by the
    frames of the traceback): a deleted file's bytes stay on the disk while it is open."""
    for link in chain(error):
        traceback.clear_frames(link.__traceback__)
    gc.collect()


def storage_cause(error: BaseException) -> tuple[int | None, str] | None:
    """``(errno or None, what failed)`` when ``error`` is an ``OSError`` or wraps one (in its
    message or its chain), else None: a bug keeps its traceback."""
    for link in chain(error):
        if isinstance(link, OSError):
            where = f" ({link.filename})" if link.filename else ""
            if link.errno is None:
                return None, f"{link}{where}"
            return link.errno, f"{link.strerror or os.strerror(link.errno)}{where}"
        text = str(link)
        found = OS_ERROR.search(text)
        if found:
            number = int(found.group(1))
            return number, os.strerror(number)
        if any(mark in text for mark in TORCH_WRITE):
            detail = re.sub(r"\[enforce fail at [^\]]*\][\s.]*", "", text).strip()
            return None, f"torch.save could not write trainer_state.pt: {detail}"
    return None


def free_space(path: Path) -> int | None:
    """Bytes free to this user on the disk of ``path`` (or of its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def tensor_bytes(value) -> int:
    """Bytes of the tensors in a (nested) state dict."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


def needed_space(previous: Path | None, state, model) -> int:
    """About what a version takes: the size of the previous one, else the state's bytes (the
    weights, the trainable ones again in trainer_state.pt, and the optimizer)."""
    if previous is not None:
        try:
            return folder_size(previous)
        except OSError:
            pass
    weights, optimizer_state = state
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    again = sum(tensor_bytes(v) for n, v in weights.items() if n in trainable)
    return tensor_bytes(weights) + again + tensor_bytes(optimizer_state)


def human(size: float | None) -> str:
    if size is None:
        return "an unknown amount"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def save_failure(error, step, out_dir, previous, state, model, free_then) -> WriteFailed | None:
    """The one line a failed save ends in: the cause, the space needed and free, and which
    checkpoint is still published; None when ``error`` is not about storage."""
    cause = storage_cause(error) if isinstance(error, Exception) else None
    if cause is None:
        return None
    number, text = cause
    full = number in (errno.ENOSPC, errno.EDQUOT)
    if number is None and free_then is not None and free_then < MIB:
        full = True
    what = f"the disk is full ({text})" if full else text
    needed = needed_space(previous, state, model)
    now = published(out_dir)
    fix = "make room" if full else "fix that"
    if now is not None:
        still = f"the checkpoint is still {step_name(now)}: {fix}, then --resume continues it"
    else:
        still = f"no checkpoint is saved yet: {fix}, then start again"
    return WriteFailed(
        f"could not save the checkpoint of step {step} in {out_dir}: {what}; a version needs "
        f"about {human(needed)} and {human(free_space(out_dir))} is free there; {still}"
    )


def complete_versions(out_dir: Path, besides: Path | None = None) -> list[str]:
    """The names of the versions in ``checkpoints/`` that hold a manifest (but ``besides``)."""
    skip = besides.name if besides is not None else None
    return [v.name for v in versions(out_dir) if (v / "manifest.json").is_file() and v.name != skip]


def publish_hint(complete: list[str], link: Path) -> str:
    return f"ln -sfn checkpoints/{complete[-1]} {link}"


def going_back(out_dir, besides: Path | None = None) -> str:
    """How to resume from another version, in words, for an error message."""
    out_dir = Path(out_dir)
    complete = complete_versions(out_dir, besides)
    if not complete:
        return "start without --resume (checkpoints/ holds no other complete version)"
    return (
        f"point the link at another version (checkpoints/ holds {', '.join(complete)}), e.g. "
        f"{publish_hint(complete, out_dir / 'checkpoint')}, or start without --resume"
    )


def nothing_to_resume(out_dir) -> MissingFile:
    """The error of a ``--resume`` that finds no published checkpoint: it names the versions
    there are, and how to publish one."""
    out_dir = Path(out_dir)
    link = out_dir / "checkpoint"
    complete = complete_versions(out_dir)
    if not complete:
        return MissingFile(
            f"nothing to resume in {out_dir}: it holds no checkpoint (start without --resume)"
        )
    if link.is_symlink():
        where = f"{link} points at {os.readlink(link)}, which does not exist"
    else:
        where = f"{link} does not exist"
    return MissingFile(
        f"nothing to resume in {out_dir}: {where}, but checkpoints/ holds {', '.join(complete)}; "
        f"publish one with {publish_hint(complete, link)} and --resume again, or "
        "start without --resume"
    )


def read_manifest(folder: Path, out_dir: Path) -> dict[str, str]:
    """The digests a version was saved with. Without them nothing can be checked, so a missing
    or unreadable manifest is an error, never a silent skip."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        problem = (
            "has no manifest.json, so its files cannot be checked (a save that never finished, "
            "or a copy without it)"
        )
    except (OSError, ValueError) as e:
        problem = f"manifest.json is unreadable ({getattr(e, 'strerror', None) or 'not JSON'})"
    else:
        if (
            isinstance(manifest, dict)
            and all(isinstance(v, str) for v in manifest.values())
            and all(name in manifest for name in REQUIRED)
        ):
            return manifest
        problem = "manifest.json does not list the digests of " + " and ".join(REQUIRED)
    raise CheckpointError(f"checkpoint {folder}: {problem}; {going_back(out_dir, folder)}")


def verify(folder: Path, out_dir, names=None) -> None:
    """Raise a clear error unless the version's files (all, or ``names``) match the digests
    of its manifest."""
    expected = read_manifest(folder, Path(out_dir))
    for name in names or sorted(expected):
        try:
            same = file_digest(folder / name) == expected[name]
        except OSError:
            same = False
        if not same:
            raise CheckpointError(
                f"checkpoint {folder}: {name} does not match the digest recorded when it was "
                f"saved (changed or missing bytes); {going_back(out_dir, folder)}"
            )


def saved_config(out_dir) -> dict | None:
    """The config the published checkpoint was written with (its digest checked first), or None
    without a checkpoint."""
    folder = Path(out_dir) / "checkpoint"
    if not folder.is_dir():
        return None
    verify(folder.resolve(), out_dir, ["config.json"])
    try:
        config = json.loads((folder / "config.json").read_text())
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise CheckpointError(
            f"checkpoint {folder.resolve()}: config.json is not a JSON mapping; "
            f"{going_back(out_dir, folder.resolve())}"
        )
    return config


def like(param, value: torch.Tensor) -> torch.Tensor:
    """A whole saved tensor shaped as ``param`` holds it: under FSDP, this rank's shard (cut from
    the whole, which every rank loaded: no communication)."""
    if not is_shard(param):
        return value
    from torch.distributed.tensor import distribute_tensor

    value = value.to(param.device)
    return distribute_tensor(value, param.device_mesh, param.placements, src_data_rank=None)


def load_checkpoint(out_dir, model, optimizer, rt: Runtime | None = None) -> int:
    """Restore weights, optimizer and this rank's RNG state; returns the step to continue from.
    Every file is checked against the manifest first."""
    rt = rt or Runtime()
    folder = Path(out_dir) / "checkpoint"
    if not folder.is_dir():
        raise nothing_to_resume(out_dir)
    version = folder.resolve()
    verify(version, out_dir)
    state = torch.load(version / "trainer_state.pt", weights_only=False)
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
