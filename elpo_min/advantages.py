"""Hierarchical advantage attribution on the rollout tree (paper §4.2, Eqs. 6-10).

The tree has one node per assistant turn. A full trajectory is a path from the root to a leaf
(its last turn, carrying the reward R); a continuation sampled from prefix(m) shares the first m
nodes of its parent and branches below node m. Stretches without branching are chains of
single-child nodes, which simply pass values up and advantages down. Two advantages meet at
every node:

* branch level ``A_b``: how much better this child is than its siblings, z-scored over the
  siblings (the "which branch was the good move" signal);
* trajectory level ``A_t``: the z-score of the leaf rewards over the tree's leaves (GRPO's formula,
  applied to the tree's own trajectories), averaged over the leaves below.

``A_hier = lambda_tree * A_b + (1 - lambda_tree) * A_t``; every action token of a node gets its
node's ``A_hier``. Training sequences are root-to-leaf paths, so a prefix shared by several
leaves is trained once per leaf (the paper does not say whether to de-duplicate; we do not,
which keeps each sequence a normal sample).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import Config


@dataclass(eq=False)
class Node:
    """A rollout-tree node. ``Node(reward=1.0)`` is a leaf, ``Node(children=[...])`` internal.

    ``traj``/``turn`` say whose tokens the node owns (turn index into ``traj.turns``);
    ``value``, ``a_branch``, ``a_traj`` and ``a_hier`` are filled by
    :func:`hierarchical_advantages`.
    """

    reward: float | None = None
    children: list[Node] = field(default_factory=list)
    traj: Any = None
    turn: int = -1
    value: float = 0.0
    a_branch: float = 0.0
    a_traj: float = 0.0
    a_hier: float = 0.0

    def leaves(self) -> list[Node]:
        return [self] if not self.children else [leaf for c in self.children for leaf in c.leaves()]


def zscores(values: list[float], eps: float = 1e-6) -> list[float]:
    """(v - mean) / (std + eps) with the population std; exactly 0 for equal values."""
    if max(values) == min(values):
        return [0.0] * len(values)
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    return [(v - mean) / (std + eps) for v in values]


def node_value(node: Node) -> float:
    """Eq. (6): value(leaf) = R; value(internal) = mean of the values of its direct children."""
    if not node.children:
        if node.reward is None:
            raise ValueError("a leaf Node needs a reward: Node(reward=...)")
        node.value = float(node.reward)
    else:
        node.value = sum(node_value(c) for c in node.children) / len(node.children)
    return node.value


def branch_advantages(node: Node, eps: float = 1e-6) -> None:
    """Eq. (7): A_b(child) = (value(child) - mean) / (std + eps) over its M >= 2 siblings;
    an only child inherits its parent's A_b. The caller sets the root's A_b (0)."""
    if len(node.children) >= 2:
        for child, z in zip(node.children, zscores([c.value for c in node.children], eps)):
            child.a_branch = z
    else:
        for child in node.children:
            child.a_branch = node.a_branch
    for child in node.children:
        branch_advantages(child, eps)


def trajectory_advantages(root: Node, eps: float = 1e-6) -> None:
    """Eq. (8): A_t(leaf) = (R - mean) / (std + eps) over all leaves of the tree;
    Eq. (9): A_t(internal) = mean A_t of the leaves below it."""
    leaves = root.leaves()
    for leaf, z in zip(leaves, zscores([float(leaf.reward) for leaf in leaves], eps)):
        leaf.a_traj = z

    def fill(node: Node) -> tuple[float, int]:
        if not node.children:
            return node.a_traj, 1
        sums = [fill(c) for c in node.children]
        total, count = sum(s for s, _ in sums), sum(n for _, n in sums)
        node.a_traj = total / count
        return total, count

    fill(root)


def hierarchical_advantages(
    root: Node, lambda_tree: float = Config.lambda_tree, eps: float = 1e-6
) -> None:
    """Fill value, a_branch, a_traj and a_hier of every node in place.

    Eq. (10): A_hier = lambda_tree * A_b + (1 - lambda_tree) * A_t; the root's A_b is 0, and
    lambda_tree = 0 leaves A_t alone: the leaf z-score over the tree's own trajectories. That is
    not GRPO: BEL's continuations share prefixes and start mid-way, so the group it normalizes
    over is not GRPO's independent samples (notebook 05 compares the two on one tree).
    """
    if not 0.0 <= lambda_tree <= 1.0:
        raise ValueError(f"lambda_tree must be in [0, 1], got {lambda_tree}")
    node_value(root)
    root.a_branch = 0.0
    branch_advantages(root, eps)
    trajectory_advantages(root, eps)
    stack = [root]
    while stack:
        node = stack.pop()
        node.a_hier = lambda_tree * node.a_branch + (1.0 - lambda_tree) * node.a_traj
        stack.extend(node.children)


def build_tree(trajectories: list, parents: dict | None = None) -> tuple[Node, dict]:
    """Build the per-prompt tree: one node per turn, continuations branching off.

    Args:
        trajectories: finished trajectories of one prompt, parents before children.
        parents: ``id(child) -> (parent_trajectory, m)`` for continuations from prefix(m).

    Returns ``(root, path)``; ``path[id(traj)]`` lists the nodes of traj's turns, its leaf last.
    """
    parents = parents or {}
    root = Node()
    path = {}
    for traj in trajectories:
        parent, m = parents.get(id(traj), (None, 0))
        # a continuation shares its parent's first m nodes and branches below node m
        shared = path[id(parent)][:m] if parent is not None else []
        attach = shared[-1] if shared else root
        nodes = list(shared)
        for i in range(m, len(traj.turns)):
            node = Node(traj=traj, turn=i)
            attach.children.append(node)
            attach = node
            nodes.append(node)
        nodes[-1].reward = traj.reward
        path[id(traj)] = nodes
    return root, path
