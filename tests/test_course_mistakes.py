"""Every usual mistake is caught, and named: one mutant per mistake.

A mutant is a solution notebook with one plausible mistake written into it (the text of the
solution replaced by the text a student might write). Its part's check must fail, and print
that mistake's hint and no other: a hint that fired for an answer it does not describe would
send the student after the wrong bug. The mutants are written independently of the checks'
own wrong versions (``elpo_min.course.*_checks``), so a check that predicts a mistake wrongly
fails here.
"""

import re

import pytest
from course_helpers import exercise, run_part

from elpo_min.course import bug_hunts as bugs
from elpo_min.course import capstone as e5
from elpo_min.course import credit_checks as e3
from elpo_min.course import derivation as e8
from elpo_min.course import entropy_checks as e1
from elpo_min.course import experiment as e9
from elpo_min.course import loss_checks as e4
from elpo_min.course import search_checks as e2

# (exercise, check cell, the solution's text, the mistake's text, the hint that must name it)
E1 = [
    (
        "e1_token_entropy_check",
        "logits / temperature, dim",
        "logits, dim",
        e1.UNTEMPERED,
    ),
    (
        "e1_token_entropy_check",
        "logits / temperature, dim",
        "logits * temperature, dim",
        e1.TIMES_T,
    ),
    ("e1_token_entropy_check", "return -(log_probs.exp()", "return (log_probs.exp()", e1.NEGATIVE),
    (
        "e1_token_entropy_check",
        "return -(log_probs.exp() * log_probs).sum(-1)",
        "return -(log_probs.exp() * log_probs / math.log(2)).sum(-1)",
        e1.BITS,
    ),
    (
        "e1_token_entropy_check",
        "return -(log_probs.exp() * log_probs).sum(-1)",
        "return -(log_probs.exp() * log_probs).mean(-1)",
        e1.MEAN_OVER_V,
    ),
    ("e1_token_entropy_check", "temperature, dim=-1)", "temperature, dim=0)", e1.WRONG_DIM),
    (
        "e1_token_entropy_check",
        "return -(log_probs.exp() * log_probs).sum(-1)",
        "return -(log_probs.exp() * log_probs).sum()",
        e1.ONE_NUMBER,
    ),
    (
        "e1_token_entropy_check",
        "log_probs = torch.log_softmax(logits / temperature, dim=-1)",
        "log_probs = torch.log(torch.softmax(logits / temperature, dim=-1))",
        e1.LOG_OF_SOFTMAX,
    ),
    ("e1_step_entropies_check", "head = values[:window]", "head = values", e1.WINDOW),
    (
        "e1_step_entropies_check",
        "for turn in turn_entropies[1:]]",
        "for turn in turn_entropies]",
        e1.ROOT_IN_STEPS,
    ),
    (
        "e1_step_entropies_check",
        "for turn in turn_entropies[1:]]",
        "for turn in turn_entropies[1:-1]]",
        e1.DROP_ANSWER,
    ),
    (
        "e1_step_entropies_check",
        "gap = sum(h_steps) / len(h_steps) - h_root",
        "pooled = [v for turn in turn_entropies[1:] for v in turn[:window]]\n"
        "    gap = sum(pooled) / len(pooled) - h_root",
        e1.POOLED,
    ),
    (
        "e1_step_entropies_check",
        "gap = sum(h_steps) / len(h_steps) - h_root",
        "gap = h_root - sum(h_steps) / len(h_steps)",
        e1.GAP_REVERSED,
    ),
    (
        "e1_step_entropies_check",
        "gap = sum(h_steps) / len(h_steps) - h_root",
        "gap = sum(h_steps) - h_root",
        e1.GAP_SUM,
    ),
    ("e1_select_failure_check", "key=lambda i: gaps[i])", "key=lambda i: -gaps[i])", e1.ARGMIN),
    (
        "e1_select_failure_check",
        "return max(range(len(gaps)), key=lambda i: gaps[i])",
        "best = 0\n    for i, gap in enumerate(gaps):\n        if gap >= gaps[best]:\n"
        "            best = i\n    return best",
        e1.LAST_TIE,
    ),
    (
        "e1_select_failure_check",
        "key=lambda i: gaps[i])",
        "key=lambda i: abs(gaps[i]))",
        e1.ABSOLUTE,
    ),
    (
        "e1_select_failure_check",
        "return max(range(len(gaps)), key=lambda i: gaps[i])",
        "return 1 + max(range(len(gaps)), key=lambda i: gaps[i])",
        e1.ONE_BASED,
    ),
    (
        "e1_select_failure_check",
        "return max(range(len(gaps)), key=lambda i: gaps[i])",
        "return max(gaps)",
        e1.GAP_NOT_INDEX,
    ),
    (
        "e1_suffix_count_check",
        "return math.floor(x_min + (x_max - x_min) * sigmoid + 0.5)",
        "return round(x_min + (x_max - x_min) * sigmoid)",
        e1.HALF_EVEN,
    ),
    (
        "e1_suffix_count_check",
        "return math.floor(x_min + (x_max - x_min) * sigmoid + 0.5)",
        "return int(x_min + (x_max - x_min) * sigmoid)",
        e1.TRUNCATED,
    ),
    (
        "e1_suffix_count_check",
        "return math.floor(x_min + (x_max - x_min) * sigmoid + 0.5)",
        "return math.ceil(x_min + (x_max - x_min) * sigmoid)",
        e1.CEILING,
    ),
    (
        "e1_suffix_count_check",
        "return math.floor(x_min + (x_max - x_min) * sigmoid + 0.5)",
        "return x_min + (x_max - x_min) * sigmoid",
        e1.UNROUNDED,
    ),
    (
        "e1_suffix_count_check",
        "z = beta * (h_step - h_root)",
        "z = beta * (h_root - h_step)",
        e1.GAP_SIGN,
    ),
    ("e1_suffix_count_check", "z = beta * (h_step - h_root)", "z = h_step - h_root", e1.NO_BETA),
    (
        "e1_suffix_count_check",
        "x_min + (x_max - x_min) * sigmoid + 0.5",
        "x_min + x_max * sigmoid + 0.5",
        e1.RANGE,
    ),
    (
        "e1_suffix_count_check",
        "sigmoid = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))",
        "sigmoid = 1.0 / (1.0 + math.exp(-z))",
        e1.OVERFLOW,
    ),
]

