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
# ELPO (Error-Localized Policy Optimization, arXiv 2602.09598) trains agents that think in
# turns: each assistant turn ends in a **tool call** (code) or a **final answer**, and the
# environment runs the code and appends its output to the context. When such a trajectory
# fails, ELPO asks *which step* made it fail, and puts its credit there (paper §4).
#
# This notebook builds the trajectories that everything else works on: the toy task, the
# sandboxed tool, the tiny policy, and the rollout engine that records, for every token,
# whether it is an *action* and how uncertain the policy was when it sampled it (Eq. 3).
# It ends with **the worked example** of notebooks 01-04: one failed trajectory, which
# notebook 02 localizes, 03 credits and 04 trains on.

# %%
# Library progress bars and info logs would fill the committed outputs: switch them off.
# (tqdm warns that ipywidgets is missing; its text progress bars work without it.)
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()

# %%
import random

import matplotlib.pyplot as plt
import torch

from elpo_min import Config, toy
from elpo_min.bel import entropy_gap, step_entropies
from elpo_min.diagnostics import render_trajectory
from elpo_min.models import load_policy
from elpo_min.rollout import RolloutEngine
from elpo_min.sft import demonstration
from elpo_min.tasks import data_dir, load_problems
from elpo_min.tools import os_layers, run_arith, run_python
from elpo_min.trajectory import collate

# %% [markdown]
# ## The toy world
#
# Chain arithmetic: a start number and operations applied left to right, on numbers too
# large for a 0.8M-parameter model to compute in its head. The policy copies numbers into
# tool calls; the tool does the arithmetic. Here is a problem and a demonstration of the
# format: `<c>` a call, `<o>` its output, `<a>` the final answer.

# %%
# NBVAL_CHECK_OUTPUT
problem = toy.generate_problems(1, seed=42)[0]
print(problem.prompt, end="")
print("correct intermediate values:", problem.values)
print(demonstration(problem, rng=random.Random(0)))

# %% [markdown]
# Two kinds of mistakes matter. A call that **raises** is recoverable: the correct number is
# still in context, and a retry repairs it. A **mis-copied number** is irrecoverable: every
# later output is wrong, and nothing in context says so. The toy has two oracles:
# `toy.first_error_step` names the first step whose output departs from the correct
# computation, also when a retry repaired it; `toy.fatal_step` names the first wrong value
# that is carried forward, which is what ELPO's search should find.

# %%
# NBVAL_CHECK_OUTPUT
v = problem.values
repaired = [str(v[1]), "SyntaxError: invalid syntax"] + [str(x) for x in v[2:]]
carried = [str(v[1]), str(v[2] + 1000), str(v[3] + 1000)]
for name, outputs in (("repaired call", repaired), ("carried error", carried)):
    first = toy.first_error_step(problem, outputs)
    fatal = toy.fatal_step(problem, outputs)
    print(f"{name:14s} first_error_step = {first}, fatal_step = {fatal}")

# %% [markdown]
# ## The sandboxed Python tool
#
# Real models call `run_python`, which starts a fresh interpreter per call with time, memory
# and output limits. On Linux it is confined by layers the code cannot undo (no new
# privileges, Landlock for writes, a seccomp filter for signals, process creation and the
# like), with an audit hook as the portable first line; README, "The Python tool is
# confined", says what each layer guarantees. A final bare expression is printed, as in a
# notebook, and an error comes back as text for the policy to read.

# %%
# NBVAL_CHECK_OUTPUT
print(run_python("2 ** 100").render())
print(run_python("1 / 0").render())
print(run_python("import os; os.fork()").render())
timed = run_python("while True:\n    pass", timeout_s=1.0)
print(timed.render(), "| timed out:", timed.timed_out)

# %%
# NBVAL_IGNORE_OUTPUT
print("OS layers on this machine:", os_layers())

# %% [markdown]
# The toy's own tool, `run_arith`, evaluates the same arithmetic in-process, which is all the
# toy needs and a hundred times faster.
#
# ## The tiny policy
#
# A Qwen2-architecture model of 0.8M parameters with a character-level tokenizer, warmed up
# on demonstrations with a controlled mistake rate (`data/tiny_policy/tiny_policy.json`
# records the command and its held-out success rate).

