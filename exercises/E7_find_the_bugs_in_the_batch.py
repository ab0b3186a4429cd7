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
# # E7 · Find the bugs: the training rows of a tree
#
# *Difficulty ★★★ · estimated 75 minutes · follows notebooks 03 and 04, and E3-E4.*
#
# Between BEL's tree and the loss sits a small function that is easy to get almost right: it
# builds one prompt's tree, fills A_hier on every node, and writes the training rows, one per
# trajectory, with each turn's A_hier on its action tokens and the ELC mask on the searched
# failure's turns from t_crit on (`elpo_min.train.training_batch` does this in the trainer).
# The version below passes its tests and has **three bugs**.
#
# 1. **Find them**: write `test_batch_rows(batch_rows)`, tests that a correct function passes
#    and each bug fails (the check runs them on three versions with one bug each).
# 2. **Explain them**: what is wrong, an input that shows it, what it does to training.
# 3. **Fix them**: `batch_rows`, checked on hidden trees with continuations.
#
# The input is plain data. `trajectories[i]` has `"turns"`, each turn's `(start, end,
# out_end)` (generated tokens `[start, end)`, tool output `[end, out_end)`), and `"reward"`;
# parents come before their continuations. `parents[i] = (j, m)` says that trajectory i
# continues prefix(m) of trajectory j: its first m turns are j's first m turns, the same
# tokens. `searches[i] = t_crit` marks a searched failure (1-based, as BEL returns it).
# You may use `elpo_min.Node` and `elpo_min.hierarchical_advantages` (E3 wrote them).

# %%
import torch

from elpo_min import Node, hierarchical_advantages
from elpo_min.course import check_batch_rows, check_batch_rows_tests


# %%
def batch_rows_as_given(trajectories, parents, searches, lambda_tree, length):
    """The training rows of one prompt's tree: ``(advantages, elc)``, both [B, T]."""
    # the tree: one node per turn; a continuation hangs below its parent's m-th node
    root = Node()
    nodes = {}
    for i, traj in enumerate(trajectories):
        parent, m = parents.get(i, (None, 0))
        attach = nodes[parent][m - 1] if parent is not None else root
        own = []
        for _ in traj["turns"][m:]:
            node = Node()
            attach.children.append(node)
            attach = node
            own.append(node)
        own[-1].reward = traj["reward"]
        nodes[i] = own
    hierarchical_advantages(root)

    advantages = torch.zeros(len(trajectories), length)
    elc = torch.zeros(len(trajectories), length)
    for i, traj in enumerate(trajectories):
        for k, ((start, end, _), node) in enumerate(zip(traj["turns"], nodes[i])):
            advantages[i, start:end] = node.a_hier
            if i in searches and k >= searches[i]:
                elc[i, start:end] = 1.0
    return advantages, elc


# %% [markdown]
# ## The tests it came with


# %%
def given_tests(batch_rows):
    # three full trajectories of two turns each; the first failed and was searched
    group = [{"turns": [(2, 5, 7), (7, 9, 9)], "reward": r} for r in (0.0, 1.0, 1.0)]
    advantages, elc = batch_rows(group, {}, {0: 1}, 0.5, 12)
    assert advantages.shape == elc.shape == (3, 12)
    # the package's A_hier on the same tree, turn by turn
    root = Node(children=[Node(children=[Node(reward=t["reward"])]) for t in group])
    hierarchical_advantages(root, 0.5)
    for row, first in enumerate(root.children):
        assert torch.allclose(advantages[row, 2:5], torch.tensor(first.a_hier)), "turn 1"
        assert torch.allclose(advantages[row, 7:9], torch.tensor(first.children[0].a_hier))
    assert advantages[:, 5:7].abs().sum() == 0, "tool outputs get no credit"
    assert elc[1:].sum() == 0, "only the searched failure is under ELC"
    assert elc[0, 7:9].sum() == 2, "its last turn is under ELC"


given_tests(batch_rows_as_given)
print("the given tests pass")

# %% [markdown]
# ## 1. Tests that catch the bugs · ★★☆
#
# Write `test_batch_rows(batch_rows)`. Build small inputs by hand and work out what the rows
# must be from Eqs. 6-10 and the ELC rule (notebooks 03 and 04), not by running the given
# version.
#
# <details><summary>Hint</summary>
#
# The given tests have no continuation, a single λ_tree, and t_crit = 1 on a failure whose
# ELC they only check at its last turn.
# </details>