E2 = [
    (
        "e2_binary_search_check",
        "m = (left + right) // 2",
        "m = (left + right + 1) // 2",
        e2.MIDPOINT_UP,
    ),
    ("e2_binary_search_check", "if any(outcomes):", "if all(outcomes):", e2.ALL_NOT_ANY),
    (
        "e2_binary_search_check",
        "            left = m + 1\n        else:\n            right = m",
        "            right = m\n        else:\n            left = m + 1",
        e2.BRANCHES_SWAPPED,
    ),
    (
        "e2_binary_search_check",
        "            left = m + 1\n",
        "            left = m\n",
        e2.LEFT_NOT_PAST_M,
    ),
    (
        "e2_binary_search_check",
        "            right = m\n",
        "            right = m - 1\n",
        e2.RIGHT_BEFORE_M,
    ),
    ("e2_binary_search_check", "return left, probes", "return right, probes", e2.RETURNS_RIGHT),
    (
        "e2_binary_search_check",
        "left, right = 1, num_steps",
        "left, right = 0, num_steps - 1",
        e2.ZERO_BASED,
    ),
    ("e2_binary_search_check", "and spent < budget:", "and spent <= budget:", e2.PROBE_ZERO),
    ("e2_binary_search_check", "n = min(wanted, budget - spent)", "n = wanted", e2.OVER_BUDGET),
    (
        "e2_binary_search_check",
        "while left < right and spent < budget:",
        "while spent < budget:\n        if left >= right and probes:\n            break",
        e2.K_PROBED,
    ),
    (
        "e2_binary_search_check",
        "    left, right = 1, num_steps\n",
        "    if num_steps <= 1:\n        return num_steps, []\n    left, right = 1, num_steps\n",
        e2.K_ZERO,
    ),
    (
        "e2_binary_search_check",
        "wanted = n_suffix(m) if callable(n_suffix) else n_suffix",
        "wanted = n_suffix",
        e2.CALLABLE,
    ),
    ("e2_binary_search_check", "return left, probes", "return left", e2.FORM),
]

