"""Exercise E3's checks: node values (Eq. 6), A_b (Eq. 7), A_t (Eqs. 8-9), A_hier (Eq. 10).

Every check walks the same trees (Figure 4's node, notebook 03's small tree, a tree with an
only child, seeded random trees) and compares one field of every node, in preorder. A mistake
is recognised by filling that field the way the mistake would."""

from __future__ import annotations

import copy
import random
import statistics

from ..advantages import Node, branch_advantages, hierarchical_advantages, node_value
from .checker import Case, close, run_check

# the usual mistakes, one hint each
SAMPLE_STD = "that is the sample std (divides by n - 1); the z-scores use the population std"
ALL_LEAVES = "a node's value is the mean over its direct children (Eq. 6), not over all leaves"
SINGLE_CHILD = "an only child has no siblings to compare with: it inherits its parent's A_b"
ALL_NODES = "A_t z-scores a leaf's reward among the leaves of the tree (Eq. 8), not all nodes"


def preorder(node: Node) -> list[Node]:
    return [node] + [n for child in node.children for n in preorder(child)]


def random_tree(rng: random.Random, depth: int = 3) -> Node:
    """A tree with 1-3 children per node (so some only children), rewards 0/1 at the leaves."""
    if depth == 0 or (depth < 3 and rng.random() < 0.3):
        return Node(reward=float(rng.random() < 0.5))
    return Node(children=[random_tree(rng, depth - 1) for _ in range(rng.randint(1, 3))])


def example_trees() -> list[tuple[str, Node]]:
    """Figure 4's node, notebook 03's small tree, a chain with only children, random trees."""
    figure4 = Node(children=[Node(reward=-1.1), Node(reward=1.0), Node(reward=1.0)])
    s2 = Node(children=[Node(children=[Node(reward=r)]) for r in (0.0, 1.0, 0.0)])
    small = Node(children=[Node(children=[s2]), Node(children=[Node(children=[Node(reward=1.0)])])])
    chain = Node(children=[Node(children=[Node(children=[Node(reward=0.0), Node(reward=1.0)])])])
    chain.children.append(Node(reward=0.0))
    rng = random.Random(3)
    trees = [("Figure 4", figure4), ("notebook 03's tree", small), ("an only child", chain)]
    return trees + [(f"random tree {i}", random_tree(rng)) for i in range(4)]


def zscore(values: list[float], std) -> list[float]:
    """(v - mean) / (std + 1e-6), exactly 0 for equal values, with the given std function."""
    if max(values) == min(values):
        return [0.0] * len(values)
    mean = statistics.mean(values)
    return [(v - mean) / (std(values) + 1e-6) for v in values]


def tree_check(title, fn, field, fill_first, variants, call=None) -> bool:
    """Compare ``field`` over a preorder walk of each example tree after ``fn`` fills it.

    Args:
        fill_first: what the package fills before the student's function runs.
        variants: ``[(hint, tree -> None)]``, each filling ``field`` the way a mistake would.
        call: how to call the student's function on a root (default ``fn(root)``).
    """
    call = call or fn
    cases = []
    for name, tree in example_trees():
        fill_first(tree)
        reference = copy.deepcopy(tree)
        hierarchical_advantages(reference)
        expected = [getattr(n, field) for n in preorder(reference)]
        mistakes = []
        for hint, variant in variants:
            wrong = copy.deepcopy(tree)
            variant(wrong)
            wrong_values = [getattr(n, field) for n in preorder(wrong)]
            if not close(wrong_values, expected):
                mistakes.append((hint, lambda got, w=wrong_values: close(got, w)))
        cases.append(
            Case(name, walk_after(call, tree, field), expected, short_tree(tree), mistakes)
        )
    return run_check(title, cases)


def walk_after(call, tree: Node, field: str):
    def run():
        mine = copy.deepcopy(tree)
        call(mine)
        return [getattr(n, field) for n in preorder(mine)]

    return run


