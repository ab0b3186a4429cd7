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
# # E5 · Capstone: your ELPO step, and what λ_tree does
#
# *Difficulty ★★★ · estimated 60 minutes · follows notebook 05; needs E3 and E4 done, in
# the same folder as this notebook.*
#
# 1. Your `hierarchical_advantages` (E3), `elc_mask` and `policy_loss` (E4) go into one ELPO
#    step on the worked example of notebooks 01-04: BEL's tree for problem `test2-2` with
#    seed 4. The check compares your advantages, ELC mask and loss with the trainer's, then
#    takes the optimizer step with your loss.
# 2. A design question about λ_tree, the weight of the branch term A_b in Eq. 10.

# %%
# Library progress bars and info logs would clutter the outputs: switch them off.
# (tqdm warns that ipywidgets is missing; its text progress bars work without it.)
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")
from transformers.utils import logging as hf_logging

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()

# %% [markdown]
# ## Your functions from E3 and E4
#
# This runs your two notebooks in this kernel, their output hidden, so that their functions
# are defined here. Rerun it after you change them.

# %%
from IPython import get_ipython
from IPython.utils.capture import capture_output

with capture_output():
    get_ipython().run_line_magic("run", "E3_credit_on_the_tree.ipynb")
    get_ipython().run_line_magic("run", "E4_clipped_loss_with_elc.ipynb")

# %% [markdown]
# ## 1. One ELPO step with your functions

# %%
from elpo_min.course import check_lambda_trees, check_training_step

# %% nbgrader={"grade": true, "grade_id": "e5_training_step_check", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_training_step(hierarchical_advantages, elc_mask, policy_loss)  # noqa: F821 (from %run)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## 2. When does the branch term help?
#
# Notebook 05 found that on the toy, λ_tree = 0 on ELPO's own trees ranks sound turns above
# fatal ones better than the paper's λ_tree = 0.5. Build two small trees by hand:
#
# * one where λ_tree = 0.5 ranks sound turns above fatal turns **better** than λ_tree = 0;
# * one where it ranks them **worse**.
#
# Each function returns `(root, sound, fatal)`: the root `Node`, and the lists of nodes that
# are sound and fatal turns. A turn is *sound* if a success was still reachable after it (all
# turns of a success; in a failure, the turns before its fatal one) and *fatal* if it is the
# failure's first irrecoverable turn; turns after a fatal one are in neither list. The score
# is the share of (sound, fatal) pairs in which the sound turn gets the larger A_hier (ties
# count ½), at each λ_tree. The check first makes sure the labels are the tree's own: every
# labelled node is a turn of the tree, no turn is both, a fatal turn has no success below it,
# no labelled turn lies after a fatal one, and the last turn of a failure is never sound.
#
# `chain(n, reward)` builds one trajectory of n turns (its last node is the leaf); attach a
# continuation from prefix(m) by appending the first node of another chain to the m-th node's
# `children`, and put trajectories side by side as the root's children.
#
# <details><summary>Hint</summary>
#
# A_t of a turn is the mean A_t of the leaves below it, so two turns above the same kind of
# leaves tie on A_t; A_b then decides their order. A_b compares a turn with its siblings
# only: it is negative for a turn whose siblings did better, whatever happened below it.
# Start from notebook 03's `s1` and from notebook 05's hand-built tree.
# </details>

# %%
from elpo_min import Node


def chain(n: int, reward: float) -> list[Node]:
    """n nodes, each the only child of the one before; the last is a leaf with ``reward``."""
    nodes = [Node(reward=reward)]
    for _ in range(n - 1):
        nodes.insert(0, Node(children=[nodes[0]]))
    return nodes


# %% nbgrader={"grade": false, "grade_id": "e5_better_tree", "locked": false, "schema_version": 3, "solution": true, "task": false}
def better_tree():
    """A tree where lambda_tree = 0.5 ranks sound above fatal turns better than 0."""
    ### BEGIN SOLUTION
    # tau* fails at its third turn; a continuation from prefix(2) succeeds
    tau = chain(3, 0.0)
    rescue = chain(1, 1.0)
    tau[1].children.append(rescue[0])
    # two more failures: one fatal at its first turn, one at its second
    early, late = chain(3, 0.0), chain(3, 0.0)
    root = Node(children=[tau[0], early[0], late[0]])
    sound = tau[:2] + rescue + late[:1]
    fatal = [tau[2], early[0], late[1]]
    return root, sound, fatal
    ### END SOLUTION


def worse_tree():
    """A tree where lambda_tree = 0.5 ranks sound above fatal turns worse than 0."""
    ### BEGIN SOLUTION
    # tau* fails at its third turn; a continuation from prefix(1) fails at its own first turn
    tau = chain(3, 0.0)
    retry = chain(2, 0.0)
    tau[0].children.append(retry[0])
    # a full success beside them
    success = chain(3, 1.0)
    root = Node(children=[tau[0], success[0]])
    sound = tau[:2] + success
    fatal = [tau[2], retry[0]]
    return root, sound, fatal
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e5_lambda_trees_check", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_lambda_trees(better_tree, worse_tree)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "e5_answer_2", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Explain, in a few sentences, why λ_tree = 0.5 helps in the first tree and hurts in the
# second.** (Print the nodes' `a_branch` and `a_traj` after
# `elpo_min.hierarchical_advantages(root, 0.5)` to see.)
#
# ### BEGIN SOLUTION
# In the first tree, τ*'s fatal third turn and the third failure's sound first turn both lie
# above failures only, so A_t ties them (−0.58). A_b breaks the tie the right way: the fatal
# turn's sibling, the continuation from prefix(2), succeeded, so its A_b is −1, while the sound
# turn's siblings at the root include another failure and its A_b is −0.71. At λ_tree = 0.5
# the fatal turn falls below the sound one.
#
# In the second tree it is the other way round. τ*'s sound first turn has the full success as
# its sibling at the root, so its A_b is −1; τ*'s fatal turn and the failed continuation's
# fatal turn have only failed siblings, so their A_b is 0. A_t ties all three (−0.71), and the
# branch term puts the sound turn below both fatal ones. This is notebook 03's `s1`: A_b
# compares a node with its siblings only, so a sound prefix whose siblings happened to do
# better is punished, which is what notebook 05 measured over whole training runs.
# ### END SOLUTION
