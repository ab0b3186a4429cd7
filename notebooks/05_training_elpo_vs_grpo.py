# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Training: ELPO vs GRPO at equal rollout budget
#
# Both algorithms get the same number of rollouts per prompt per step (N_total):
# GRPO spends them all on independent full trajectories and z-scores the rewards per
# group; ELPO spends part of them on BEL's continuations and uses hierarchical
# advantages plus ELC. Everything else (model, optimizer, learning rate, loss
# aggregation, evaluation) is shared: `train(cfg)` with `algo="elpo"` or `"grpo"`.
#
# The runs here are deliberately short so the notebook executes in about a minute on a
# CPU; `make demo` and `benchmarks/compare.py` run the longer, multi-seed version.

# %%
# Quiet library chatter (progress bars, warnings) so checked outputs are reproducible.
import warnings

warnings.filterwarnings("ignore")
import peft  # noqa: F401, E402  (imports bitsandbytes, which prints once on CPU)
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()

# %%
import matplotlib.pyplot as plt
import torch

from elpo_min import Config, toy
from elpo_min.metrics import evaluate
from elpo_min.models import load_policy
from elpo_min.plots import plot_learning_curve, read_log
from elpo_min.rollout import RolloutEngine
from elpo_min.train import train

# %%
short = {"steps": 6, "prompts_per_step": 4, "n_total": 8, "eval_every": 3, "eval_problems": 100,
         "save_every": 6, "progress": False, "seed": 0, "model": "../data/tiny_policy",
         "train_data": "../data/toy_train.jsonl", "test_data": "../data/toy_test.jsonl"}
results = {}
for algo in ("elpo", "grpo"):
    cfg = Config.load(None, {**short, "algo": algo, "out_dir": f"../runs/nb05-{algo}"})
    results[algo] = train(cfg)
    print(f"{algo}: held-out success {results[algo]['before']['success_rate']:.0%} -> "
          f"{results[algo]['after']['success_rate']:.0%}")

# %% [markdown]
# ## Learning curves
# Held-out pass@1 (left) and the success rate of the full rollouts sampled for
# training (right).

# %% tags=["readme-figure"]
# NBVAL_IGNORE_OUTPUT
plot_learning_curve([results["elpo"]["log"], results["grpo"]["log"]], "../runs/nb05-curves.png", ["ELPO", "GRPO"])
from IPython.display import Image
Image("../runs/nb05-curves.png")

# %% [markdown]
# ## What ELPO logged along the way
# `t_crit_mean` is the average first irrecoverable step found by BEL; `unprobed`
# counts selected failures that got no probe; `t_crit_oracle_agree` is how often a
# probed t_crit equals the toy oracle's first wrong step (the oracle also flags
# recoverable mistakes, such as a call that raises and is retried, so agreement below
# 1 is expected). The clip fractions are split into the error suffix (where ELC
# widened the lower bound) and everything else. With one PPO epoch the ratio leaves 1
# only from a step's second mini-batch on. These short runs fit each step into one
# mini-batch of 64 sequences, so every clip fraction is exactly 0 here, and ELC changes
# nothing; in the 30-step runs of `make demo` the clip fractions stay under 2%.
# `ppo_epochs=2` or a smaller `minibatch_size` makes the updates more off-policy and
# gives clipping, and with it ELC, something to do.

# %%
keys = ("step", "train_success", "t_crit_mean", "t_crit_oracle_agree", "unprobed",
        "clip_frac_in_region", "clip_frac_out_region")
for record in read_log(results["elpo"]["log"])[1:]:
    print({k: None if record[k] is None else round(record[k], 3) for k in keys})

# %% [markdown]
# ## pass@k, maj@k and tool calls of the trained policies

# %%
test = [toy.problem_from_row(r) for r in toy.load_problems("../data/toy_test.jsonl", limit=60)]
rows = []
for name, path in (("start", "../data/tiny_policy"), ("ELPO", "../runs/nb05-elpo/checkpoint/model"),
                   ("GRPO", "../runs/nb05-grpo/checkpoint/model")):
    model, tokenizer = load_policy(path)
    torch.manual_seed(0)
    s = evaluate(RolloutEngine(model.eval(), tokenizer), test, k=4, progress=False)
    rows.append(f"{name:6s} pass@1 {s['pass@1']:.2f}  pass@4 {s['pass@4']:.2f}  maj@4 {s['maj@4']:.2f}  "
                f"tool calls per solved {s['tool_calls_per_solved']:.2f}")
print("\n".join(rows))

# %% [markdown]
# ## What to try next
# * Longer runs: `python -m elpo_min train --algo grpo --steps 60` and compare the curves.
# * `lambda_tree=0` turns ELPO's advantages into GRPO's while keeping BEL and ELC.
# * `n_total=32`: more budget per prompt, more probes per failure.