E3 = [
    (
        "e3_node_values_check",
        "node.value = statistics.mean(node_values(child) for child in node.children)",
        "[node_values(child) for child in node.children]\n"
        "        node.value = statistics.mean(float(leaf.reward) for leaf in node.leaves())",
        e3.ALL_LEAVES,
    ),
    (
        "e3_node_values_check",
        "    if not node.children:\n        node.value = float(node.reward)\n",
        "    if not node.children:\n        return float(node.reward)\n",
        e3.LEAF_VALUE,
    ),
    (
        "e3_node_values_check",
        "node.value = statistics.mean(node_values(child) for child in node.children)",
        "node.value = max(node_values(child) for child in node.children)",
        e3.MAX_CHILD,
    ),
    (
        "e3_node_values_check",
        "node.value = statistics.mean(node_values(child) for child in node.children)",
        "node.value = sum(node_values(child) for child in node.children)",
        e3.SUM_CHILDREN,
    ),
    (
        "e3_branch_advantages_check",
        "statistics.pstdev(values)",
        "statistics.stdev(values)",
        e3.SAMPLE_STD,
    ),
    (
        "e3_branch_advantages_check",
        "child.a_branch = node.a_branch",
        "child.a_branch = 0.0",
        e3.SINGLE_CHILD,
    ),
    (
        "e3_branch_advantages_check",
        "    for child in node.children:\n        branch_advantages(child)\n",
        "",
        e3.NOT_RECURSIVE,
    ),
    (
        "e3_branch_advantages_check",
        "    if len(node.children) >= 2:\n"
        "        scores = zscores([child.value for child in node.children])\n"
        "        for child, score in zip(node.children, scores):\n"
        "            child.a_branch = score\n    else:\n        for child in node.children:\n"
        "            child.a_branch = node.a_branch\n    for child in node.children:\n"
        "        branch_advantages(child)",
        "    level = node.children\n    while level:\n"
        "        for child, score in zip(level, zscores([n.value for n in level])):\n"
        "            child.a_branch = score\n"
        "        level = [c for n in level for c in n.children]",
        e3.COUSINS,
    ),
    (
        "e3_branch_advantages_check",
        "            child.a_branch = score\n",
        "            child.a_branch = -score\n",
        e3.NEGATED,
    ),
    (
        "e3_trajectory_advantages_check",
        "for leaf, score in zip(leaves, zscores([float(leaf.reward) for leaf in leaves])):\n"
        "        leaf.a_traj = score",
        "def below(node):\n        return [node] + [n for c in node.children for n in below(c)]\n"
        "\n    everything = [n.value for n in below(root)[1:]]\n"
        "    mean, std = statistics.mean(everything), statistics.pstdev(everything)\n"
        "    for leaf in leaves:\n        leaf.a_traj = (leaf.value - mean) / (std + 1e-6)",
        e3.ALL_NODES,
    ),
    (
        "e3_trajectory_advantages_check",
        "statistics.pstdev(values)",
        "statistics.stdev(values)",
        e3.SAMPLE_STD,
    ),
    (
        "e3_trajectory_advantages_check",
        "node.a_traj = statistics.mean(leaf.a_traj for leaf in node.leaves())",
        "node.a_traj = statistics.mean(child.a_traj for child in node.children)",
        e3.CHILDREN_MEAN,
    ),
    ("e3_trajectory_advantages_check", "    fill(root)\n", "", e3.INTERNAL_ZERO),
    (
        "e3_hierarchical_advantages_check",
        "node.a_hier = lambda_tree * node.a_branch + (1 - lambda_tree) * node.a_traj",
        "node.a_hier = (1 - lambda_tree) * node.a_branch + lambda_tree * node.a_traj",
        e3.LAMBDA_SWAPPED,
    ),
    (
        "e3_hierarchical_advantages_check",
        "node.a_hier = lambda_tree * node.a_branch + (1 - lambda_tree) * node.a_traj",
        "node.a_hier = 0.5 * node.a_branch + 0.5 * node.a_traj",
        e3.LAMBDA_IGNORED,
    ),
    (
        "e3_hierarchical_advantages_check",
        "node.a_hier = lambda_tree * node.a_branch + (1 - lambda_tree) * node.a_traj",
        "node.a_hier = node.a_branch + node.a_traj",
        e3.UNWEIGHTED,
    ),
    (
        "e3_hierarchical_advantages_check",
        "        stack.extend(node.children)\n",
        "        stack.extend(node.children)\n        if node.children:\n"
        "            node.a_hier = 0.0\n",
        e3.LEAVES_ONLY,
    ),
]

