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
# # 03 · Hierarchical advantages
#
# BEL leaves behind a **rollout tree**: one node per assistant turn, full trajectories as
# root-to-leaf paths, and continuations branching off at their probe anchor. ELPO turns the
# tree into credit per step (paper §4.2):
#
# * node value (Eq. 6): $v(\text{leaf}) = R$; $v(n)$ = the mean of $v$ over its **direct
#   children**;
# * branch-level $A_b$ (Eq. 7): the z-score of a node's value among its siblings, with the
#   population standard deviation; the root gets 0, and an only child inherits its parent's;
# * trajectory-level $A_t$ (Eqs. 8-9): the z-score of a leaf's reward among **all leaves**;
#   an internal node gets the mean of $A_t$ over the leaves below it;
# * $A_{hier} = \lambda_{tree} A_b + (1-\lambda_{tree}) A_t$ (Eq. 10), given to every action
#   token of the node's turn.
#
# The functions are `elpo_min.advantages.node_value`, `branch_advantages`,
# `trajectory_advantages` and `hierarchical_advantages`, which runs all three.

# %%
# Library progress bars and info logs would fill the committed outputs: switch them off.
# (tqdm warns that ipywidgets is missing; its text progress bars work without it.)
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()

# %%
import statistics

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Patch, Rectangle

from elpo_min import Config, Node, hierarchical_advantages
from elpo_min.bel import build_trees
from elpo_min.models import load_policy
from elpo_min.rollout import RolloutEngine
from elpo_min.tasks import data_dir, load_problems
from elpo_min.tools import run_arith
from elpo_min.train import BEL_ARGS, credit_tree, training_batch

# %% [markdown]
# ## The paper's Figure 4 reading
#
# A node whose children have values −1.1, 1 and 1 has value (−1.1 + 1 + 1) / 3 = 0.3, and the
# children's A_b are their z-scores around that mean.

# %%
# NBVAL_CHECK_OUTPUT
node = Node(children=[Node(reward=-1.1), Node(reward=1.0), Node(reward=1.0)])
hierarchical_advantages(node)
print(f"value = {node.value:.2f}")
print("A_b of the children:", [round(c.a_branch, 3) for c in node.children])

# %% [markdown]
# ## A small tree by hand
#
# Two full trajectories from the root. The first failed; BEL probed its step 2 twice (one
# continuation succeeded) and so branched there.
#
# ```
# root ─ s1 ─ s2 ─┬─ s3 ─ leaf (R=0)      τ*, the failed trajectory
#      │          ├─ c1 ─ leaf (R=1)      continuation from prefix(2)
#      │          └─ c2 ─ leaf (R=0)      continuation from prefix(2)
#      └─ u1 ─ u2 ─ leaf (R=1)            another full trajectory
# ```

# %%
# NBVAL_CHECK_OUTPUT
leaf_fail, leaf_c1, leaf_c2, leaf_u = (Node(reward=r) for r in (0.0, 1.0, 0.0, 1.0))
s3, c1, c2 = Node(children=[leaf_fail]), Node(children=[leaf_c1]), Node(children=[leaf_c2])
s2 = Node(children=[s3, c1, c2])
s1 = Node(children=[s2])
u1 = Node(children=[Node(children=[leaf_u])])
root = Node(children=[s1, u1])
hierarchical_advantages(root, lambda_tree=0.5)
for name, n in [("s1", s1), ("s2", s2), ("s3", s3), ("c1", c1), ("c2", c2), ("u1", u1)]:
    print(
        f"{name}: value={n.value:.3f}  A_b={n.a_branch:+.3f}  A_t={n.a_traj:+.3f}  "
        f"A_hier={n.a_hier:+.3f}"
    )

# %% [markdown]
# Row by row: `s1` and `s2` lie above three leaves, one of which succeeded: value 1/3, below
# the sibling `u1` (value 1), so A_b(s1) = −1. `s2` is `s1`'s only child and inherits its
# A_b. At the branch point, `c1` (a success) gets a large positive A_b and `s3`, `c2` negative
# ones: the branch term puts credit on the step that made the difference.
#
# ## The effect of λ_tree

# %%
lambdas = [i / 10 for i in range(11)]
curves = {name: [] for name in ("s1", "s3", "c1", "u1")}
for lam in lambdas:
    hierarchical_advantages(root, lambda_tree=lam)
    for name, n in [("s1", s1), ("s3", s3), ("c1", c1), ("u1", u1)]:
        curves[name].append(n.a_hier)
