"""One policy update, run by every rank of a torchrun launch (or by one plain process).

Every rank samples the same trees for the same 4 prompts (same seed, same weights), keeps
its share and updates; rank 0 saves the parameters. Run without a launcher, the one process
keeps all 4 trees: the union batch. tests/test_distributed.py compares the two.
"""

import sys

import torch

from elpo_min import toy
from elpo_min.bel import build_trees
from elpo_min.config import Config
from elpo_min.fast_update import ChunkedLogProbs
from elpo_min.models import load_policy
from elpo_min.parallel import runtime
from elpo_min.rollout import RolloutEngine
from elpo_min.tools import run_arith
from elpo_min.train import grpo_trees, policy_update, training_batch


def main(out_dir: str, micro_batch_size: int = 0) -> None:
    torch.set_num_threads(1)
    rt = runtime()
    for algo in ("elpo", "grpo"):
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
            # a fresh copy of the policy for every update
            model, _ = load_policy()
            cfg = Config(
                algo=algo, aggregation=aggregation, micro_batch_size=micro_batch_size, n_total=4
            )
            batch, _ = training_batch(rt.shard(trees), cfg, tok.pad_token_id)
            # ratios off 1: clipping binds
            batch["old_logp"] = batch["old_logp"] - 0.1 * batch["action_mask"]
            optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
            forward, optimizer = rt.prepare(ChunkedLogProbs(model), optimizer)
            stats = policy_update(forward, optimizer, batch, cfg, rt)
            loss = rt.all_sum([stats["loss"]])[0]
            if rt.is_main:
                torch.save(
                    {
                        "params": [p.detach().clone() for p in model.parameters()],
                        "loss": loss,
                        "sequences": rt.all_sum([batch["input_ids"].shape[0]])[0],
                    },
                    f"{out_dir}/{algo}_{aggregation}.pt",
                )
            else:
                rt.all_sum([batch["input_ids"].shape[0]])


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