E4 = [
    ("e4_elc_mask_check", "turns[t_crit - 1 :]", "turns[t_crit - 2 :]", e4.BEFORE_T_CRIT),
    ("e4_elc_mask_check", "turns[t_crit - 1 :]", "turns[t_crit:]", e4.AFTER_T_CRIT),
    ("e4_elc_mask_check", "turns[t_crit - 1 :]", "turns[t_crit - 1 : t_crit]", e4.ONLY_T_CRIT),
    (
        "e4_elc_mask_check",
        "for start, end, _ in turns",
        "for start, _, end in turns",
        e4.TOOL_TOKENS,
    ),
    (
        "e4_elc_mask_check",
        "    for start, end, _ in turns[t_crit - 1 :]:\n"
        "        mask[start:end] = [1.0] * (end - start)",
        "    first = turns[t_crit - 1][0]\n    mask[first:] = [1.0] * (length - first)",
        e4.TO_THE_END,
    ),
    (
        "e4_elc_mask_check",
        "mask[start:end] = [1.0] * (end - start)",
        "mask[start : end + 1] = [1.0] * (end + 1 - start)",
        e4.END_INCLUSIVE,
    ),
    (
        "e4_lower_bound_check",
        "return eps_low + eps_elc * elc",
        "return eps_low - eps_elc * elc",
        e4.WIDTH_SUBTRACTED,
    ),
    (
        "e4_lower_bound_check",
        "return eps_low + eps_elc * elc",
        "return 1 - eps_low - eps_elc * elc",
        e4.BOUND_NOT_WIDTH,
    ),
    (
        "e4_lower_bound_check",
        "return eps_low + eps_elc * elc",
        "return eps_low + eps_elc + 0 * elc",
        e4.ELC_EVERYWHERE,
    ),
    (
        "e4_lower_bound_check",
        "return eps_low + eps_elc * elc",
        "return eps_low + eps_elc * (1 - elc)",
        e4.MASK_INVERTED,
    ),
    (
        "e4_policy_loss_check",
        "torch.full_like(ratio, 1 + eps_high))",
        "1 + eps_high + eps_elc * elc)",
        e4.UPPER,
    ),
    ("e4_policy_loss_check", 'if aggregation == "token-mean":', "if True:", e4.TOKEN_MEAN),
    ("e4_policy_loss_check", 'if aggregation == "token-mean":', "if False:", e4.SEQ_MEAN),
    (
        "e4_policy_loss_check",
        "sequences = (tokens > 0).sum().clamp(min=1)",
        "sequences = len(tokens)",
        e4.EMPTY_ROWS,
    ),
    (
        "e4_policy_loss_check",
        "objective = torch.minimum(ratio * advantages",
        "objective = torch.maximum(ratio * advantages",
        e4.MAX_NOT_MIN,
    ),
    (
        "e4_policy_loss_check",
        "lower = 1.0 - lower_bound(elc, eps_low, eps_elc)",
        "lower = 1.0 - lower_bound(elc * (advantages > 0), eps_low, eps_elc)",
        e4.ELC_POSITIVE_ONLY,
    ),
    (
        "e4_policy_loss_check",
        (
            "return -(objective * mask).sum() / tokens.sum()",
            "return -per_sequence.sum() / sequences",
        ),
        ("return (objective * mask).sum() / tokens.sum()", "return per_sequence.sum() / sequences"),
        e4.NOT_NEGATED,
    ),
    (
        "e4_policy_loss_check",
        "    ratio = torch.exp(logp - old_logp)  # [B, T]\n",
        "    ratio = torch.exp(logp - old_logp)  # [B, T]\n    advantages = advantages[:, :1]\n",
        e4.PER_SEQUENCE,
    ),
    (
        "e4_policy_loss_check",
        "per_sequence = (objective * mask).sum(-1) / tokens.clamp(min=1.0)",
        "per_sequence = (objective * mask).sum(-1) / mask.shape[-1]",
        e4.DIVIDES_BY_T,
    ),
    (
        "e4_policy_loss_check",
        "return -(objective * mask).sum() / tokens.sum().clamp(min=1.0)",
        "return -(objective * mask).mean()",
        e4.ALL_POSITIONS,
    ),
    (
        "e4_policy_loss_check",
        "ratio = torch.exp(logp - old_logp)",
        "ratio = logp - old_logp",
        e4.LOG_RATIO,
    ),
    (
        "e4_policy_loss_check",
        "ratio = torch.exp(logp - old_logp)",
        "ratio = torch.exp(old_logp - logp)",
        e4.RATIO_INVERTED,
    ),
    (
        "e4_policy_loss_check",
        "lower = 1.0 - lower_bound(elc, eps_low, eps_elc)",
        "lower = lower_bound(elc, eps_low, eps_elc)",
        e4.WIDTH_AS_BOUND,
    ),
    (
        "e4_policy_loss_check",
        "return -per_sequence.sum() / sequences",
        "return -(per_sequence.sum() / sequences).item()",
        e4.DETACHED,
    ),
]