fig, ax = plt.subplots(figsize=(5, 3.2))
for name, ys in curves.items():
    ax.plot(lambdas, ys, marker="o", label=name)
ax.set(xlabel="λ_tree", ylabel="A_hier", title="λ=0: A_t only, λ=1: A_b only")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# Look at `s1`. It is a *sound* step: one of the three paths through it succeeded. Yet its
# A_hier falls from −0.33 at λ = 0 to −1.0 at λ = 1, because A_b compares it only with its
# sibling `u1`, which did better. (λ = 0 leaves A_t alone: the z-score of the leaves' rewards
# over *this tree's* trajectories, averaged below each node. That is GRPO's z-score only when
# every leaf is an independent full trajectory; on BEL's tree, continuations share prefixes
# and count as leaves, so it differs from GRPO on independent samples, as notebook 05 shows.)
# The branch term sharpens credit at a branch point and, by the same rule, punishes a sound
# prefix whose siblings happened to do better. Notebook 05 measures what this does to the
# ranking of sound against fatal steps over whole training runs, where λ_tree = 0 on the same
# trees ranks best.
#
# ## The worked example's tree
#
# Now the tree BEL built in notebook 02 for problem `test2-2` with seed 4: τ* failed at step
# 4, probes from prefix(3), prefix(5) and prefix(4) added six continuations, and a second
# round added seven more rollouts. `credit_tree` builds the tree from BEL's output, runs
# `hierarchical_advantages`, and places ELC (notebook 04).

# %%
# NBVAL_CHECK_OUTPUT
PROBLEM_ID, SEED = "test2-2", 4
problem = next(p for p in load_problems(data_dir() / "toy_test.jsonl") if p.id == PROBLEM_ID)
model, tokenizer = load_policy()
model.eval()
engine = RolloutEngine(model, tokenizer, tool=run_arith)
cfg = Config()
torch.manual_seed(SEED)
tree = build_trees(engine, [problem], **{name: getattr(cfg, name) for name in BEL_ARGS})[0]
credited = credit_tree(tree, cfg)
tau, result = tree.searches[0]
leaves = credited.root.leaves()
print(
    f"{len(tree.trajectories)} trajectories = {len(leaves)} leaves, of which "
    f"{sum(leaf.reward for leaf in leaves):.0f} succeeded; t_crit of τ* = {result.t_crit}"
)
print("turn  children  value   A_b     A_t     A_hier   (τ*'s path, λ_tree = 0.5)")
for turn, n in enumerate(credited.path[id(tau)], start=1):
    print(
        f"{turn:4d} {len(n.children):9d} {n.value:6.3f} {n.a_branch:+7.3f} {n.a_traj:+7.3f} "
        f"{n.a_hier:+8.3f}"
    )

# %% [markdown]
# Each number can be recomputed from the tree. The node of turn 3 has three children: τ*'s
# turn 4 and the first turns of the two continuations from prefix(3), one of which succeeded.

# %%
# NBVAL_CHECK_OUTPUT
path = credited.path[id(tau)]
turn3, turn4 = path[2], path[3]
children = [c.value for c in turn3.children]
print("Eq. 6  v(turn 3) = mean of its children's values", children, f"= {turn3.value:.3f}")
mean, std = statistics.mean(children), statistics.pstdev(children)
print(f"Eq. 7  A_b(turn 4) = ({turn4.value:.0f} - {mean:.3f}) / {std:.3f} = {turn4.a_branch:+.3f}")
rewards = [leaf.reward for leaf in leaves]
z_fail = (0.0 - statistics.mean(rewards)) / statistics.pstdev(rewards)
print(f"Eq. 8  A_t(τ*'s leaf) = z-score of R = 0 among {len(rewards)} leaves = {z_fail:+.3f}")
below = turn3.leaves()
a_t = statistics.mean(leaf.a_traj for leaf in below)
print(f"Eq. 9  A_t(turn 3) = mean A_t over its {len(below)} leaves = {a_t:+.3f}")
print(
    f"Eq. 10 A_hier(turn 4) = 0.5 * {turn4.a_branch:+.3f} + 0.5 * {turn4.a_traj:+.3f} "
    f"= {turn4.a_hier:+.3f}"
)

# %% [markdown]
# So along τ*: turns 1-3, which one continuation turned into a success, get a mild −0.16;
# turn 4, the fatal copy, gets the most negative A_hier of the path, −0.64, because its
# siblings include that success; turns 5-7 only get the A_t of a failure (their siblings all
# failed too, so their A_b is 0). GRPO would give all seven turns the same advantage.
#
# ### The tree, coloured by credit

