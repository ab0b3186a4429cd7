"""Evaluation metrics: success rate, pass@k, maj@k, tool calls, where failures went wrong."""

from __future__ import annotations

from collections import Counter
from math import comb


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` correct: 1 - C(n-c, k) / C(n, k)."""
    if not 0 < k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n = {n} samples per problem")
    return 1.0 - comb(n - c, k) / comb(n, k)


def maj_at_k(answers: list[str | None], correct: list[bool]) -> bool:
    """Majority vote over the k answers (None abstains); ties go to the first seen."""
    votes = Counter(a.strip() for a in answers if a is not None)
    winner = votes.most_common(1)[0][0] if votes else None
    return any(ok for a, ok in zip(answers, correct) if a is not None and a.strip() == winner)


def evaluate(engine, problems: list, k: int = 1, progress: bool = True) -> dict:
    """Sample ``k`` trajectories per held-out problem with a :class:`~elpo_min.rollout.RolloutEngine`.

    Returns:
        dict with ``success_rate``, ``pass@1`` (averaged over all k), ``pass@k``, ``maj@k``,
        ``tool_calls_per_problem``, ``tool_calls_per_solved``, ``truncated_rate``, ``format_ok``
        (share of turns that parse as a call or an answer), ``tool_error_rate`` (share of calls
        that raised, timed out or crashed), ``outcomes`` (correct, no answer, unparseable, wrong),
        ``first_error_hist`` (toy only: the oracle's first wrong step of each failure, "none"
        when no output departed) and the ``trajectories``.
    """
    from tqdm import tqdm

    from .tasks import answer_outcome
    from .toy import Problem, first_error_step

    with tqdm(total=len(problems) * k, desc="evaluate", disable=not progress, leave=False) as bar:
        groups = engine.rollout([engine.start(p) for p in problems], k,
                                progress=lambda done: bar.update(done))
    trajs = [t for g in groups for t in g]
    solved = [t for t in trajs if t.success]
    hist, outcomes = Counter(), Counter()
    for t in trajs:
        outcome = "correct" if t.success else answer_outcome(t.answer, str(t.problem.answer))
        outcomes["wrong" if outcome == "correct" and not t.success else outcome] += 1
        if not t.success and isinstance(t.problem, Problem):
            step = first_error_step(t.problem, t.tool_outputs)
            hist["none" if step is None else step] += 1
    turns = [turn for t in trajs for turn in t.turns]
    calls = [turn for turn in turns if turn.code is not None]
    return {
        "success_rate": len(solved) / len(trajs),
        "pass@1": sum(pass_at_k(k, sum(t.success for t in g), 1) for g in groups) / len(groups),
        f"pass@{k}": sum(pass_at_k(k, sum(t.success for t in g), k) for g in groups) / len(groups),
        f"maj@{k}": sum(maj_at_k([t.answer for t in g], [t.success for t in g])
                        for g in groups) / len(groups),
        "tool_calls_per_problem": sum(t.num_steps for t in trajs) / len(trajs),
        "tool_calls_per_solved": sum(t.num_steps for t in solved) / max(len(solved), 1),
        "truncated_rate": sum(t.truncated for t in trajs) / len(trajs),
        "format_ok": sum(turn.code is not None or turn.answer is not None for turn in turns) / max(len(turns), 1),
        "tool_error_rate": sum(turn.failed for turn in calls) / max(len(calls), 1),
        "outcomes": {k: outcomes[k] for k in ("correct", "no answer", "unparseable", "wrong")},
        "first_error_hist": dict(sorted(hist.items(), key=lambda kv: (isinstance(kv[0], str), kv[0]))),
        "trajectories": groups,
    }


def mc_first_dead_step(rates: list[float]) -> int:
    """Monte-Carlo reference for t_crit from ``rates[m-1]`` = success rate of many
    continuations from prefix(m), m = 1..K-1: the first m whose rate is 0, else K."""
    return next((m for m, r in enumerate(rates, start=1) if r == 0.0), len(rates) + 1)


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
    """Pairwise accuracy over pairs whose targets differ (a tie in the scores counts half)
    and Kendall tau-a over all pairs (a tie on either side is neither concordant nor
    discordant), pooled over groups of :func:`pair_counts`."""
    conc, disc, decided, pairs = (sum(c[i] for c in counts) for i in range(4))
    return {"pairwise_accuracy": (conc + (decided - conc - disc) / 2) / decided if decided else float("nan"),
            "kendall_tau": (conc - disc) / pairs if pairs else float("nan")}


def oracle_hits(searches: list) -> list[bool]:
    """Per probed search ``(tau, BELResult)`` whose trajectory has a fatal step: does t_crit
    equal the oracle's :func:`~elpo_min.toy.fatal_step` (the first wrong value carried forward;
    a retried call that raised is recoverable, not fatal)? Unprobed searches and trajectories
    with no fatal step (only slips, a wrong final copy) have nothing to compare and are skipped."""
    from .toy import Problem, fatal_step

    oracles = [(fatal_step(tau.problem, tau.tool_outputs), r.t_crit) for tau, r in searches
               if r.probes and isinstance(tau.problem, Problem)]  # only the toy has an oracle
    return [t_crit == oracle for oracle, t_crit in oracles if oracle is not None]


def bel_report(engine, trees: list, n: int = 16) -> dict:
    """How well BEL localized and ranked, against Monte-Carlo references (SPEC 7): ``n``
    continuations from each prefix(m) of every probed search give the Monte-Carlo first dead
    step (the toy oracle gives the fatal step), and siblings' A_b is ranked against the
    Monte-Carlo success rate from each sibling's prefix.

    Returns:
        dict with ``searches``, ``agree_mc``, ``agree_oracle`` (over the ``oracle_searches``
        with a fatal step), ``pairwise_accuracy`` / ``kendall_tau`` of sibling A_b pooled over
        branch points, and the Monte-Carlo ``rollouts`` spent.
    """
    from .advantages import build_tree, hierarchical_advantages

    searches = [(tau, r) for tree in trees for tau, r in tree.searches if r.probes]
    prefixes = [tau.prefix(m) for tau, _ in searches for m in range(1, tau.num_steps)]
    sibling_sets = []
    for tree in trees:
        root, _ = build_tree(tree.trajectories, tree.parents)
        hierarchical_advantages(root)
        stack = [root]
        while stack:
            node = stack.pop()
            stack += node.children
            if len(node.children) >= 2:
                sibling_sets.append(node.children)
    step_children = [c for sibs in sibling_sets for c in sibs if c.children]
    prefixes += [c.traj.prefix(c.turn + 1) for c in step_children]
    rates = [sum(t.success for t in g) / n for g in engine.rollout(prefixes, n)] if prefixes else []
    agree_mc, offset = 0, 0
    for tau, result in searches:
        k = tau.num_steps
        agree_mc += result.t_crit == mc_first_dead_step(rates[offset:offset + k - 1])
        offset += k - 1
    hits = oracle_hits(searches)
    child_rate = dict(zip(map(id, step_children), rates[offset:]))
    ranking = ranking_quality([pair_counts([c.a_branch for c in sibs],
                                           [child_rate.get(id(c), c.reward) for c in sibs])
                               for sibs in sibling_sets])
    return {"searches": len(searches), "agree_mc": agree_mc / max(len(searches), 1),
            "agree_oracle": sum(hits) / max(len(hits), 1), "oracle_searches": len(hits),
            "sibling_sets": len(sibling_sets), **ranking, "rollouts": len(prefixes) * n}


def turn_labels(traj) -> list[str]:
    """SPEC 7 step-level labels of every assistant turn of a toy trajectory.

    ``"sound"``: every turn of a success, and in a failure the turns before the fatal one;
    ``"fatal"``: the turn whose tool output is :func:`~elpo_min.toy.fatal_step` (for a
    failure with no wrong value carried forward, its last turn: the answer); ``"after"``.
    """
    from .toy import fatal_step

    if traj.success:
        return ["sound"] * len(traj.turns)
    step = fatal_step(traj.problem, traj.tool_outputs)
    calls = [i for i, turn in enumerate(traj.turns) if turn.code is not None]
    fatal = calls[step - 1] if step else len(traj.turns) - 1
    return ["sound" if i < fatal else "fatal" if i == fatal else "after" for i in range(len(traj.turns))]


def credit_metrics(groups: list[list[dict]]) -> dict:
    """Where an advantage rule puts credit, against the oracle's step labels (SPEC 7).

    ``groups``: per prompt, per trajectory ``{"success", "turns": [(label, advantage, tokens,
    elc_tokens)] per assistant turn}``. Returns ``credit_auc`` = P(adv(sound) > adv(fatal)) over
    pairs within a group (ties half), ``sound_punished`` (share of sound turns of failures with
    adv < 0), ``unequal_failed`` (share of failures whose turns differ), ``elc_fatal`` /
    ``elc_sound`` (share of fatal / sound tokens under ELC's clip); None when nothing to count.
    """
    wins = pairs = punished = sound_failed = unequal = failed = 0
    tokens = {"sound": [0, 0], "fatal": [0, 0]}  # label -> [under ELC, all]
    for group in groups:
        turns = [turn for traj in group for turn in traj["turns"]]
        for _, s, _, _ in (t for t in turns if t[0] == "sound"):
            for _, f, _, _ in (t for t in turns if t[0] == "fatal"):
                wins, pairs = wins + (s > f) + 0.5 * (s == f), pairs + 1
        for traj in group:
            for label, _, n, elc in (t for t in traj["turns"] if t[0] in tokens):
                tokens[label] = [tokens[label][0] + elc, tokens[label][1] + n]
            if not traj["success"]:
                advs = [t[1] for t in traj["turns"]]
                failed, unequal = failed + 1, unequal + (max(advs) - min(advs) > 1e-9)
                sounds = [t[1] for t in traj["turns"] if t[0] == "sound"]
                sound_failed, punished = sound_failed + len(sounds), punished + sum(a < 0 for a in sounds)

    def ratio(a, b):
        return a / b if b else None

    return {"credit_auc": ratio(wins, pairs), "sound_punished": ratio(punished, sound_failed),
            "unequal_failed": ratio(unequal, failed), "elc_fatal": ratio(*tokens["fatal"]),
            "elc_sound": ratio(*tokens["sound"])}