# %% nbgrader={"grade": false, "grade_id": "e7_tests", "locked": false, "schema_version": 3, "solution": true, "task": false}
def test_batch_rows(batch_rows):
    """Assertions that a correct ``batch_rows`` passes and the given version fails."""
    ### BEGIN SOLUTION
    # ELC covers the critical turn and everything after it: t_crit = 1 is every turn
    group = [{"turns": [(2, 5, 7), (7, 9, 9)], "reward": r} for r in (0.0, 1.0, 1.0)]
    _, elc = batch_rows(group, {}, {0: 1}, 0.5, 12)
    assert elc[0, 2:5].sum() == 3 and elc[0, 7:9].sum() == 2, "t_crit = 1 covers both turns"

    # tau failed; a continuation from its prefix(1) succeeded; u is another success
    tau = {"turns": [(2, 5, 7), (7, 9, 11), (11, 13, 13)], "reward": 0.0}
    cont = {"turns": [(2, 5, 7), (7, 10, 12), (12, 14, 14)], "reward": 1.0}
    u = {"turns": [(2, 6, 8), (8, 10, 10)], "reward": 1.0}
    rows = ([tau, cont, u], {1: (0, 1)}, {0: 2})
    at_0, _ = batch_rows(*rows, 0.0, 16)
    at_1, _ = batch_rows(*rows, 1.0, 16)
    # tau's turn 1: A_b = -1 (its branch, value 0.5, against u's 1) but A_t = -0.35
    assert not torch.allclose(at_0[0, 2:5], at_1[0, 2:5]), "lambda_tree must matter"
    # the continuation repeats tau's turn 1: same node, same advantage
    assert torch.equal(at_0[1, 2:5], at_0[0, 2:5]), "a shared turn has its parent's A_hier"
    # and its own turns, a success's, are credited positively to the end
    assert at_0[1, 7:10].min() > 0 and at_0[1, 12:14].min() > 0, "its own turns"
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e7_tests_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_batch_rows_tests(test_batch_rows)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "e7_explanation", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
# ## 2. The three bugs, explained · ★★☆
#
# For each bug: what is wrong, an input that shows it, and what it would do to training.
#
# ### BEGIN SOLUTION
# 1. **The continuations' rows are misaligned.** `nodes[i]` holds only the nodes a
#    trajectory created, so a continuation from prefix(m) zips its turn 1 with its own first
#    node, the one of turn m + 1: every turn gets a later turn's A_hier, and its last m turns
#    get nothing (0). The shared turns must carry the parent's first m nodes (the same tokens,
#    the same node). Any tree with a continuation shows it: a successful continuation's shared
#    turns get its positive branch credit, and its answer turn none. BEL's continuations are
#    where the localized credit lives, so this scrambles exactly ELPO's signal.
# 2. **λ_tree is dropped.** `hierarchical_advantages(root)` uses its default 0.5 whatever the
#    caller asked. At λ_tree = 0 or 1 every node whose A_b differs from its A_t gets the wrong
#    advantage; a λ_tree ablation (notebook 05's `credit_auc_lambda0`, or a run with
#    `lambda_tree=0`) would silently train the default and report no difference.
# 3. **ELC starts a turn late.** t_crit is 1-based and `k` 0-based: the critical turn is
#    `k == t_crit - 1`. With t_crit = 1 the first turn is left out, and in general the fatal
#    step itself, the one ELC exists for, keeps the normal clip range.
# ### END SOLUTION

# %% [markdown]
# ## 3. The fixed function · ★★☆
#
# Copy `batch_rows_as_given` here under the name `batch_rows` and fix the three bugs.


# %% nbgrader={"grade": false, "grade_id": "e7_batch_rows", "locked": false, "schema_version": 3, "solution": true, "task": false}
def batch_rows(trajectories, parents, searches, lambda_tree, length):
    """The training rows of one prompt's tree: ``(advantages, elc)``, both [B, T]."""
    ### BEGIN SOLUTION
    root = Node()
    # every trajectory's path: the nodes of all its turns, the shared ones included
    paths = {}
    for i, traj in enumerate(trajectories):
        parent, m = parents.get(i, (None, 0))
        path = list(paths[parent][:m]) if parent is not None else []
        attach = path[-1] if path else root
        for _ in traj["turns"][m:]:
            node = Node()
            attach.children.append(node)
            attach = node
            path.append(node)
        path[-1].reward = traj["reward"]
        paths[i] = path
    hierarchical_advantages(root, lambda_tree)

    advantages = torch.zeros(len(trajectories), length)
    elc = torch.zeros(len(trajectories), length)
    for i, traj in enumerate(trajectories):
        for k, ((start, end, _), node) in enumerate(zip(traj["turns"], paths[i])):
            advantages[i, start:end] = node.a_hier
            # t_crit is 1-based: its turn is k = t_crit - 1
            if i in searches and k >= searches[i] - 1:
                elc[i, start:end] = 1.0
    return advantages, elc
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e7_batch_rows_check", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_batch_rows(batch_rows)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## To think about
#
# * A root-to-leaf row trains a shared prefix once per leaf below it (notebook 03 says the
#   paper does not de-duplicate). How much weight does τ*'s first turn get in this tree's
#   loss, against a turn of an independent trajectory? Is that what you want?
# * The tests you wrote compare with numbers worked out by hand. What would a test that
#   compares `batch_rows` with `elpo_min.train.training_batch` on a real BEL tree catch that
#   yours cannot, and what would it cost?
