"""Exercise E3's checks: node values (Eq. 6), A_b (Eq. 7), A_t (Eqs. 8-9), A_hier (Eq. 10).

Every check walks the same trees (Figure 4's node, notebook 03's small tree, a tree with an
only child, seeded random trees) and compares one field of every node, in preorder. A mistake
is a function that fills that field the way the mistake would; its output on each tree is the
prediction the hint is matched against.
"""

from __future__ import annotations

import copy
import random
import statistics

from ..advantages import (
    Node,
    branch_advantages,
    hierarchical_advantages,
    node_value,
    trajectory_advantages,
    zscores,
)
from .checker import Case, outcome_of, run_check, wrong

# the usual mistakes, one hint each
ALL_LEAVES = "a node's value is the mean over its direct children (Eq. 6), not over all leaves"
LEAF_VALUE = "a leaf's value is its reward: set node.value on the leaves too"
MAX_CHILD = "Eq. 6 averages the children's values; the max is BEL's 'any success', not a value"
SUM_CHILDREN = "Eq. 6 is the mean of the children's values, not their sum"
SAMPLE_STD = "that is the sample std (divides by n - 1); the z-scores use the population std"
SINGLE_CHILD = "an only child has no siblings to compare with: it inherits its parent's A_b"
NOT_RECURSIVE = "Eq. 7 applies at every branch point: recurse into the children"
COUSINS = "siblings are the children of one parent, not every node at the same depth"
NEGATED = "check the sign: a child better than its siblings gets a positive A_b"
ALL_NODES = "A_t z-scores a leaf's reward among the leaves of the tree (Eq. 8), not all nodes"
CHILDREN_MEAN = (
    "Eq. 9 averages A_t over the leaves below a node; a mean over its direct children "
    "weighs a child with one leaf like a child with ten"
)
INTERNAL_ZERO = "internal nodes get A_t too (Eq. 9): the mean of A_t over the leaves below"
LAMBDA_SWAPPED = "A_hier = lambda_tree * A_b + (1 - lambda_tree) * A_t: the weights are swapped"
LAMBDA_IGNORED = "use the lambda_tree you are given, not the default 0.5"
LEAVES_ONLY = "every node gets A_hier, internal ones too: their turns are trained as well"
UNWEIGHTED = "A_hier mixes the two terms with weights lambda_tree and 1 - lambda_tree"


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


def field_after(fill, tree: Node, field: str):
    """``field`` of every node, in preorder, after ``fill`` ran on a copy of ``tree``."""
    mine = copy.deepcopy(tree)
    fill(mine)
    return [getattr(n, field) for n in preorder(mine)]


def tree_check(title, field, fill_first, reference, variants, call) -> bool:
    """Compare ``field`` over a preorder walk of each example tree after ``call`` fills it.

    Args:
        fill_first: what the package fills before the student's function runs.
        reference: fills ``field`` the right way, on a tree that ``fill_first`` prepared.
        variants: ``[(hint, tree -> None)]``, each filling ``field`` the way a mistake would.
        call: the student's function applied to a root.
    """
    cases = []
    for name, tree in example_trees():
        fill_first(tree)
        expected = field_after(reference, tree, field)
        mistakes = [
            wrong(hint, outcome_of(field_after, variant, tree, field)) for hint, variant in variants
        ]
        run = lambda tree=tree: field_after(call, tree, field)  # noqa: E731
        cases.append(Case(name, run, expected, short_tree(tree), mistakes))
    return run_check(title, cases)


def short_tree(node: Node) -> str:
    """A tree as nested lists of leaf rewards, e.g. [[0.0], [1.0, 0.0]]."""
    if not node.children:
        return repr(node.reward)
    return "[" + ", ".join(short_tree(c) for c in node.children) + "]"


def nothing(root: Node) -> None:
    pass


def values_with(combine):
    """Eq. 6 with another way to combine the children's values."""

    def fill(node: Node) -> float:
        if not node.children:
            node.value = float(node.reward)
        else:
            node.value = combine([fill(child) for child in node.children])
        return node.value

    return fill


def values_over_all_leaves(root: Node) -> None:
    for node in preorder(root):
        node.value = statistics.mean(float(leaf.reward) for leaf in node.leaves())


def values_without_leaves(root: Node) -> None:
    node_value(root)
    for leaf in root.leaves():
        leaf.value = 0.0


def check_node_values(fn) -> bool:
    """``fn(root)`` fills ``node.value`` everywhere (Eq. 6)."""
    variants = [
        (ALL_LEAVES, values_over_all_leaves),
        (LEAF_VALUE, values_without_leaves),
        (MAX_CHILD, values_with(max)),
        (SUM_CHILDREN, values_with(sum)),
    ]
    return tree_check("node values (Eq. 6)", "value", nothing, node_value, variants, fn)


def root_branch_then(fill):
    """``fill`` after the caller's part of Eq. 7: the root's A_b is 0."""

    def run(root: Node) -> None:
        root.a_branch = 0.0
        fill(root)

    return run


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


def branch_at_the_root_only(node: Node) -> None:
    if len(node.children) >= 2:
        for child, z in zip(node.children, zscores([c.value for c in node.children])):
            child.a_branch = z
    else:
        for child in node.children:
            child.a_branch = node.a_branch


