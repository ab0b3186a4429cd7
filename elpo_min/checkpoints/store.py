"""Checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint holds the model (or only its LoRA adapter) with the tokenizer, the trainable
weights and the optimizer state, the random-number states of every rank, the step, and the
config. It is written aside and then renamed into place, so a crash mid-write never touches
the last good one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import torch

from ..errors import MissingFile
from ..runtime import Runtime


def rng_state() -> dict:
    """This process's random-number states: Python's, torch's CPU one, and CUDA's if any."""
    cuda = {"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}
    return {"python": random.getstate(), "torch": torch.get_rng_state(), **cuda}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    out_dir: Path,
    model,
    tokenizer,
    optimizer,
    step: int,
    config: dict,
    rng_states: list | None = None,
) -> None:
    """Write ``out_dir/checkpoint``, built aside and then swapped in.

    Args:
        out_dir: the run's folder.
        model, tokenizer, optimizer: what to save (a peft model saves only its adapter).
        step: the number of finished steps.
        config: the run's config as a dict.
        rng_states: one per data-parallel rank (default: this process's).
    """
    tmp = out_dir / f".checkpoint-{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp / "model")
    tokenizer.save_pretrained(tmp / "model")
    trainable = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
    state = {
        "step": step,
        "trainable": trainable,
        "optimizer": optimizer.state_dict(),
        "rng": rng_states or [rng_state()],
    }
    torch.save(state, tmp / "trainer_state.pt")
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    final = out_dir / "checkpoint"
    old = out_dir / f".checkpoint-old-{step}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(out_dir: Path, model, optimizer, rt: Runtime | None = None) -> int:
    """Restore weights, optimizer and this rank's RNG state; returns the step to continue from."""
    rt = rt or Runtime()
    path = out_dir / "checkpoint" / "trainer_state.pt"
    if not path.is_file():
        raise MissingFile(f"nothing to resume: {path} does not exist (start without --resume)")
    state = torch.load(path, weights_only=False)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["trainable"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
    if len(rngs) == rt.world_size:
        set_rng_state(rngs[rt.rank])
    else:
        print(
            f"warning: the checkpoint holds RNG states for {len(rngs)} process(es), this run has "
            f"{rt.world_size}: it resumes with fresh seeds, so rollouts differ from an "
            "uninterrupted run"
        )
        torch.manual_seed(1_000_003 * state["step"] + rt.rank)
    return state["step"]