# %% tags=["readme-figure"]
rows = {id(traj): i for i, traj in enumerate(tree.trajectories)}
limit = max(abs(n.a_hier) for nodes in credited.path.values() for n in nodes)
fig, ax = plt.subplots(figsize=(9, 0.34 * len(rows) + 1.4))
for i, traj in enumerate(tree.trajectories):
    parent = tree.parents.get(id(traj))
    first = parent[1] if parent else 0
    if parent:
        ax.plot([first, first + 1], [rows[id(parent[0])], i], ":", color="grey", lw=1)
    own = credited.path[id(traj)][first:]
    steps = range(first + 1, first + 1 + len(own))
    ax.plot(list(steps), [i] * len(own), "-", color="lightgrey", zorder=1)
    dots = ax.scatter(
        list(steps),
        [i] * len(own),
        c=[n.a_hier for n in own],
        cmap="RdBu",
        vmin=-limit,
        vmax=limit,
        s=70,
        edgecolors="black",
        linewidths=0.4,
        zorder=2,
    )
    ax.text(
        first + len(own) + 0.4,
        i,
        "success" if traj.success else "failure",
        va="center",
        fontsize=8,
        color="tab:green" if traj.success else "tab:red",
    )
# ELC (notebook 04) covers each searched failure from its t_crit on: τ* from turn 4, and the
# second search's failure, whose t_crit = 1, from its first turn
for traj in tree.trajectories:
    if id(traj) in credited.elc_from:
        first = credited.elc_from[id(traj)] + 1  # elc_from is a 0-based turn index
        width = len(traj.turns) - first + 0.8
        corner = (first - 0.4, rows[id(traj)] - 0.4)
        ax.add_patch(Rectangle(corner, width, 0.8, color="orange", alpha=0.3, zorder=0))
searched_rows = [rows[id(searched)] for searched, _ in tree.searches]
for searched, res in tree.searches:
    # a red ring around the node, drawn over it, so that its colour stays visible
    ax.scatter(res.t_crit, rows[id(searched)], s=260, facecolors="none", edgecolors="red", lw=2)
ax.set(
    xlabel="turn",
    ylabel="rollout, in sampling order",
    xlim=(0.5, 9.5),
    title=f"ELPO's credit on BEL's tree for one prompt (t_crit of τ* = {result.t_crit})",
)
ax.invert_yaxis()
fig.colorbar(dots, ax=ax, label="A_hier of the turn", fraction=0.03)
ring = plt.Line2D([], [], marker="o", ms=11, mfc="none", mec="red", mew=2, ls="")
ring.set_label(f"t_crit of each search (rows {' and '.join(map(str, searched_rows))})")
ax.legend(
    handles=[
        ring,
        plt.Line2D([], [], ls=":", color="grey", label="continuation from prefix(m)"),
        Patch(color="orange", alpha=0.3, label="under ELC: from t_crit on (notebook 04)"),
    ],
    fontsize=8,
    loc="upper center",
    bbox_to_anchor=(0.5, -0.1),
    ncol=3,
)
plt.show()

# %% [markdown]
# ## Per token
#
# `training_batch` writes each node's A_hier on every action token of its turn, for every
# root-to-leaf sequence, and zeroes the rest with the action mask. `info` counts the
# sequences, the searches that got no probe, and the mean t_crit of the probed ones.

# %%
# NBVAL_CHECK_OUTPUT
batch, info = training_batch([tree], cfg, tokenizer.pad_token_id)
for name, tensor in batch.items():
    print(f"{name:15s} {tuple(tensor.shape)}")
print("info:", info)

# %% [markdown]
# `t_crit_mean` is (4 + 1) / 2: the second search of notebook 02 probed once and ran out of
# budget, so its t_crit = 1 is the left end of an open bracket. It counts as probed; only
# searches with no probe at all are left out (and counted in `unprobed`).

# %% [markdown]
# Below, the advantages of τ* and of the continuations branched from it, token by token. Grey
# marks tokens that are not trained (the prompt and tool outputs, action mask 0); white is
# padding; black ticks mark where each turn starts.

