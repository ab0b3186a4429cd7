"""The capstone's checks: the student's functions inside one ELPO step, and the λ_tree question.

:func:`check_training_step` runs BEL on the worked example of notebooks 01-04 (problem
``test2-2``, seed 4), then builds the step's advantages with the student's ``A_hier``, the ELC
mask with the student's mask function, and the loss with the student's loss, compares each
with what the trainer computes, and takes the optimizer step. :func:`check_lambda_trees` scores
two trees the student built for the design question.
"""

from __future__ import annotations

import torch

from ..advantages import Node, build_tree, hierarchical_advantages
from ..bel import build_trees
from ..config import Config
from ..fast_decoder import FastDecoder
from ..logprobs import token_logprobs
from ..loss import clip_bounds, clipped_policy_loss
from ..models import load_policy
from ..rollout import RolloutEngine
from ..tasks import data_dir, load_problems
from ..tools import run_arith
from ..train import BEL_ARGS, training_batch
from ..trajectory import pad_rows
from .checker import Case, run_check, symptom
from .credit_checks import preorder

PROBLEM_ID, SEED = "test2-2", 4

# where to look when the worked batch differs: the exercise checks name the mistakes
OTHER_ADVANTAGES = "your A_hier differs from the trainer's: E3's checks name the usual mistakes"
OTHER_MASK = "your ELC mask differs from the trainer's: E4's check_elc_mask names the mistakes"
OTHER_LOSS = "your loss differs from the trainer's: E4's check_policy_loss names the mistakes"


def worked_example(cfg: Config):
    """The tiny policy, its tokenizer, and BEL's tree for the worked example."""
    model, tokenizer = load_policy()
    model.eval()
    # the fast decoder draws the plain one's samples (tests/test_fast_decoder.py), sooner
    engine = RolloutEngine(model, tokenizer, tool=run_arith, decoder=FastDecoder)
    problems = load_problems(data_dir() / "toy_test.jsonl")
    problem = next(p for p in problems if p.id == PROBLEM_ID)
    torch.manual_seed(SEED)
    tree = build_trees(engine, [problem], **{name: getattr(cfg, name) for name in BEL_ARGS})[0]
    return model, tokenizer, tree


def student_advantages(tree, batch: dict, cfg: Config, hierarchical_fn) -> torch.Tensor:
    """The step's per-token advantages [B, T], built with the student's A_hier."""
    root, path = build_tree(tree.trajectories, tree.parents)
    hierarchical_fn(root, cfg.lambda_tree)
    rows = []
    for traj in tree.trajectories:
        per_token = [0.0] * len(traj.token_ids)
        for turn, node in zip(traj.turns, path[id(traj)]):
            per_token[turn.start : turn.end] = [node.a_hier] * (turn.end - turn.start)
        rows.append(per_token)
    return pad_rows(rows, 0.0, torch.float) * batch["action_mask"]


def student_elc(tree, elc_mask_fn) -> torch.Tensor:
    """The step's ELC mask [B, T], built with the student's mask function (probed rows only)."""
    t_crits = {id(tau): result.t_crit for tau, result in tree.searches}
    rows = []
    for traj in tree.trajectories:
        if id(traj) in t_crits:
            spans = [(turn.start, turn.end, turn.out_end) for turn in traj.turns]
            rows.append(list(elc_mask_fn(spans, t_crits[id(traj)], len(traj.token_ids))))
        else:
            rows.append([0.0] * len(traj.token_ids))
    return pad_rows(rows, 0.0, torch.float)