def branch_over_cousins(root: Node) -> None:
    level = root.children
    while level:
        for node, z in zip(level, zscores([n.value for n in level])):
            node.a_branch = z
        level = [child for node in level for child in node.children]


def branch_negated(root: Node) -> None:
    branch_advantages(root)
    for node in preorder(root)[1:]:
        node.a_branch = -node.a_branch


def check_branch_advantages(fn) -> bool:
    """``fn(node)`` fills ``a_branch`` below ``node`` (Eq. 7); values are filled and the root's
    A_b is 0 before the call."""
    variants = [
        (SAMPLE_STD, root_branch_then(branch_with_sample_std)),
        (SINGLE_CHILD, root_branch_then(branch_without_inheritance)),
        (NOT_RECURSIVE, root_branch_then(branch_at_the_root_only)),
        (COUSINS, root_branch_then(branch_over_cousins)),
        (NEGATED, root_branch_then(branch_negated)),
    ]
    reference = root_branch_then(branch_advantages)
    call = root_branch_then(fn)
    title = "branch advantages A_b (Eq. 7)"
    return tree_check(title, "a_branch", node_value, reference, variants, call)


def leaf_zscores(root: Node, std=statistics.pstdev) -> list[Node]:
    """Eq. 8 on the leaves, with the given std; returns the leaves."""
    leaves = root.leaves()
    for leaf, z in zip(leaves, zscore([float(leaf.reward) for leaf in leaves], std)):
        leaf.a_traj = z
    return leaves


def internal_from_leaves(root: Node) -> None:
    """Eq. 9, given the leaves' A_t."""
    for node in preorder(root):
        if node.children:
            node.a_traj = statistics.mean(leaf.a_traj for leaf in node.leaves())


def trajectory_over_all_nodes(root: Node) -> None:
    nodes = preorder(root)[1:]
    values = [n.value for n in nodes]
    for node, z in zip(nodes, zscore(values, statistics.pstdev)):
        node.a_traj = z if not node.children else 0.0
    internal_from_leaves(root)


def trajectory_sample_std(root: Node) -> None:
    leaf_zscores(root, statistics.stdev)
    internal_from_leaves(root)


def trajectory_children_mean(root: Node) -> None:
    leaf_zscores(root)

    def fill(node: Node) -> float:
        if node.children:
            node.a_traj = statistics.mean(fill(child) for child in node.children)
        return node.a_traj

    fill(root)


def trajectory_leaves_only(root: Node) -> None:
    leaf_zscores(root)


def check_trajectory_advantages(fn) -> bool:
    """``fn(root)`` fills ``a_traj`` everywhere (Eqs. 8-9); values are filled before."""
    variants = [
        (ALL_NODES, trajectory_over_all_nodes),
        (SAMPLE_STD, trajectory_sample_std),
        (CHILDREN_MEAN, trajectory_children_mean),
        (INTERNAL_ZERO, trajectory_leaves_only),
    ]
    title = "trajectory advantages A_t (Eqs. 8-9)"
    return tree_check(title, "a_traj", node_value, trajectory_advantages, variants, fn)


def mixed(weights):
    """A_hier from the package's A_b and A_t, mixed with ``weights(lambda) -> (w_b, w_t)``."""

    def fill(root: Node, lambda_tree: float) -> None:
        hierarchical_advantages(root, lambda_tree)
        w_b, w_t = weights(lambda_tree)
        for node in preorder(root):
            node.a_hier = w_b * node.a_branch + w_t * node.a_traj

    return fill


def hier_on_leaves_only(root: Node, lambda_tree: float) -> None:
    hierarchical_advantages(root, lambda_tree)
    for node in preorder(root):
        if node.children:
            node.a_hier = 0.0


# lambda_tree per example tree: every case but one away from 0.5, where a swap would hide
LAMBDAS = [0.25, 0.8, 0.0, 1.0, 0.6, 0.35, 0.5]


def check_hierarchical_advantages(fn) -> bool:
    """``fn(root, lambda_tree)`` fills value, a_branch, a_traj and a_hier (Eq. 10)."""
    variants = {
        LAMBDA_SWAPPED: mixed(lambda lam: (1 - lam, lam)),
        LAMBDA_IGNORED: mixed(lambda lam: (0.5, 0.5)),
        UNWEIGHTED: mixed(lambda lam: (1.0, 1.0)),
        LEAVES_ONLY: hier_on_leaves_only,
    }
    cases = []
    for (name, tree), lam in zip(example_trees(), LAMBDAS):

        def with_lambda(fill, lam=lam):
            return lambda root: fill(root, lam)

        expected = field_after(with_lambda(hierarchical_advantages), tree, "a_hier")
        mistakes = [
            wrong(hint, outcome_of(field_after, with_lambda(variant), tree, "a_hier"))
            for hint, variant in variants.items()
        ]
        run = lambda tree=tree, lam=lam: field_after(with_lambda(fn, lam), tree, "a_hier")  # noqa: E731
        shown = f"{short_tree(tree)}, lambda_tree={lam}"
        cases.append(Case(f"{name}, lambda_tree = {lam}", run, expected, shown, mistakes))
    return run_check("A_hier (Eq. 10)", cases)