# the capstone's labels: a swap breaks three rules at once, and the check names all three
E5 = [
    (
        "    sound = tau[:2] + rescue + late[:1]\n    fatal = [tau[2], early[0], late[1]]",
        "    fatal = tau[:2] + rescue + late[:1]\n    sound = [tau[2], early[0], late[1]]",
        [e5.SUCCESS_BELOW_FATAL, e5.LABEL_AFTER_FATAL, e5.FAILED_LEAF_SOUND],
    ),
    (
        "    sound = tau[:2] + rescue + late[:1]\n    fatal = [tau[2], early[0], late[1]]",
        "    sound = tau[:1] + late[:1]\n    fatal = [tau[1], early[0], late[1]]",
        [e5.SUCCESS_BELOW_FATAL],
    ),
    ("fatal = [tau[2], retry[0]]", "fatal = [tau[2], retry[0], retry[1]]", [e5.LABEL_AFTER_FATAL]),
    (
        "    sound = tau[:2] + success\n    fatal = [tau[2], retry[0]]",
        "    sound = tau[:2] + success + retry[1:]\n    fatal = [tau[2]]",
        [e5.FAILED_LEAF_SOUND],
    ),
    ("sound = tau[:2] + success\n", "sound = tau[:2] + success + [Node()]\n", [e5.NOT_IN_TREE]),
    ("sound = tau[:2] + success\n", "sound = tau[:2] + success + [retry[0]]\n", [e5.BOTH_LABELS]),
    ("fatal = [tau[2], retry[0]]", "fatal = []", [e5.NO_PAIRS]),
]


