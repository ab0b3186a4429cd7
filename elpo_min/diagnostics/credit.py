"""Where an advantage rule puts credit, against the toy's step labels.

The toy has an oracle for the fatal step (:func:`elpo_min.toy.fatal_step`), so every assistant
turn can be labelled *sound* (every turn of a success; in a failure, the turns before the fatal
one), *fatal*, or *after*. An advantage rule is then scored by how it treats the labels: the
AUC that a sound turn gets more advantage than a fatal one of the same prompt, the share of
sound turns of failures that are punished, the share of failures whose turns get unequal
advantages, and the share of fatal and sound tokens under ELC's widened clip.
"""

from __future__ import annotations

from ..toy import Problem, fatal_step

# advantage rule -> the node field it reads; "_lambda0" is lambda_tree = 0 on the same tree
RULES = {"": "a_hier", "_lambda0": "a_traj"}


def oracle_hits(searches: list) -> list[bool]:
    """Per probed search ``(tau, BELResult)`` whose trajectory has a fatal step: does t_crit
    equal the oracle's fatal step?

    Unprobed searches, non-toy problems, and trajectories with no fatal step (only slips, or a
    wrong final copy) have nothing to compare and are skipped.
    """
    hits = []
    for tau, result in searches:
        if not result.probes or not isinstance(tau.problem, Problem):
            continue
        oracle = fatal_step(tau.problem, tau.tool_outputs)
        if oracle is not None:
            hits.append(result.t_crit == oracle)
    return hits


def turn_labels(traj) -> list[str]:
    """The step-level label of every assistant turn of a toy trajectory.

    ``"sound"``: every turn of a success, and in a failure the turns before the fatal one;
    ``"fatal"``: the turn whose tool output is the oracle's fatal step (for a failure with no
    wrong value carried forward, its last turn: the answer); ``"after"``: the rest.
    """
    if traj.success:
        return ["sound"] * len(traj.turns)
    step = fatal_step(traj.problem, traj.tool_outputs)
    calls = [i for i, turn in enumerate(traj.turns) if turn.code is not None]
    fatal = calls[step - 1] if step else len(traj.turns) - 1
    return [
        "sound" if i < fatal else "fatal" if i == fatal else "after" for i in range(len(traj.turns))
    ]


def credit_metrics(groups: list[list[dict]]) -> dict:
    """Score an advantage rule against the step labels.

    Args:
        groups: per prompt, per trajectory ``{"success", "turns": [(label, advantage, tokens,
            elc_tokens)] per assistant turn}``.

    Returns:
        ``credit_auc`` = P(adv(sound) > adv(fatal)) over pairs within a group (ties half),
        ``sound_punished`` (share of sound turns of failures with adv < 0), ``unequal_failed``
        (share of failures whose turns differ), ``elc_fatal`` / ``elc_sound`` (share of fatal /
        sound tokens under ELC's clip); None where there is nothing to count.
    """
    wins = pairs = punished = sound_failed = unequal = failed = 0
    # label -> [tokens under ELC, all tokens]
    tokens = {"sound": [0, 0], "fatal": [0, 0]}
    for group in groups:
        turns = [turn for traj in group for turn in traj["turns"]]
        sound = [advantage for label, advantage, _, _ in turns if label == "sound"]
        fatal = [advantage for label, advantage, _, _ in turns if label == "fatal"]
        for s in sound:
            for f in fatal:
                wins += (s > f) + 0.5 * (s == f)
                pairs += 1
        for traj in group:
            for label, _, n, elc in traj["turns"]:
                if label in tokens:
                    tokens[label][0] += elc
                    tokens[label][1] += n
            if not traj["success"]:
                advantages = [turn[1] for turn in traj["turns"]]
                failed += 1
                unequal += max(advantages) - min(advantages) > 1e-9
                sounds = [turn[1] for turn in traj["turns"] if turn[0] == "sound"]
                sound_failed += len(sounds)
                punished += sum(a < 0 for a in sounds)

    def ratio(a, b):
        return a / b if b else None

    return {
        "credit_auc": ratio(wins, pairs),
        "sound_punished": ratio(punished, sound_failed),
        "unequal_failed": ratio(unequal, failed),
        "elc_fatal": ratio(*tokens["fatal"]),
        "elc_sound": ratio(*tokens["sound"]),
    }


def labelled_turns(traj, credited, field: str) -> list[tuple]:
    """``(label, advantage, tokens, tokens under ELC)`` for each turn of a toy trajectory."""
    nodes = credited.path[id(traj)]
    out = []
    for i, (label, turn, node) in enumerate(zip(turn_labels(traj), traj.turns, nodes)):
        tokens = turn.end - turn.start
        covered = tokens if credited.under_elc(traj, i) else 0
        out.append((label, getattr(node, field), tokens, covered))
    return out


def toy_step_metrics(credited: list, cfg) -> dict:
    """The trainer's per-step hook on the toy: BEL's agreement with the oracle and the credit
    metrics of ELPO's rule (for ELPO also of lambda_tree = 0 on the same trees, ``*_lambda0``).

    Args:
        credited: the step's :class:`~elpo_min.train.CreditedTree` list.
        cfg: the config; GRPO's own rule already is lambda_tree = 0.
    """
    hits = []
    groups = {rule: [] for rule in RULES}
    for tree in credited:
        hits += oracle_hits(tree.tree.searches)
        for rule, field in RULES.items():
            group = []
            for traj in tree.tree.trajectories:
                if isinstance(traj.problem, Problem):
                    turns = labelled_turns(traj, tree, field)
                    group.append({"success": traj.success, "turns": turns})
            groups[rule].append(group)
    info = {"t_crit_oracle_agree": sum(hits) / len(hits) if hits else None}
    rules = list(RULES) if cfg.algo == "elpo" else [""]
    for rule in rules:
        for key, value in credit_metrics(groups[rule]).items():
            # ELC's reach does not depend on the rule: report it once
            if not (rule and key.startswith("elc")):
                info[key + rule] = value
    return info
