"""One policy update, run by every rank of a launch (or by one plain process).

Every rank samples the same trees for the same 4 prompts (same seed, same weights), keeps
its share and updates; rank 0 saves the parameters. Run without a launcher, the one process
keeps all 4 trees: the union batch. tests/test_distributed.py compares the two, the one process
on per-leaf rows (``--forward chunked``), the launch through the packed update.

``--train DIR`` then trains through the command line, in the same processes (one launch fewer):
a 2-step LoRA run saving every step, and the same run resumed from its step-1 checkpoint.
"""

import argparse
import shutil
from pathlib import Path

import torch

from elpo_min import toy
from elpo_min.bel import build_trees
from elpo_min.checkpoints.store import whole
from elpo_min.config import Config
from elpo_min.fast_update import ChunkedLogProbs, PackedLogProbs
from elpo_min.models import load_policy
from elpo_min.parallel import runtime
from elpo_min.rollout import RolloutEngine
from elpo_min.tools import run_arith
from elpo_min.train import grpo_trees, policy_update, training_batch

# a run of two steps on the tiny policy, saved after each
RUN = [
    "--steps",
    "2",
    "--prompts_per_step",
    "2",
    "--n_total",
    "4",
    "--b_max",
    "2",
    "--eval_problems",
    "6",
    "--eval_every",
    "2",
    "--save_every",
    "1",
    "--threads",
    "1",
    "--progress",
    "false",
]
# the same with LoRA, evaluated on fewer problems (a repeated key's last value wins)
TRAIN_RUN = [*RUN, "--eval_problems", "2", "--lora_rank", "8"]


FORWARDS = {"chunked": ChunkedLogProbs, "packed": PackedLogProbs}


def main(
    out_dir: str,
    micro_batch_size: int = 0,
    lora_rank: int = 0,
    algos=("elpo", "grpo"),
    forward_name: str = "chunked",
) -> None:
    torch.set_num_threads(1)
    rt = runtime()
    for algo in algos:
        # the trees of one algorithm serve both aggregations: sampled once, from the same weights
        torch.manual_seed(0)
        model, tok = load_policy()
        engine = RolloutEngine(model, tok, tool=run_arith)
        problems = toy.generate_problems(4, seed=5)
        trees = (
            build_trees(engine, problems, n_total=4, b_max=2)
            if algo == "elpo"
            else grpo_trees(engine, problems, 4)
        )
        for aggregation in ("seq-mean-token-mean", "token-mean"):
            # a fresh copy of the policy for every update, its LoRA adapter initialized alike
            torch.manual_seed(1)
            model, _ = load_policy(lora_rank=lora_rank)
            cfg = Config(
                algo=algo, aggregation=aggregation, micro_batch_size=micro_batch_size, n_total=4
            )
            batch, _ = training_batch(rt.shard(trees), cfg, tok.pad_token_id)
            # ratios off 1: clipping binds
            batch["old_logp"] = batch["old_logp"] - 0.1 * batch["action_mask"]
            optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
            forward, optimizer = rt.prepare(FORWARDS[forward_name](model), optimizer)
            stats = policy_update(forward, optimizer, batch, cfg, rt)
            loss = rt.all_sum([stats["loss"]])[0]
            sequences = rt.all_sum([batch["input_ids"].shape[0]])[0]
            # under FSDP each rank holds a shard of every parameter (a DTensor): gathered by all
            sharded = all(type(p).__name__ == "DTensor" for p in model.parameters())
            # FSDP's units: one per decoder layer, and the root
            units = sum(type(m).__name__.startswith("FSDP") for m in forward.modules())
            params = [whole(p.detach()).clone() for p in model.parameters()]
            if rt.is_main:
                torch.save(
                    {
                        "params": params,
                        "loss": loss,
                        "grad_norm": stats["grad_norm"],
                        "sequences": sequences,
                        "sharded": sharded,
                        "fsdp_units": units,
                    },
                    f"{out_dir}/{algo}_{aggregation}.pt",
                )


def resume_from_step(finished: Path, step: int, folder: Path) -> None:
    """Copy a finished run's folder and point its checkpoint back at an earlier saved step: the
    state a run interrupted after that step leaves behind (and one launch fewer to make it)."""
    shutil.copytree(finished, folder, symlinks=True)
    link = folder / "checkpoint"
    version = f"checkpoints/step-{step:06d}"
    assert (folder / version).is_dir(), sorted(p.name for p in (folder / "checkpoints").iterdir())
    link.unlink()
    link.symlink_to(version)
    # the later versions go too: whatever the resumed run leaves behind, it wrote itself
    for later in (folder / "checkpoints").glob("step-*"):
        if later.name > f"step-{step:06d}":
            shutil.rmtree(later)


def train_and_resume(folder: Path) -> None:
    """``train`` for two steps, then the same run resumed from its step-1 checkpoint."""
    from elpo_min.launch.cli import main as cli

    straight, resumed = folder / "straight", folder / "resumed"
    cli(["train", *TRAIN_RUN, "--out_dir", str(straight)])
    rt = runtime()
    if rt.is_main:
        resume_from_step(straight, 1, resumed)
    rt.barrier()
    cli(["train", *TRAIN_RUN, "--out_dir", str(resumed), "--resume"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("micro_batch_size", type=int)
    parser.add_argument("--lora_rank", type=int, default=0)
    parser.add_argument("--algos", nargs="+", default=["elpo", "grpo"])
    parser.add_argument("--train", type=Path, help="then train and resume in this folder")
    parser.add_argument("--forward", choices=sorted(FORWARDS), default="chunked")
    args = parser.parse_args()
    main(args.out_dir, args.micro_batch_size, args.lora_rank, args.algos, args.forward)
    if args.train:
        train_and_resume(args.train)
