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
# BEL leaves behind a **rollout tree**: one node per assistant turn, full trajectories
# as root-to-leaf paths, continuations branching off at their probe anchor. ELPO
# turns the tree into per-step credit (SPEC 3.3):
#
# * node value: $v(\text{leaf}) = R$, $v(n) = \text{mean of } v \text{ over its direct children}$;
# * branch-level $A_b$: z-score of a child's value among its siblings (root: 0; an only child inherits);
# * trajectory-level $A_t$: z-score of a leaf's reward among all leaves; a node gets the mean over its leaves;
# * $A_{hier} = \lambda_{tree} A_b + (1-\lambda_{tree}) A_t$, given to every action token of the node.

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

from elpo_min import Config, Node, hierarchical_advantages
from elpo_min.bel import build_trees
from elpo_min.models import load_policy
from elpo_min.rollout import RolloutEngine
from elpo_min.tasks import data_dir, load_problems
from elpo_min.tools import run_arith
from elpo_min.train import training_batch

# %% [markdown]
# ## The paper's Figure 4 reading
# A node whose children have values −1.1, 1 and 1 has value (−1.1 + 1 + 1) / 3 = 0.3.

# %%
# NBVAL_CHECK_OUTPUT
node = Node(children=[Node(reward=-1.1), Node(reward=1.0), Node(reward=1.0)])
hierarchical_advantages(node)
print(f"value = {node.value:.2f}")
print("A_b of the children:", [round(c.a_branch, 3) for c in node.children])

# %% [markdown]
# ## A small worked example
#
# Two full trajectories from the root. The first failed; BEL probed its step 2 twice
# (one continuation succeeded) and so branched there.
#
# ```
# root ─ s1 ─ s2 ─┬─ s3 ─ leaf (R=0)      τ*, the failed trajectory
#      │          ├─ c1 ─ leaf (R=1)      continuation from prefix(2)
#      │          └─ c2 ─ leaf (R=0)      continuation from prefix(2)
#      └─ u1 ─ u2 ─ leaf (R=1)            another full trajectory
# ```

# %%
# NBVAL_CHECK_OUTPUT
leaf_fail, leaf_c1, leaf_c2, leaf_u = Node(reward=0.0), Node(reward=1.0), Node(reward=0.0), Node(reward=1.0)
s3, c1, c2 = Node(children=[leaf_fail]), Node(children=[leaf_c1]), Node(children=[leaf_c2])
s2 = Node(children=[s3, c1, c2])
s1 = Node(children=[s2])
u1 = Node(children=[Node(children=[leaf_u])])
root = Node(children=[s1, u1])
hierarchical_advantages(root, lambda_tree=0.5)
for name, n in [("s1", s1), ("s2", s2), ("s3", s3), ("c1", c1), ("c2", c2), ("u1", u1)]:
    print(f"{name}: value={n.value:.3f}  A_b={n.a_branch:+.3f}  A_t={n.a_traj:+.3f}  A_hier={n.a_hier:+.3f}")

# %% [markdown]
# Read it row by row. `s1` and `s2` are shared by three leaves, one of which
# succeeded: value 1/3, below the sibling `u1` (value 1), so a negative A_b. At the
# branch point, `c1` (success) gets a large positive A_b and `s3`/`c2` negative ones:
# the credit lands on the step that made the difference, not on the whole path.
#
# ## The effect of λ_tree

# %%
lams = [i / 10 for i in range(11)]
curves = {name: [] for name in ("s1", "s3", "c1", "u1")}
for lam in lams:
    hierarchical_advantages(root, lambda_tree=lam)
    for name, n in [("s1", s1), ("s3", s3), ("c1", c1), ("u1", u1)]:
        curves[name].append(n.a_hier)
fig, ax = plt.subplots(figsize=(5, 3.2))
for name, ys in curves.items():
    ax.plot(lams, ys, marker="o", label=name)
ax.set(xlabel="λ_tree", ylabel="A_hier", title="λ=0: GRPO-style, λ=1: branch-level only")
ax.grid(alpha=0.3); ax.legend()

# %% [markdown]
# ## A real tree from the tiny policy
#
# `training_batch` builds the tree from BEL's output, runs `hierarchical_advantages`
# and writes each node's A_hier on its action tokens (tool outputs stay at 0). Below,
# the advantage of every token of the selected failed trajectory τ* and of its
# continuations.

# %%
torch.manual_seed(1)
model, tokenizer = load_policy()
model.eval()
engine = RolloutEngine(model, tokenizer, tool=run_arith)
problems = load_problems(data_dir() / "toy_test.jsonl", limit=8)
trees = build_trees(engine, problems, n_total=16)
tree = max(trees, key=lambda t: len(t.parents))
batch, info = training_batch([tree], Config(), tokenizer.pad_token_id)
print(info)

# %% tags=["readme-figure"]
tau, result = tree.searches[0]
rows = [i for i, t in enumerate(tree.trajectories) if t is tau or tree.parents.get(id(t), (None,))[0] is tau]
adv = batch["advantages"][rows]
fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.2))
limit = float(adv.abs().max())
im = ax.pcolormesh(adv, cmap="RdBu", vmin=-limit, vmax=limit)
ax.hlines(range(1, len(rows)), 0, adv.shape[1], color="black", lw=0.8)  # row separators
ax.invert_yaxis()
ax.set(xlabel="token position", ylabel="sequence", title=f"A_hier per token (τ* on top, t_crit = {result.t_crit})")
ax.set_yticks([r + 0.5 for r in range(len(rows))], ["τ*"] + [f"from prefix({tree.parents[id(tree.trajectories[r])][1]})" for r in rows[1:]])
fig.colorbar(im, ax=ax)

# %% [markdown]
# The first two steps are shared by all three sequences (the continuations start from
# prefix(2)) and carry the same advantage in each; white gaps are tool outputs (mask 0).
# From step 3 on the paths part: τ*'s critical step is negative, the successful
# continuations' own steps positive.
#
# ## What to try next
# * Set `lambda_tree` to 0 in `Config` and redraw the heatmap: every token of a
#   sequence now shares one number.
# * Make the continuations all fail (`c1` reward 0): what happens to A_b at the branch?
# * Scale rewards to {−1, +1}: the advantages do not change (z-scores are affine-invariant).