# %%
selected = [
    i
    for i, t in enumerate(tree.trajectories)
    if t is tau or tree.parents.get(id(t), (None,))[0] is tau
]
advantages = batch["advantages"][selected].numpy()  # [rows, T]
action = batch["action_mask"][selected].numpy()  # [rows, T]
attention = batch["attention_mask"][selected].numpy()  # [rows, T]
fig, ax = plt.subplots(figsize=(11, 0.45 * len(selected) + 1.4))
background = np.where(attention == 1, 0.8, 1.0)
ax.imshow(background, cmap="gray", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
trained = np.ma.masked_where(action == 0, advantages)
image = ax.imshow(
    trained, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest"
)
for r, index in enumerate(selected):
    for turn in tree.trajectories[index].turns:
        ax.plot([turn.start - 0.5] * 2, [r - 0.5, r + 0.5], color="black", lw=1)
labels = ["τ*"] + [
    f"from prefix({tree.parents[id(tree.trajectories[i])][1]})" for i in selected[1:]
]
ax.set_yticks(range(len(selected)), labels)
ax.set(xlabel="token position", title=f"A_hier per token (τ* on top, t_crit = {result.t_crit})")
fig.colorbar(image, ax=ax, label="A_hier", fraction=0.03)
ax.legend(
    handles=[
        Patch(color="0.8", label="not trained (prompt, tool output)"),
        Patch(facecolor="white", edgecolor="black", label="padding"),
    ],
    fontsize=8,
    loc="upper center",
    bbox_to_anchor=(0.5, -0.16),
    ncol=2,
)
plt.show()

# %% [markdown]
# The first turns are shared: each continuation repeats its parent's tokens up to its anchor
# and carries the same advantages there. From the anchor on the paths part: the continuation
# from prefix(3) that succeeded is blue from turn 4 on, while τ*'s turn 4 is the reddest turn
# of its row.
#
# ## How shared turns weigh in the loss
#
# The batch has one row per leaf, so a turn shared by k leaves is trained in k rows: τ*'s turns
# 1-3, which all six continuations share, are in 7 of the 16 rows. In every one of those rows
# the turn's tokens have the same context, the same token ids and the same A_hier, so they add
# the same term to the loss k times. Eq. 1's `seq-mean-token-mean` (notebook 04) averages each
# row over its n_r action tokens and then averages the B rows, so one token of row r weighs
# 1 / (B · n_r), and a shared token weighs the sum of that over the rows that hold it. The
# cell counts, for each turn of τ*, the rows that hold it and that summed weight, in units of
# the weight 1 / (B · n_τ*) of a token trained in τ*'s row alone:

# %%
# NBVAL_CHECK_OUTPUT
tokens = batch["action_mask"].sum(-1)  # [B] action tokens of each row
holders = {}  # id(node) -> the rows whose path runs through it
for row, traj in enumerate(tree.trajectories):
    for n in credited.path[id(traj)]:
        holders.setdefault(id(n), []).append(row)
own = tokens[rows[id(tau)]]
print("τ*'s turn   rows holding it   weight of one of its tokens, in units of 1 / (B n_τ*)")
for turn, n in enumerate(credited.path[id(tau)], start=1):
    weight = sum(own / tokens[r] for r in holders[id(n)])
    print(f"{turn:9d} {len(holders[id(n)]):16d} {weight:20.2f}")

# %% [markdown]
# A prefix shared by k leaves thus weighs about k times as much as an unshared turn of the
# same length (exactly k when the rows are equally long): τ*'s turns 1-3, in 7 rows, count 6.5
# times (some of those rows are longer than τ*'s, so each of their tokens weighs a little
# less), its turn 4 about 4.7 times (τ* and the four continuations from prefix(4) and
# prefix(5)), its turn 5 three times, its last two turns once. Their A_hier is already a
# summary of the leaves below (A_t of a node is the mean over its leaves, Eq. 9), and counting
# it once per leaf makes the shared prefix pull as if each of those leaves had sampled it on
# its own, which is what GRPO would see from independent samples. `token-mean` repeats shared
# tokens the same way.
#
# The paper leaves this open. Eq. 1 is written for a group of independent trajectories; it does
# not say whether a tree is trained as one sequence per leaf (as here, shared prefixes
# repeated) or with each node's tokens once, nor whether a continuation's |τ_i| in the
# per-trajectory mean counts the prefix it inherited. Training each node once would cut the
# weight of early, shared turns against late, branch-specific ones by up to the k above; this
# implementation keeps every row a normal sample (`elpo_min/advantages.py` says so).
#
# ## What to try next
# * `Config(lambda_tree=0.0)` in `credit_tree`: every turn of a path now gets the mean A_t of
#   its leaves, and the branch structure only enters through which leaves lie below.
# * Make the continuations of the hand-built tree all fail (`leaf_c1` reward 0): what
#   happens to A_b at the branch?
# * Scale rewards to {−1, +1}: the advantages do not change (z-scores are affine-invariant).