def check_training_step(hierarchical_fn, elc_mask_fn, policy_loss_fn) -> bool:
    """One ELPO step on the worked example with the student's A_hier, ELC mask and loss.

    Args:
        hierarchical_fn: ``fn(root, lambda_tree)`` of exercise E3.
        elc_mask_fn: ``fn(turns, t_crit, length)`` of exercise E4.
        policy_loss_fn: ``fn(logp, old_logp, advantages, mask, elc_mask, eps_low, eps_high,
            eps_elc, aggregation)`` of exercise E4.
    """
    if not implemented(hierarchical_fn, elc_mask_fn, policy_loss_fn):
        print("one ELPO step with your functions\n  not implemented yet")
        return False
    cfg = Config()
    model, tokenizer, tree = worked_example(cfg)
    batch, _ = training_batch([tree], cfg, tokenizer.pad_token_id)
    mine = {}

    def advantages():
        mine["advantages"] = student_advantages(tree, batch, cfg, hierarchical_fn)
        return mine["advantages"]

    def elc_mask():
        mine["elc_mask"] = student_elc(tree, elc_mask_fn)
        return mine["elc_mask"]

    # each hint is for a function that ran and gave another answer (a crash shows its error)
    def answered(got) -> bool:
        return not isinstance(got, BaseException)

    def loss_of(advantages, elc_mask, fn):
        logp = token_logprobs(  # [B, T]
            model, batch["input_ids"], batch["attention_mask"], target_mask=batch["action_mask"]
        )
        args = (logp, batch["old_logp"], advantages, batch["action_mask"], elc_mask)
        return fn(*args, cfg.eps_low, cfg.eps_high, cfg.eps_elc, cfg.aggregation)

    with torch.no_grad():
        expected_loss = loss_of(batch["advantages"], batch["elc_mask"], reference_loss)
    shape = f"the worked example's batch, [B, T] = {list(batch['input_ids'].shape)}"
    cases = [
        Case(
            "advantages from your A_hier",
            advantages,
            batch["advantages"],
            shape,
            [symptom(OTHER_ADVANTAGES, answered)],
        ),
        Case(
            "ELC mask from your mask function",
            elc_mask,
            batch["elc_mask"],
            shape,
            [symptom(OTHER_MASK, answered)],
        ),
        Case(
            "loss from your loss function",
            lambda: loss_from_student(loss_of, mine, policy_loss_fn),
            expected_loss,
            shape,
            [symptom(OTHER_LOSS, answered)],
        ),
    ]
    if not run_check("one ELPO step with your functions", cases):
        return False
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    model.train()
    loss = loss_of(mine["advantages"], mine["elc_mask"], policy_loss_fn)
    loss.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        after = loss_of(mine["advantages"], mine["elc_mask"], policy_loss_fn)
    # four decimals: the loss after an optimizer step can differ in the sixth between CPUs
    print(f"  the step: loss {loss.item():+.4f} before the update, {after.item():+.4f} after")
    return True


def implemented(hierarchical_fn, elc_mask_fn, policy_loss_fn) -> bool:
    """Do the three functions run at all? Tried on a tiny input before the model loads, so a
    stub costs nothing; any other error is left for the real check to show."""
    tiny = torch.zeros(1, 1)
    calls = (
        lambda: hierarchical_fn(Node(children=[Node(reward=1.0)]), 0.5),
        lambda: elc_mask_fn([(0, 1, 1)], 1, 1),
        lambda: policy_loss_fn(tiny, tiny, tiny, tiny + 1, tiny, 0.2, 0.3, 0.1, "token-mean"),
    )
    for call in calls:
        try:
            call()
        except NotImplementedError:
            return False
        except Exception:
            pass
    return True


def loss_from_student(loss_of, mine: dict, policy_loss_fn):
    with torch.no_grad():
        return loss_of(mine["advantages"], mine["elc_mask"], policy_loss_fn)


def reference_loss(logp, old, advantages, mask, elc_mask, eps_low, eps_high, eps_elc, aggregation):
    bounds = clip_bounds(elc_mask, eps_low, eps_elc)
    return clipped_policy_loss(logp, old, advantages, mask, bounds, eps_high, aggregation)[0]