# the find-the-bug exercises: a bug put back into the fixed function, or a test taken out of
# the student's tests (the check then names the bug those tests miss)
E6 = [
    ("e6_localize_check", "h_steps[m - 1] - h_root", "h_steps[m] - h_root", bugs.STEP_SHIFT),
    (
        "e6_localize_check",
        "        if any(outcomes):",
        "        if sum(outcomes) > n / 2:",
        bugs.MAJORITY,
    ),
    ("e6_localize_check", "return left, probes", "return right, probes", bugs.WRONG_END),
    (
        "e6_tests_check",
        'assert calls[0] == (3, 3), f"anchor 3 should get X_3 = 3 continuations, got {calls[0]}"',
        "pass",
        f"none of your tests fails on bug 1: {bugs.STEP_SHIFT}",
    ),
    (
        "e6_tests_check",
        'assert t_crit == 4, f"one success at anchor 3 proves it recoverable: t_crit 4, got '
        '{t_crit}"',
        "pass",
        f"none of your tests fails on bug 2: {bugs.MAJORITY}",
    ),
    (
        "e6_tests_check",
        'assert t_crit == 1, f"a search cut short returns L = 1, got {t_crit}"',
        "pass",
        f"none of your tests fails on bug 3: {bugs.WRONG_END}",
    ),
    (
        "e6_tests_check",
        'assert t_crit == 4, f"one success',
        'assert t_crit == 5, f"one success',
        bugs.TESTS_FAIL_RIGHT,
    ),
]

E7 = [
    (
        "e7_batch_rows_check",
        'enumerate(zip(traj["turns"], paths[i]))',
        'enumerate(zip(traj["turns"], paths[i][parents.get(i, (None, 0))[1] :]))',
        bugs.SHARED_TURNS,
    ),
    (
        "e7_batch_rows_check",
        "hierarchical_advantages(root, lambda_tree)",
        "hierarchical_advantages(root)",
        bugs.LAMBDA_DROPPED,
    ),
    ("e7_batch_rows_check", "k >= searches[i] - 1:", "k >= searches[i]:", bugs.ELC_LATE),
    (
        "e7_tests_check",
        'assert elc[0, 2:5].sum() == 3 and elc[0, 7:9].sum() == 2, "t_crit = 1 covers both turns"',
        "pass",
        f"none of your tests fails on bug 3: {bugs.ELC_LATE}",
    ),
    (
        "e7_tests_check",
        'assert not torch.allclose(at_0[0, 2:5], at_1[0, 2:5]), "lambda_tree must matter"',
        "pass",
        f"none of your tests fails on bug 2: {bugs.LAMBDA_DROPPED}",
    ),
    (
        "e7_tests_check",
        'assert torch.equal(at_0[1, 2:5], at_0[0, 2:5]), "a shared turn has its parent\'s A_hier"\n'
        "    # and its own turns, a success's, are credited positively to the end\n"
        '    assert at_0[1, 7:10].min() > 0 and at_0[1, 12:14].min() > 0, "its own turns"',
        "pass",
        f"none of your tests fails on bug 1: {bugs.SHARED_TURNS}",
    ),
]