# %%
# NBVAL_CHECK_OUTPUT
model, tokenizer = load_policy()
model.eval()
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")
print(f"vocabulary of {len(tokenizer)} tokens")

# %% [markdown]
# ## The worked example
#
# One held-out problem and one seed, the same in notebooks 01 to 04. The rollout engine
# generates a turn for the whole batch, runs every pending tool call, appends each output with
# **action mask 0**, and repeats.
#
# ELPO's search (notebook 02) starts each prompt by sampling full trajectories until its
# **failure buffer** holds `b_max` failures; `b_max` is the paper's B_max, 3 in its Table 2
# (`Config().b_max`). We sample a group of `b_max` = 3 trajectories: exactly what ELPO samples
# first for this prompt (notebook 02 runs the search with the same seed).

# %%
# NBVAL_CHECK_OUTPUT
PROBLEM_ID, SEED = "test2-2", 4
problem = next(p for p in load_problems(data_dir() / "toy_test.jsonl") if p.id == PROBLEM_ID)
engine = RolloutEngine(model, tokenizer, tool=run_arith)
torch.manual_seed(SEED)
group = engine.rollout([engine.start(problem)], Config().b_max)[0]
print("correct values:", problem.values)
for traj in group:
    print(render_trajectory(traj, tokenizer, color=False))

# %% [markdown]
# All three failed, each in its own way. The first is the one the next notebooks follow (02
# explains why the search picks it). Its step 3 raised (`26406+991)`), a slip the policy
# recovered from in principle: 26406 is still in context. But at step 4 it wrote `26462`
# instead of `26406`, and every later value inherits the error. The oracles agree:
#
# **How steps and turns are numbered.** Steps are numbered 1..K, as in the paper: step m is the
# m-th tool call with its output, and prefix(m) ends after that output. In these notebooks'
# text, renderings and figures, turns are numbered from 1 too: turn m makes the call of step m,
# and turn K + 1 gives the answer. In code, `traj.turns` is a Python list and counts from 0:
# turn m is `traj.turns[m - 1]`, so turn 4 below is `tau.turns[3]`. Exercise E1 counts turns
# the code's way: its turn 0 is turn 1 here, and its turn m, the one right after the m-th tool
# output, is turn m + 1 here.

# %%
# NBVAL_CHECK_OUTPUT
tau = group[0]
print("tool outputs:", tau.tool_outputs)
print("first_error_step:", toy.first_error_step(problem, tau.tool_outputs))
print("fatal_step      :", toy.fatal_step(problem, tau.tool_outputs))

# %% [markdown]
# ## The trajectory as tensors
#
# A trajectory is four parallel lists, one entry per token: the ids, the action mask (1 on
# tokens the policy sampled), the log-prob each sampled token had under the sampling
# distribution, and that distribution's entropy. `collate` right-pads trajectories into the
# [B, T] tensors that training uses.

# %%
# NBVAL_CHECK_OUTPUT
batch = collate([tau], tokenizer.pad_token_id)
for name, tensor in batch.items():
    print(f"{name:15s} {tuple(tensor.shape)} {tensor.dtype}")
print("prompt tokens:", tau.prompt_len, "| action tokens:", sum(tau.action_mask))

# %%
# NBVAL_CHECK_OUTPUT
turn = tau.turns[3]
print(f"turn 4 = tokens {turn.start}..{turn.end - 1}, its output = {turn.end}..{turn.out_end - 1}")
for i in range(turn.start, turn.out_end):
    token = tokenizer.decode([tau.token_ids[i]])
    print(
        f"{i:4d} {token!r:>6}  mask={tau.action_mask[i]}  "
        f"logp={tau.logprobs[i]:7.3f}  H={tau.entropies[i]:.3f}"
    )