def sound_above_fatal(root: Node, sound: list, fatal: list, lambda_tree: float) -> float:
    """P(A_hier of a sound turn > A_hier of a fatal turn) over all pairs, ties counting ½.

    Advantages within 1e-6 of each other are a tie: the ε of the z-scores would otherwise
    break ties between siblings sets of different sizes."""
    hierarchical_advantages(root, lambda_tree)
    pairs = []
    for s in sound:
        for f in fatal:
            difference = s.a_hier - f.a_hier
            pairs.append(0.5 if abs(difference) < 1e-6 else float(difference > 0))
    return sum(pairs) / len(pairs)


# what is wrong with the labels of a tree, one hint each
NOT_IN_TREE = "a labelled node is not a turn of this tree (or is the root): label its own nodes"
BOTH_LABELS = "a turn is sound or fatal, not both"
NO_PAIRS = "the score compares sound with fatal turns: give at least one of each"
SUCCESS_BELOW_FATAL = (
    "a fatal turn has a success below it, so a success was still reachable after it: "
    "that turn is sound (are the sound and fatal lists swapped?)"
)
LABEL_AFTER_FATAL = "a labelled turn lies after a fatal turn: turns after a fatal one are neither"
FAILED_LEAF_SOUND = "the last turn of a failure is never sound: its fatal turn is it or before it"


def label_problems(root: Node, sound: list, fatal: list) -> list[str]:
    """What is wrong with the labels, as hints; empty when they are the tree's own.

    The labels must be turns of the tree; a fatal turn has no success below it (nothing from it
    on succeeds); no labelled turn lies below a fatal one; a failure's last turn is not sound.
    """
    nodes = preorder(root)[1:]
    problems = []

    def listed(node, labels) -> bool:
        return any(node is other for other in labels)

    if not sound or not fatal:
        problems.append(NO_PAIRS)
    if any(not listed(node, nodes) for node in sound + fatal):
        problems.append(NOT_IN_TREE)
    # the other rules read the tree around a node: only the tree's own nodes have one
    sound = [node for node in sound if listed(node, nodes)]
    fatal = [node for node in fatal if listed(node, nodes)]
    if any(listed(node, fatal) for node in sound):
        problems.append(BOTH_LABELS)
    if any(any(leaf.reward for leaf in node.leaves()) for node in fatal):
        problems.append(SUCCESS_BELOW_FATAL)
    below_fatal = [n for node in fatal for n in preorder(node)[1:]]
    if any(listed(node, below_fatal) for node in sound + fatal):
        problems.append(LABEL_AFTER_FATAL)
    if any(not node.children and not node.reward for node in sound):
        problems.append(FAILED_LEAF_SOUND)
    return problems


def check_lambda_trees(build_better, build_worse) -> bool:
    """The design question: each builder returns ``(root, sound_nodes, fatal_nodes)``; the first
    tree should rank sound above fatal turns better at λ_tree = 0.5 than at 0, the second worse.
    The labels are checked first: they must be the tree's own."""
    print("lambda_tree = 0.5 against 0 on your two trees")
    ok = True
    for name, build, better in (
        ("first tree", build_better, True),
        ("second tree", build_worse, False),
    ):
        try:
            root, sound, fatal = build()
        except NotImplementedError:
            print(f"  {name}: not implemented yet")
            ok = False
            continue
        problems = label_problems(root, list(sound), list(fatal))
        if problems:
            print(f"  ✗ {name}: the labels are not the tree's own")
            for hint in problems:
                print(f"    hint: {hint}")
            ok = False
            continue
        half, zero = (
            sound_above_fatal(root, sound, fatal, 0.5),
            sound_above_fatal(root, sound, fatal, 0.0),
        )
        wanted = half > zero if better else half < zero
        mark = "✓" if wanted else "✗"
        goal = "better" if better else "worse"
        print(
            f"  {mark} {name}: sound above fatal {half:.3f} at 0.5, {zero:.3f} at 0 "
            f"(wanted: {goal} at 0.5)"
        )
        ok = ok and wanted
    return ok
