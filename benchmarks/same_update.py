"""Is one policy update of this checkout the same as another checkout's, up to rounding?

Samples GRPO rollouts for 8 toy prompts with the shipped policy, then runs one
``policy_update`` (demo config) with each checkout's own ``elpo_min`` on the same batch,
from the same weights and seed, and prints how far apart the updated parameters are.

    git worktree add /tmp/old <an older commit>
    python benchmarks/same_update.py --old /tmp/old
"""

import argparse
import importlib
import sys
from pathlib import Path

import torch


def load(root: str) -> dict:
    """Import ``elpo_min`` from the checkout at ``root`` (dropping any earlier import)."""
    for name in [m for m in sys.modules if m == "elpo_min" or m.startswith("elpo_min.")]:
        del sys.modules[name]
    sys.path.insert(0, root)
    mods = {n: importlib.import_module(f"elpo_min.{n}") for n in ("train", "models", "config")}
    # the trainer's own training forward (a checkout from before it was configurable trains a
    # bare model through its one head)
    build = importlib.import_module("elpo_min.launch.build")
    mods["forward"] = getattr(build, "training_forward", lambda cfg: lambda model: model)
    sys.path.pop(0)
    return mods


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="a checkout of the commit to compare with")
    args = ap.parse_args()
    torch.set_num_threads(1)
    here = str(Path(__file__).resolve().parent.parent)
    new = load(here)
    from elpo_min import toy
    from elpo_min.rollout import RolloutEngine
    from elpo_min.tools import run_arith

    model, tok = new["models"].load_policy()
    torch.manual_seed(3)
    engine = RolloutEngine(model.eval(), tok, tool=run_arith)
    trees = new["train"].grpo_trees(engine, toy.generate_problems(8, seed=9), 16)
    params = {}
    for name, root in (("this", here), ("old", args.old)):
        m = load(root)
        cfg = m["config"].Config()
        batch, _ = m["train"].training_batch(trees, cfg, tok.pad_token_id)
        policy, _ = m["models"].load_policy()
        torch.manual_seed(0)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr)
        stats = m["train"].policy_update(m["forward"](cfg)(policy), optimizer, batch, cfg)
        params[name] = [p.detach().clone() for p in policy.parameters()]
        print(
            f"{name:5s} {m['train'].__file__}: loss {stats['loss']:.8f}, "
            f"grad norm {stats['grad_norm']:.8f}"
        )
    start = [p.detach() for p in new["models"].load_policy()[0].parameters()]
    step = sum(float((a - b).abs().sum()) for a, b in zip(params["this"], start))
    gap = sum(float((a - b).abs().sum()) for a, b in zip(params["this"], params["old"]))
    print(f"update size (sum |delta|) {step:.4g}; this vs old {gap:.4g}; relative {gap / step:.2g}")


if __name__ == "__main__":
    main()