def short_tree(node: Node) -> str:
    """A tree as nested lists of leaf rewards, e.g. [[0.0], [1.0, 0.0]]."""
    if not node.children:
        return repr(node.reward)
    return "[" + ", ".join(short_tree(c) for c in node.children) + "]"


def values_over_all_leaves(root: Node) -> None:
    for node in preorder(root):
        node.value = statistics.mean(float(leaf.reward) for leaf in node.leaves())


def branch_with_sample_std(node: Node) -> None:
    if len(node.children) >= 2:
        values = [c.value for c in node.children]
        for child, z in zip(node.children, zscore(values, statistics.stdev)):
            child.a_branch = z
    else:
        for child in node.children:
            child.a_branch = node.a_branch
    for child in node.children:
        branch_with_sample_std(child)


def branch_without_inheritance(node: Node) -> None:
    branch_advantages(node)
    for parent in preorder(node):
        if len(parent.children) == 1:
            parent.children[0].a_branch = 0.0


def trajectory_over_all_nodes(root: Node) -> None:
    nodes = preorder(root)[1:]
    rewards = [n.value for n in nodes]
    for node, z in zip(nodes, zscore(rewards, statistics.pstdev)):
        node.a_traj = z if not node.children else 0.0
    for node in preorder(root):
        if node.children:
            node.a_traj = statistics.mean(leaf.a_traj for leaf in node.leaves())


def nothing(root: Node) -> None:
    pass


def root_branch_then(fill):
    """``fill`` after the caller's part of Eq. 7: the root's A_b is 0."""

    def run(root: Node) -> None:
        root.a_branch = 0.0
        fill(root)

    return run


def check_node_values(fn) -> bool:
    """``fn(root)`` fills ``node.value`` everywhere (Eq. 6)."""
    variants = [(ALL_LEAVES, values_over_all_leaves)]
    return tree_check("node values (Eq. 6)", fn, "value", nothing, variants)


def check_branch_advantages(fn) -> bool:
    """``fn(node)`` fills ``a_branch`` below ``node`` (Eq. 7); values are filled and the root's
    A_b is 0 before the call."""
    variants = [
        (SAMPLE_STD, root_branch_then(branch_with_sample_std)),
        (SINGLE_CHILD, root_branch_then(branch_without_inheritance)),
    ]
    call = root_branch_then(fn)
    return tree_check("branch advantages A_b (Eq. 7)", fn, "a_branch", node_value, variants, call)


def check_trajectory_advantages(fn) -> bool:
    """``fn(root)`` fills ``a_traj`` everywhere (Eqs. 8-9); values are filled before."""
    variants = [(ALL_NODES, trajectory_over_all_nodes), (SAMPLE_STD, trajectory_sample_std)]
    return tree_check("trajectory advantages A_t (Eqs. 8-9)", fn, "a_traj", node_value, variants)


def trajectory_sample_std(root: Node) -> None:
    leaves = root.leaves()
    for leaf, z in zip(leaves, zscore([float(leaf.reward) for leaf in leaves], statistics.stdev)):
        leaf.a_traj = z
    for node in preorder(root):
        if node.children:
            node.a_traj = statistics.mean(leaf.a_traj for leaf in node.leaves())


def check_hierarchical_advantages(fn) -> bool:
    """``fn(root, lambda_tree)`` fills value, a_branch, a_traj and a_hier (Eq. 10)."""
    ok = True
    for lambda_tree in (0.5, 0.0, 1.0):

        def call(root, lam=lambda_tree):
            fn(root, lam)

        def reference(root, lam=lambda_tree):
            hierarchical_advantages(root, lam)

        cases = []
        for name, tree in example_trees():
            expected_tree = copy.deepcopy(tree)
            reference(expected_tree)
            expected = [n.a_hier for n in preorder(expected_tree)]
            cases.append(Case(name, walk_after(call, tree, "a_hier"), expected, short_tree(tree)))
        ok = run_check(f"A_hier (Eq. 10), lambda_tree = {lambda_tree}", cases) and ok
        if not ok:
            break
    return ok
