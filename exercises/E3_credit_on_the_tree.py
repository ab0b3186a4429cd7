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
# # E3 · Credit on the tree
#
# *Difficulty ★★☆ · estimated 80 minutes · follows notebook 03.*
#
# BEL's rollouts form a tree with one node per assistant turn. You will turn it into credit
# (paper §4.2), filling the fields of `elpo_min.Node` in place:
#
# 1. `value`, Eq. 6: a leaf's value is its reward; an internal node's is the mean of its
#    **direct children's** values;
# 2. `a_branch`, Eq. 7: the z-score of a node's value among its siblings,
#    $(v - \mu) / (\sigma + \epsilon)$ with the **population** standard deviation and
#    ε = 1e-6 (0 when all siblings are equal); an only child inherits its parent's A_b, and the
#    root's is 0;
# 3. `a_traj`, Eqs. 8-9: a leaf's z-score of its reward among **all leaves** of the tree; an
#    internal node's is the mean of A_t over the leaves below it;
# 4. `a_hier`, Eq. 10: $\lambda_{tree} A_b + (1 - \lambda_{tree}) A_t$ on every node.
#
# A node has `children` (a list; empty for a leaf) and `reward` (leaves only), and
# `node.leaves()` lists the leaves below it. The paper's Figure 4 (Appendix B) is one of the
# check's cases, and the check of A_hier uses λ_tree = 0.25, 0.8, 0 and 1 as well as 0.5.
# Write the code yourself: `elpo_min` has all four functions, and a graded hand-in that imports
# them gets no points for those parts.

# %%
import statistics

from elpo_min import Node
from elpo_min.course import (
    check_branch_advantages,
    check_hierarchical_advantages,
    check_node_values,
    check_trajectory_advantages,
)


def zscores(values: list[float], eps: float = 1e-6) -> list[float]:
    """(v - mean) / (population std + eps); all 0 when the values are equal."""
    if max(values) == min(values):
        return [0.0] * len(values)
    mean, std = statistics.mean(values), statistics.pstdev(values)
    return [(v - mean) / (std + eps) for v in values]


# %% [markdown]
# `zscores` is given: Eqs. 7 and 8 both use it. Look at it before you start; one usual mistake
# is about it.
#
# ## 1. Node values (Eq. 6) · ★☆☆
#
# <details><summary>Hint</summary>
#
# Recursion: a leaf sets its value from its reward; an internal node first fills its
# children, then averages what they return. Set `value` on every node, leaves included.
# </details>


# %% nbgrader={"grade": false, "grade_id": "e3_node_values", "locked": false, "schema_version": 3, "solution": true, "task": false}
def node_values(node: Node) -> float:
    """Fill node.value below and at ``node``; return the node's value."""
    ### BEGIN SOLUTION
    if not node.children:
        node.value = float(node.reward)
    else:
        node.value = statistics.mean(node_values(child) for child in node.children)
    return node.value
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e3_node_values_check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_node_values(node_values)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Branch advantages (Eq. 7) · ★★☆
#
# Values are filled, and the root's `a_branch` is 0, before your function is called on the
# root. Fill `a_branch` of every node below.
#
# <details><summary>Hint</summary>
#
# At a node with two or more children, z-score the children's values among themselves; at a
# node with one child, hand the node's own A_b down. Then recurse into every child.
# </details>


# %% nbgrader={"grade": false, "grade_id": "e3_branch_advantages", "locked": false, "schema_version": 3, "solution": true, "task": false}
def branch_advantages(node: Node) -> None:
    """Fill a_branch of every node below ``node``."""
    ### BEGIN SOLUTION
    if len(node.children) >= 2:
        scores = zscores([child.value for child in node.children])
        for child, score in zip(node.children, scores):
            child.a_branch = score
    else:
        for child in node.children:
            child.a_branch = node.a_branch
    for child in node.children:
        branch_advantages(child)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e3_branch_advantages_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_branch_advantages(branch_advantages)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Trajectory advantages (Eqs. 8-9) · ★★☆
#
# <details><summary>Hint</summary>
#
# Z-score all the leaves' rewards at once (`root.leaves()`), then give each internal node the
# mean of A_t over *its* leaves, `node.leaves()`, not over its children.
# </details>


# %% nbgrader={"grade": false, "grade_id": "e3_trajectory_advantages", "locked": false, "schema_version": 3, "solution": true, "task": false}
def trajectory_advantages(root: Node) -> None:
    """Fill a_traj of every node of the tree."""
    ### BEGIN SOLUTION
    leaves = root.leaves()
    for leaf, score in zip(leaves, zscores([float(leaf.reward) for leaf in leaves])):
        leaf.a_traj = score

    def fill(node: Node) -> None:
        for child in node.children:
            fill(child)
        if node.children:
            node.a_traj = statistics.mean(leaf.a_traj for leaf in node.leaves())

    fill(root)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e3_trajectory_advantages_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_trajectory_advantages(trajectory_advantages)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## 4. A_hier (Eq. 10) · ★☆☆
#
# Put the three together: fill `value`, `a_branch` (the root's is 0), `a_traj` and `a_hier`
# of every node.


# %% nbgrader={"grade": false, "grade_id": "e3_hierarchical_advantages", "locked": false, "schema_version": 3, "solution": true, "task": false}
def hierarchical_advantages(root: Node, lambda_tree: float = 0.5) -> None:
    """Fill value, a_branch, a_traj and a_hier of every node of the tree."""
    ### BEGIN SOLUTION
    node_values(root)
    root.a_branch = 0.0
    branch_advantages(root)
    trajectory_advantages(root)
    stack = [root]
    while stack:
        node = stack.pop()
        node.a_hier = lambda_tree * node.a_branch + (1 - lambda_tree) * node.a_traj
        stack.extend(node.children)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e3_hierarchical_advantages_check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_hierarchical_advantages(hierarchical_advantages)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## To think about
#
# * Scale every reward by 2 and add 1. Which of the four fields change?
# * A node with one child passes its A_b down unchanged. Why is that the right choice rather
#   than 0? (Think of a trajectory's chain of turns between two branch points.)