# %% [markdown]
# The fatal token is the `6` at position 100, the fourth digit of the copied number (26406
# became 2646…): the policy sampled it with log-prob −3.3 at the highest entropy of the turn,
# 0.49, and the `2` after it cost −6.0. Tool-output tokens carry mask 0 and no log-prob: they
# are context, not actions, and the loss never touches them.
#
# ## Entropy: where the policy hesitates
#
# The entropy of the sampling distribution at each generated token is Eq. (3) of the paper,
# $H_t = -\sum_j p_{t,j} \log p_{t,j}$ with $p_t = \mathrm{softmax}(z_t / T)$ at the sampling
# temperature T. It spikes on the digits the policy copies.

# %% tags=["readme-figure"]
fig, ax = plt.subplots(figsize=(10, 3))
ax.bar(range(len(tau.token_ids)), tau.entropies, width=1.0, color="tab:blue", label="entropy")
ax.axvspan(-0.5, tau.prompt_len - 0.5, color="grey", alpha=0.2, label="prompt")
for i, t in enumerate(tau.turns):
    if t.out_end > t.end:
        ax.axvspan(
            t.end - 0.5,
            t.out_end - 0.5,
            color="tab:orange",
            alpha=0.3,
            label="tool output" if i == 0 else None,
        )
    ax.text(t.start, ax.get_ylim()[1] * 0.9, f"{i + 1}", fontsize=8)
ax.axvline(tau.turns[3].start - 0.5, color="red", ls="--", lw=1, label="fatal step 4")
ax.set(
    xlabel="token position",
    ylabel="entropy (nats)",
    title="per-token entropy of the worked example (numbers: turns)",
)
ax.legend(fontsize=8, loc="upper right")
plt.show()

# %% [markdown]
# ## H_root, H_step and the entropy gap
#
# ELPO reads the entropies turn by turn (§4.1). **H_root** is the mean entropy of the first
# `entropy_window` = 32 tokens of turn 1, before any tool output; **H_step(τ, m)** the same
# mean over the turn right after the m-th tool output, turn m + 1. Their difference measures
# how much a tool output unsettled the policy. The **entropy gap** of a trajectory is the mean
# of H_step over its K steps minus H_root. By hand, for the worked example:

# %%
# NBVAL_CHECK_OUTPUT
first_turn = tau.turns[0]
h_root_by_hand = sum(tau.entropies[first_turn.start : first_turn.end]) / (
    first_turn.end - first_turn.start
)
h_root, h_steps = step_entropies(tau)
print(f"H_root by hand = {h_root_by_hand:.4f}, step_entropies says {h_root:.4f}")
print("H_step(m) for m = 1..K:", [round(h, 3) for h in h_steps])
print(f"entropy gap = mean(H_step) - H_root = {sum(h_steps) / len(h_steps) - h_root:+.4f}")
print(f"bel.entropy_gap(tau)             = {entropy_gap(tau):+.4f}")

# %% [markdown]
# (Turn 1 is 7 tokens long, shorter than the window, so H_root averages all of it. H_step(6)
# reads turn 7, the answer, which follows the last tool output.)
#
# The gaps of the three failures of the group are what notebook 02 compares to choose the
# one to search (Eq. 4):

# %%
# NBVAL_CHECK_OUTPUT
for i, traj in enumerate(group):
    print(f"trajectory {i}: K = {traj.num_steps}, entropy gap = {entropy_gap(traj):+.4f}")

# %% [markdown]
# ## Continuing from a prefix
#
# The search samples continuations from prefix(m) = the prompt and steps 1..m. The engine
# reuses the stored token ids, so a continuation starts with *exactly* the parent's tokens:
# nothing is decoded and re-tokenized.

# %%
# NBVAL_CHECK_OUTPUT
prefix = tau.prefix(3)
torch.manual_seed(0)
children = engine.rollout([prefix], 4)[0]
cut = len(prefix.token_ids)
print(
    f"prefix(3) is {cut} tokens; its 4 continuations share them:",
    all(c.token_ids[:cut] == tau.token_ids[:cut] for c in children),
)
print("continuations that succeed:", sum(c.success for c in children), "of 4")

# %% [markdown]
# ## What to try next
# * `RolloutEngine(..., temperature=0.5)`: how do the entropies and the success rate change?
# * Harder problems: `toy.generate_problems(8, seed=0, min_ops=6, max_ops=8)`.
# * `tool=PythonTool()` (from `elpo_min.tools`) runs every call in the sandbox instead.