E8 = [
    (
        "e8_rescaled_check",
        "factor = math.copysign(1.0, a) * (std + eps)",
        "factor = (std + eps)",
        e8.SIGN_LOST,
    ),
    (
        "e8_rescaled_check",
        "factor = math.copysign(1.0, a) * (std + eps) / (std + eps / abs(a))",
        "factor = math.copysign(1.0, a)",
        e8.NO_EPS,
    ),
    (
        "e8_rescaled_check",
        "factor = math.copysign(1.0, a) * (std + eps) / (std + eps / abs(a))",
        "factor = a",
        e8.SCALES_WITH_A,
    ),
    (
        "e8_rescaled_check",
        "return [factor * value for value in z]",
        "return [value + b / (std + eps) for value in z]",
        e8.SHIFTS_WITH_B,
    ),
    ("e8_pair_check", "z = delta / (delta + 2 * eps)", "z = delta / delta", e8.PAIR_NO_EPS),
    (
        "e8_pair_check",
        "z = delta / (delta + 2 * eps)",
        "z = (delta / 2) / (delta / math.sqrt(2) + eps)",
        e8.PAIR_SAMPLE_STD,
    ),
    (
        "e8_pair_check",
        "z = delta / (delta + 2 * eps)",
        "z = delta / (delta + eps)",
        e8.PAIR_WHOLE_DELTA,
    ),
    (
        "e8_pair_check",
        "z = delta / (delta + 2 * eps)",
        "z = delta / (delta + 2 * eps) if delta else math.nan",
        e8.PAIR_NAN,
    ),
    ("e8_half_check", "return 2 * eps", "return eps", e8.HALF_AT_EPS),
    ("e8_half_check", "return 2 * eps", "return eps / 2", e8.HALF_AT_HALF_EPS),
]

# E9's measurement: pairs across prompts takes three edits
E9 = [
    (
        "e9_credit_auc_check",
        (
            "    wins = pairs = 0.0\n    for tree in trees:\n",
            "        sound, fatal = [], []\n",
            "        for s in sound:\n            for f in fatal:\n"
            "                wins += 1.0 if s > f else 0.5 if s == f else 0.0\n"
            "                pairs += 1\n",
        ),
        (
            "    wins = pairs = 0.0\n    sound, fatal = [], []\n    for tree in trees:\n",
            "",
            "    for s in sound:\n        for f in fatal:\n"
            "            wins += 1.0 if s > f else 0.5 if s == f else 0.0\n"
            "            pairs += 1\n",
        ),
        e9.ACROSS_PROMPTS,
    ),
    (
        "e9_credit_auc_check",
        "wins += 1.0 if s > f else 0.5 if s == f else 0.0",
        "wins += 1.0 if s > f else 0.0",
        e9.TIES_LOSE,
    ),
    (
        "e9_credit_auc_check",
        "                wins += 1.0 if s > f else 0.5 if s == f else 0.0",
        "                if s == f:\n                    continue\n"
        "                wins += 1.0 if s > f else 0.0",
        e9.TIES_DROPPED,
    ),
    (
        "e9_credit_auc_check",
        (
            "    wins = pairs = 0.0\n    for tree in trees:\n",
            "                pairs += 1\n    return wins / pairs",
        ),
        (
            "    aucs = []\n    for tree in trees:\n        wins = pairs = 0.0\n",
            "                pairs += 1\n        aucs.append(wins / pairs)\n"
            "    return sum(aucs) / len(aucs)",
        ),
        e9.PROMPT_MEAN,
    ),
    (
        "e9_credit_auc_check",
        'if label == "sound":',
        'if label in ("sound", "after"):',
        e9.AFTER_AS_SOUND,
    ),
    (
        "e9_credit_auc_check",
        "hierarchical_advantages(root, lambda_tree)\n        sound",
        "hierarchical_advantages(root)\n        sound",
        e9.LAMBDA_IGNORED,
    ),
    (
        "e9_credit_auc_check",
        'sound.append(node.a_hier)\n                elif label == "fatal":\n'
        "                    fatal.append(node.a_hier)",
        'sound.append(node.a_branch)\n                elif label == "fatal":\n'
        "                    fatal.append(node.a_branch)",
        e9.FIELD,
    ),
    (
        "e9_run_check",
        "        trees = trees_for(seed, prompts)",
        "        trees = trees_for(0, prompts)",
        e9.RECIPE,
    ),
    (
        "e9_run_check",
        'summary["0.5 - 0"] = mean_ci([a - b for a, b in zip(results[0.5], results[0.0])])',
        'summary["0.5 - 0"] = (summary[0.5][0] - summary[0.0][0], '
        "(summary[0.5][1] ** 2 + summary[0.0][1] ** 2) ** 0.5)",
        e9.UNPAIRED,
    ),
]

