"""How well BEL localized and ranked, against Monte-Carlo references."""

from __future__ import annotations

from ..advantages import build_tree, hierarchical_advantages
from .credit import oracle_hits


def mc_first_dead_step(rates: list[float]) -> int:
    """The Monte-Carlo reference for t_crit.

    Args:
        rates: ``rates[m-1]`` = success rate of many continuations from prefix(m), m = 1..K-1.

    Returns:
        the first m whose rate is 0, else K.
    """
    return next((m for m, rate in enumerate(rates, start=1) if rate == 0.0), len(rates) + 1)


def pair_counts(scores: list[float], targets: list[float]) -> tuple[int, int, int, int]:
    """(concordant, discordant, pairs whose targets differ, all pairs) over index pairs."""
    concordant = discordant = decided = 0
    for i in range(len(scores)):
        for j in range(i + 1, len(scores)):
            s = (scores[i] > scores[j]) - (scores[i] < scores[j])
            t = (targets[i] > targets[j]) - (targets[i] < targets[j])
            decided += t != 0
            concordant += s * t > 0
            discordant += s * t < 0
    return concordant, discordant, decided, len(scores) * (len(scores) - 1) // 2


def ranking_quality(counts: list[tuple[int, int, int, int]]) -> dict:
    """Pairwise accuracy and Kendall tau-a, pooled over groups of :func:`pair_counts`.

    Pairwise accuracy is over pairs whose targets differ, a tie in the scores counting half;
    tau-a is over all pairs, a tie on either side counting as neither concordant nor discordant.
    """
    conc, disc, decided, pairs = (sum(c[i] for c in counts) for i in range(4))
    ties = decided - conc - disc
    accuracy = (conc + ties / 2) / decided if decided else float("nan")
    return {
        "pairwise_accuracy": accuracy,
        "kendall_tau": (conc - disc) / pairs if pairs else float("nan"),
    }


def sibling_sets(trees: list) -> list[list]:
    """The children of every branch point (a node with two or more children), A_b filled."""
    sets = []
    for tree in trees:
        root, _ = build_tree(tree.trajectories, tree.parents)
        hierarchical_advantages(root)
        stack = [root]
        while stack:
            node = stack.pop()
            stack += node.children
            if len(node.children) >= 2:
                sets.append(node.children)
    return sets


def bel_report(engine, trees: list, n: int = 16) -> dict:
    """BEL's localization and ranking against Monte-Carlo references.

    ``n`` continuations from each prefix(m) of every probed search give the Monte-Carlo first
    dead step (the toy oracle gives the fatal step), and siblings' A_b is ranked against the
    Monte-Carlo success rate from each sibling's prefix.

    Returns:
        dict with ``searches``, ``agree_mc``, ``agree_oracle`` (over the ``oracle_searches``
        with a fatal step), ``pairwise_accuracy`` / ``kendall_tau`` of sibling A_b pooled over
        branch points, and the Monte-Carlo ``rollouts`` spent.
    """
    searches = [(tau, r) for tree in trees for tau, r in tree.searches if r.probes]
    prefixes = [tau.prefix(m) for tau, _ in searches for m in range(1, tau.num_steps)]
    siblings = sibling_sets(trees)
    step_children = [child for sibs in siblings for child in sibs if child.children]
    prefixes += [child.traj.prefix(child.turn + 1) for child in step_children]
    rates = []
    if prefixes:
        rates = [sum(t.success for t in group) / n for group in engine.rollout(prefixes, n)]
    agree_mc, offset = 0, 0
    for tau, result in searches:
        k = tau.num_steps
        agree_mc += result.t_crit == mc_first_dead_step(rates[offset : offset + k - 1])
        offset += k - 1
    hits = oracle_hits(searches)
    child_rate = dict(zip(map(id, step_children), rates[offset:]))
    counts = []
    for sibs in siblings:
        targets = [child_rate.get(id(child), child.reward) for child in sibs]
        counts.append(pair_counts([child.a_branch for child in sibs], targets))
    return {
        "searches": len(searches),
        "agree_mc": agree_mc / max(len(searches), 1),
        "agree_oracle": sum(hits) / max(len(hits), 1),
        "oracle_searches": len(hits),
        "sibling_sets": len(siblings),
        **ranking_quality(counts),
        "rollouts": len(prefixes) * n,
    }
