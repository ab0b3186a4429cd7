"""Hierarchical advantages (paper §4.2, Eqs. 6-10), checked against values worked out by hand."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elpo_min import Node, hierarchical_advantages
from elpo_min.advantages import zscores


def test_figure_4_reading():
    parent = Node(children=[Node(reward=-1.1), Node(reward=1.0), Node(reward=1.0)])
    hierarchical_advantages(parent)
    assert parent.value == pytest.approx(0.3)


def test_branch_advantage_of_siblings_by_hand():
    # values 0, 1, 1: mean 2/3, population std sqrt(2)/3
    kids = [Node(reward=0.0), Node(reward=1.0), Node(reward=1.0)]
    root = Node(children=kids)
    hierarchical_advantages(root, eps=0.0)
    s = math.sqrt(2) / 3
    assert [k.a_branch for k in kids] == pytest.approx([-(2 / 3) / s, (1 / 3) / s, (1 / 3) / s])
    assert root.a_branch == 0.0


def test_only_child_inherits_and_internal_a_t_is_mean_of_its_leaves():
    #        root
    #       /    \
    #      a      d(R=0)
    #      |
    #      b            <- only child of a: inherits A_b(a)
    #     / \
    #  c1(1) c2(0)
    c1, c2, d = Node(reward=1.0), Node(reward=0.0), Node(reward=0.0)
    b = Node(children=[c1, c2])
    a = Node(children=[b])
    root = Node(children=[a, d])
    hierarchical_advantages(root, lambda_tree=0.5, eps=0.0)
    assert (a.value, b.value, root.value) == (0.5, 0.5, 0.25)
    assert a.a_branch == pytest.approx(1.0) and d.a_branch == pytest.approx(-1.0)  # values 0.5 vs 0
    assert b.a_branch == a.a_branch
    assert (c1.a_branch, c2.a_branch) == pytest.approx((1.0, -1.0))
    # leaves 1, 0, 0: mean 1/3, std sqrt(2)/3
    s = math.sqrt(2) / 3
    assert c1.a_traj == pytest.approx((2 / 3) / s) and d.a_traj == pytest.approx(-(1 / 3) / s)
    assert b.a_traj == pytest.approx((c1.a_traj + c2.a_traj) / 2) and a.a_traj == b.a_traj
    assert root.a_traj == pytest.approx(0.0, abs=1e-12)
    assert c1.a_hier == pytest.approx(0.5 * 1.0 + 0.5 * c1.a_traj)


def test_lambda_tree_endpoints():
    def tree():
        c1, c2 = Node(reward=1.0), Node(reward=0.0)
        return Node(children=[Node(children=[c1, c2]), Node(reward=1.0)]), c1, c2

    root, c1, c2 = tree()
    hierarchical_advantages(root, lambda_tree=1.0)
    assert (c1.a_hier, c2.a_hier) == (c1.a_branch, c2.a_branch)
    root, c1, c2 = tree()
    hierarchical_advantages(root, lambda_tree=0.0)
    assert (c1.a_hier, c2.a_hier) == (c1.a_traj, c2.a_traj)
    with pytest.raises(ValueError, match="lambda_tree"):
        hierarchical_advantages(root, lambda_tree=1.5)


def test_leaf_without_reward_is_an_error():
    with pytest.raises(ValueError, match="reward"):
        hierarchical_advantages(Node(children=[Node()]))


def random_tree(draw_rewards, shape):
    """Build a tree from a nested list shape; leaves take rewards in order."""
    it = iter(draw_rewards)

    def build(s):
        return Node(reward=next(it)) if s == 0 else Node(children=[build(c) for c in s])

    return build(shape)


shapes = st.recursive(
    st.just(0), lambda kids: st.lists(kids, min_size=1, max_size=3), max_leaves=10
)


def count_leaves(s):
    return 1 if s == 0 else sum(count_leaves(c) for c in s)


@settings(max_examples=150, deadline=None)
@given(
    shape=shapes,
    data=st.data(),
    scale=st.floats(0.1, 10),
    shift=st.floats(-5, 5),
    lam=st.floats(0, 1),
)
def test_affine_reward_change_leaves_advantages_unchanged(shape, data, scale, shift, lam):
    n = count_leaves(shape)
    rewards = data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n))
    a, b = random_tree(rewards, shape), random_tree([scale * r + shift for r in rewards], shape)
    hierarchical_advantages(a, lam, eps=1e-9)
    hierarchical_advantages(b, lam, eps=1e-9)
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        assert y.a_hier == pytest.approx(x.a_hier, abs=1e-5)
        stack += list(zip(x.children, y.children))


@settings(max_examples=100, deadline=None)
@given(rewards=st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=16))
def test_lambda_zero_on_independent_rollouts_is_grpo(rewards):
    # GRPO-shaped tree: every trajectory is a chain of 3 single-child nodes from the root
    leaves = [Node(reward=r) for r in rewards]
    root = Node(children=[Node(children=[Node(children=[leaf])]) for leaf in leaves])
    hierarchical_advantages(root, lambda_tree=0.0)
    z = zscores(rewards)
    for chain, zi in zip(root.children, z):
        for node in (chain, chain.children[0], chain.children[0].children[0]):
            assert node.a_hier == pytest.approx(zi)


@given(r=st.floats(-3, 3), n=st.integers(1, 8), lam=st.floats(0, 1))
def test_all_equal_rewards_give_zero_advantages(r, n, lam):
    root = Node(children=[Node(children=[Node(reward=r), Node(reward=r)]) for _ in range(n)])
    hierarchical_advantages(root, lam)
    stack = [root]
    while stack:
        node = stack.pop()
        assert node.a_hier == 0.0 and node.a_branch == 0.0 and node.a_traj == 0.0
        stack += node.children