# (exercise, check cell, right, wrong, the hints that must be printed, in order)
MUTANTS = [(ex, c, r, w, [h]) for ex, table in (("E1", E1), ("E2", E2)) for c, r, w, h in table]
MUTANTS += [(ex, c, r, w, [h]) for ex, table in (("E3", E3), ("E4", E4)) for c, r, w, h in table]
MUTANTS += [("E5", "e5_lambda_trees_check", r, w, hints) for r, w, hints in E5]
MUTANTS += [(ex, c, r, w, [h]) for ex, table in (("E6", E6), ("E7", E7)) for c, r, w, h in table]
MUTANTS += [(ex, c, r, w, [h]) for ex, table in (("E8", E8), ("E9", E9)) for c, r, w, h in table]


def hints_in(printed: str) -> list[str]:
    return re.findall(r"^    hint: (.*)$", printed, flags=re.M)


def test_there_are_sixty_mistakes_or_more_each_named_once_per_check():
    assert len(MUTANTS) >= 60
    named = [(check, hints[0]) for _, check, _, _, hints in MUTANTS if len(hints) == 1]
    # the same words may name a mistake in two functions (the sample std of E3's A_b and A_t)
    assert len(set(named)) == len(named)


@pytest.mark.parametrize(
    "exercise_id, check, right, wrong, hints",
    MUTANTS,
    ids=[f"{m[0]}-{m[4][0][:40]}" for m in MUTANTS],
)
def test_each_usual_mistake_fails_its_check_with_its_own_hint(
    exercise_id, check, right, wrong, hints
):
    # a mistake that takes more than one edit gives its texts as parallel tuples
    edits = list(zip(right, wrong)) if isinstance(right, tuple) else [(right, wrong)]
    printed = run_part(exercise(exercise_id), check, edits)
    assert "✗" in printed, printed
    assert hints_in(printed) == hints, printed


# answers that are wrong in no usual way: their check must fail without naming a mistake
UNRELATED = [
    (
        "E1",
        "e1_token_entropy_check",
        "return -(log_probs.exp() * log_probs).sum(-1)",
        "return torch.zeros(logits.shape[0])",
    ),
    ("E2", "e2_binary_search_check", "return left, probes", "return 2, probes"),
    ("E3", "e3_node_values_check", "node.value = float(node.reward)", "node.value = 0.5"),
    (
        "E4",
        "e4_policy_loss_check",
        "return -per_sequence.sum() / sequences",
        "return -per_sequence.sum() / sequences + 0.1",
    ),
    ("E8", "e8_half_check", "return 2 * eps", "return 3 * eps"),
    (
        "E9",
        "e9_run_check",
        "summary = {lambda_tree: mean_ci(values) for",
        "summary = {lambda_tree: (min(values), max(values)) for",
    ),
]


@pytest.mark.parametrize("exercise_id, check, right, wrong", UNRELATED, ids=lambda v: str(v)[:20])
def test_an_answer_wrong_in_no_usual_way_fails_without_a_hint(exercise_id, check, right, wrong):
    printed = run_part(exercise(exercise_id), check, [(right, wrong)])
    assert "✗" in printed, printed
    assert hints_in(printed) == [], printed


def test_the_training_step_blames_the_function_that_crashed_not_the_one_before_it(capsys):
    """E5's worked step: an ELC mask function that raises shows its own error, after the
    student's A_hier passed, and no hint sends the student to a function that did not fail."""
    from elpo_min.advantages import hierarchical_advantages

    def broken_mask(spans, t_crit, length):
        raise RuntimeError("my mask crashed")

    assert not e5.check_training_step(hierarchical_advantages, broken_mask, e5.reference_loss)
    printed = capsys.readouterr().out
    assert "✓ advantages from your A_hier" in printed, printed
    assert "raised RuntimeError: my mask crashed" in printed, printed
    assert hints_in(printed) == [], printed
