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
# # 01 · Tool-integrated rollouts
#
# ELPO trains agents that think in turns: each assistant turn ends in a **tool call**
# (Python code) or a **final answer**; the environment runs the code and appends its
# output to the context. This notebook walks through the pieces that produce such
# trajectories: the toy task, the sandboxed tool, the tiny policy, and the rollout
# engine that records, for every token, whether it is an *action* and how surprised
# the policy was when it sampled it.

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

from elpo_min import toy
from elpo_min.diagnostics import render_trajectory
from elpo_min.models import load_policy
from elpo_min.rollout import RolloutEngine
from elpo_min.sft import demonstration
from elpo_min.tools import run_arith, run_python

# %% [markdown]
# ## The toy world
#
# Chain arithmetic: a start number and operations applied left to right. The policy
# must copy numbers into tool calls; the tool does the arithmetic.

# %%
# NBVAL_CHECK_OUTPUT
problem = toy.generate_problems(1, seed=42)[0]
print(problem.prompt, end="")
print("correct intermediate values:", problem.values)
print(demonstration(problem, rng=__import__("random").Random(0)))

# %% [markdown]
# Two kinds of mistakes. A call that raises is **recoverable** (the correct number is
# still in context); a mis-copied number is **irrecoverable** (every later output is
# wrong too). The oracle names the first step whose output departs from the correct
# computation, also when a later retry repaired it.

# %%
# NBVAL_CHECK_OUTPUT
v = problem.values
print("repaired error :", toy.first_error_step(problem, [str(v[1]), "SyntaxError: invalid syntax"] + [str(x) for x in v[2:]]))
print("carried error  :", toy.first_error_step(problem, [str(v[1]), str(v[2] + 1000)]))
print("all correct    :", toy.first_error_step(problem, [str(x) for x in v[1:]]))

# %% [markdown]
# ## The sandboxed Python tool
#
# `run_python` starts a fresh interpreter per call with time, memory and output
# limits, a scrubbed environment and an audit hook that refuses process creation and
# writes outside its own directory. The final bare expression is printed, as in a
# notebook.

# %%
# NBVAL_CHECK_OUTPUT
print(run_python("2 ** 100").render())
print(run_python("1 / 0").render())
print(run_python("import os; os.fork()").render())
r = run_python("while True:\n    pass", timeout_s=1.0)
print(r.render(), "| timed out:", r.timed_out)

# %% [markdown]
# ## The tiny policy
#
# A Qwen2-architecture model of 0.8M parameters with a character-level tokenizer,
# warmed up on demonstrations with a controlled mistake rate (see `data/tiny_policy/tiny_policy.json`
# for the command and its held-out success rate).

# %%
# NBVAL_CHECK_OUTPUT
model, tokenizer = load_policy()
model.eval()
print(f"{sum(p.numel() for p in model.parameters()):,} parameters, vocabulary of {len(tokenizer)} tokens")

# %% [markdown]
# ## One trajectory, token by token
#
# The engine generates a turn for the whole batch, runs every pending tool call,
# appends the tokenized outputs with **action mask 0**, and repeats. For each sampled
# token it records the log-prob and the full-vocabulary entropy
# $H = -\sum_j p_j \log p_j$ of the (temperature-scaled) sampling distribution.

# %%
torch.manual_seed(3)
engine = RolloutEngine(model, tokenizer, tool=run_arith)
traj = engine.rollout([engine.start(problem)], 1)[0][0]
print(render_trajectory(traj, tokenizer, color=False))

# %%
rows = []
for i in range(traj.prompt_len, min(len(traj.token_ids), traj.prompt_len + 30)):
    rows.append(f"{tokenizer.decode([traj.token_ids[i]])!r:>8}  mask={traj.action_mask[i]}  "
                f"logp={traj.logprobs[i]:7.3f}  H={traj.entropies[i]:.3f}")
print("\n".join(rows))

# %% [markdown]
# Tool-output tokens carry mask 0 and no log-prob: they are context, not actions.
# The entropy spikes show where the policy hesitates: the digits it copies.

# %% tags=["readme-figure"]
fig, ax = plt.subplots(figsize=(10, 3))
xs = range(len(traj.token_ids))
ax.bar(xs, traj.entropies, width=1.0, color="tab:blue")
for t in traj.turns:
    if t.out_end > t.end:
        ax.axvspan(t.end - 0.5, t.out_end - 0.5, color="tab:orange", alpha=0.3)
ax.axvspan(-0.5, traj.prompt_len - 0.5, color="grey", alpha=0.2)
ax.set(xlabel="token position", ylabel="entropy (nats)", title="per-token entropy; grey = prompt, orange = tool output")

# %% [markdown]
# ## Continuing from a prefix
#
# BEL needs continuations from prefix(m) = prompt + steps 1..m. The engine reuses the
# stored token ids, so a continuation's first tokens are *exactly* the parent's:
# nothing is decoded and re-tokenized.

# %%
# NBVAL_CHECK_OUTPUT
prefix = traj.prefix(1)
children = engine.rollout([prefix], 4)[0]
cut = len(prefix.token_ids)
print("children share the prefix:", all(c.token_ids[:cut] == traj.token_ids[:cut] for c in children))

# %% [markdown]
# ## What to try next
# * `RolloutEngine(..., temperature=0.5)`: how do entropies and success change?
# * Generate harder problems (`toy.generate_problems(..., min_ops=6, max_ops=8)`).
# * Replace `executor="arith"` with `executor="python"` to run every call in the sandbox.
