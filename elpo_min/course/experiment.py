"""Exercise E9: does the branch term rank sound turns above fatal ones? The experiment's recipe,
and the checks that recompute the student's numbers.

The recipe is fixed so that a number can be recomputed: for a seed, ``prompts`` held-out toy
problems drawn with that seed, BEL's trees for them with the tiny policy and the paper's
settings (:func:`trees_for`, cached per seed and size, so a check in the same kernel reads the
same trees without sampling them again). The student writes the measurement, the credit AUC
of A_hier at a given λ_tree against the toy's step labels, and runs it over seeds; the checks
compare the measurement with the package's on hand-made trees, then recompute every number of
the student's table from the recipe.
"""

from __future__ import annotations

import functools
import random
import time

import torch

from ..advantages import build_tree, hierarchical_advantages
from ..bel import PromptTree, build_trees
from ..config import Config
from ..diagnostics.credit import credit_metrics, turn_labels
from ..diagnostics.stats import mean_ci
from ..trajectory import Trajectory, Turn
from .checker import FAIL, PASS, close, make_case, outcome_of, run_check, wrong

# the usual mistakes of the measurement, one hint each
ACROSS_PROMPTS = "pair a sound and a fatal turn of the same prompt's tree, not across prompts"
TIES_LOSE = "a tie (equal advantages) counts ½, not 0"
TIES_DROPPED = "a tie counts ½ and stays in the count of pairs; it is not dropped"
PROMPT_MEAN = (
    "pool the pairs of all prompts: a mean of per-prompt AUCs weighs a prompt with 2 pairs "
    "like one with 200"
)
AFTER_AS_SOUND = "turns after the fatal one are neither sound nor fatal: leave them out"
LAMBDA_IGNORED = "compute A_hier at the lambda_tree you are given"
FIELD = "rank the turns by A_hier (node.a_hier), the advantage training uses"
# and of the run
RECIPE = "a seed's numbers differ from the recipe: use trees_for(seed, prompts) for each seed"
UNPAIRED = "the paired difference is mean_ci of the per-seed differences AUC(0.5) - AUC(0)"


@functools.lru_cache(maxsize=1)
def _engine():
    """The tiny policy's rollout engine with the fast decoder (the plain one's samples)."""
    from ..fast_decoder import FastDecoder
    from ..models import load_policy
    from ..rollout import RolloutEngine
    from ..tools import run_arith

    model, tokenizer = load_policy()
    model.eval()
    return RolloutEngine(model, tokenizer, tool=run_arith, decoder=FastDecoder)


@functools.lru_cache(maxsize=64)
def _trees(seed: int, prompts: int) -> tuple:
    from ..tasks import data_dir, load_problems
    from ..train import BEL_ARGS

    problems = load_problems(data_dir() / "toy_test.jsonl")
    chosen = random.Random(seed).sample(problems, prompts)
    cfg = Config()
    torch.manual_seed(seed)
    return tuple(build_trees(_engine(), chosen, **{k: getattr(cfg, k) for k in BEL_ARGS}))


def trees_for(seed: int, prompts: int) -> list[PromptTree]:
    """BEL's trees for ``prompts`` held-out toy problems drawn with ``seed``, sampled with
    ``torch.manual_seed(seed)`` and the paper's BEL settings.

    The same call in the same kernel returns the same trees, sampled once. They are shared, not
    copied (a tree's ``parents`` is keyed by the ids of its trajectories, which a copy would
    change): read them, do not modify them."""
    if prompts < 1:
        raise ValueError(f"prompts must be at least 1, got {prompts}")
    return list(_trees(seed, prompts))


def reference_credit_auc(trees: list, lambda_tree: float, labels_of=turn_labels) -> float:
    """P(A_hier of a sound turn > A_hier of a fatal turn of the same prompt), ties ½, over the
    pairs of all prompts pooled (``elpo_min.diagnostics.credit_metrics``)."""
    groups = []
    for tree in trees:
        root, path = build_tree(tree.trajectories, tree.parents)
        hierarchical_advantages(root, lambda_tree)
        group = []
        for traj in tree.trajectories:
            labels = labels_of(traj)
            turns = [(label, node.a_hier, 0, 0) for label, node in zip(labels, path[id(traj)])]
            group.append({"success": bool(traj.reward), "turns": turns})
        groups.append(group)
    return credit_metrics(groups)["credit_auc"]


# ---- the measurement, on hand-made trees ---------------------------------------------------


def stand_in(turns: int, reward: float) -> Trajectory:
    """A trajectory of ``turns`` one-token turns with this reward."""
    trajectory = Trajectory(None, [0] * turns, [1] * turns, [0.0] * turns, [0.0] * turns, 0)
    trajectory.turns = [Turn(i, i + 1, i + 1) for i in range(turns)]
    trajectory.reward = reward
    trajectory.success = bool(reward)
    return trajectory


def hand_made_trees() -> tuple[list, dict]:
    """Six prompts' trees and the label of every turn (by ``id`` of the trajectory).

    Prompt 1 is notebook 05's hand-built tree: τ* fatal at turn 3 with two continuations from
    prefix(2), one of which recovers; a success; a failure fatal at turn 1. Prompt 2: a failure
    searched at turn 2 with one failed continuation, and a success. Prompts 3 and 4 are E5's
    two trees, where the branch term helps and where it hurts; 5 and 6 are random.
    """
    labels = {}
    tau, ok, bad = stand_in(4, 0.0), stand_in(4, 1.0), stand_in(4, 0.0)
    success, early = stand_in(4, 1.0), stand_in(4, 0.0)
    first = PromptTree(None, [tau, success, early, ok, bad], {id(ok): (tau, 2), id(bad): (tau, 2)})
    for traj in (tau, bad):
        labels[id(traj)] = ["sound", "sound", "fatal", "after"]
    labels[id(ok)] = labels[id(success)] = ["sound"] * 4
    labels[id(early)] = ["fatal", "after", "after", "after"]
    other, winner, retry = stand_in(3, 0.0), stand_in(3, 1.0), stand_in(3, 0.0)
    second = PromptTree(None, [other, winner, retry], {id(retry): (other, 1)})
    labels[id(other)] = ["sound", "fatal", "after"]
    labels[id(winner)] = ["sound"] * 3
    labels[id(retry)] = ["sound", "fatal", "after"]
    # E5's two trees: the branch term helps in the first and hurts in the second
    tau, rescue, early, late = (
        stand_in(3, 0.0),
        stand_in(3, 1.0),
        stand_in(3, 0.0),
        stand_in(3, 0.0),
    )
    third = PromptTree(None, [tau, early, late, rescue], {id(rescue): (tau, 2)})
    labels[id(tau)] = ["sound", "sound", "fatal"]
    labels[id(rescue)] = ["sound"] * 3
    labels[id(early)] = ["fatal", "after", "after"]
    labels[id(late)] = ["sound", "fatal", "after"]
    tau, success, retry = stand_in(3, 0.0), stand_in(3, 1.0), stand_in(3, 0.0)
    fourth = PromptTree(None, [tau, success, retry], {id(retry): (tau, 1)})
    labels[id(tau)] = ["sound", "sound", "fatal"]
    labels[id(success)] = ["sound"] * 3
    labels[id(retry)] = ["sound", "fatal", "after"]
    # two random prompts; with this seed the six give four different AUCs at the four
    # lambda_tree of the check, and ties at lambda_tree = 0 only
    rng = random.Random(95)
    randoms = [random_prompt(rng, labels) for _ in range(2)]
    return [first, second, third, fourth, *randoms], labels


def random_prompt(rng: random.Random, labels: dict) -> PromptTree:
    """Two to four full trajectories and one to three continuations of the first, random
    lengths and rewards; a failure's fatal turn is random, the turns before it sound."""

    def sampled(turns: int, reward: float) -> Trajectory:
        trajectory = stand_in(turns, reward)
        fatal = rng.randrange(turns)
        labels[id(trajectory)] = (
            ["sound"] * turns
            if reward
            else ["sound"] * fatal + ["fatal"] + ["after"] * (turns - fatal - 1)
        )
        return trajectory

    trajectories = [
        sampled(rng.randint(2, 5), float(rng.random() < 0.4)) for _ in range(rng.randint(2, 4))
    ]
    tau, parents = trajectories[0], {}
    for _ in range(rng.randint(1, 3)):
        m = rng.randint(1, len(tau.turns) - 1)
        continuation = sampled(m + rng.randint(1, 3), float(rng.random() < 0.5))
        trajectories.append(continuation)
        parents[id(continuation)] = (tau, m)
    return PromptTree(None, trajectories, parents)


def auc_with(
    trees,
    lambda_tree,
    labels_of,
    pooled=True,
    tie=0.5,
    keep_ties=True,
    sound=("sound",),
    field="a_hier",
    use_lambda=True,
    per_prompt_mean=False,
):
    """The credit AUC with one knob per usual mistake; the defaults are right."""
    per_prompt, all_pairs = [], []
    for tree in trees:
        root, path = build_tree(tree.trajectories, tree.parents)
        hierarchical_advantages(root, lambda_tree if use_lambda else 0.5)
        good, bad = [], []
        for traj in tree.trajectories:
            for label, node in zip(labels_of(traj), path[id(traj)]):
                value = getattr(node, field)
                if label in sound:
                    good.append(value)
                elif label == "fatal":
                    bad.append(value)
        pairs = [(g, b) for g in good for b in bad]
        per_prompt.append(pairs)
        all_pairs.append((good, bad))

    def score(pairs):
        points = [1.0 if g > b else tie if g == b else 0.0 for g, b in pairs]
        kept = [p for (g, b), p in zip(pairs, points) if keep_ties or g != b]
        return sum(kept) / len(kept)

    if per_prompt_mean:
        return sum(score(pairs) for pairs in per_prompt if pairs) / sum(1 for p in per_prompt if p)
    if pooled:
        return score([pair for pairs in per_prompt for pair in pairs])
    good = [g for gs, _ in all_pairs for g in gs]
    bad = [b for _, bs in all_pairs for b in bs]
    return score([(g, b) for g in good for b in bad])


AUC_KNOBS = {
    ACROSS_PROMPTS: {"pooled": False},
    TIES_LOSE: {"tie": 0.0},
    TIES_DROPPED: {"keep_ties": False},
    PROMPT_MEAN: {"per_prompt_mean": True},
    AFTER_AS_SOUND: {"sound": ("sound", "after")},
    LAMBDA_IGNORED: {"use_lambda": False},
    FIELD: {"field": "a_branch"},
}


def check_credit_auc(fn) -> bool:
    """``fn(trees, lambda_tree, labels_of) -> float``: the credit AUC of A_hier, on two
    hand-made prompts' trees at several lambda_tree."""
    trees, labels = hand_made_trees()

    def labels_of(traj):
        return labels[id(traj)]

    cases = []
    for lambda_tree in (0.0, 0.3, 0.5, 1.0):
        expected = reference_credit_auc(trees, lambda_tree, labels_of)
        mistakes = [
            # on the trees as they are: a copy would break the ids their parents are keyed by
            wrong(
                hint, outcome_of(auc_with, trees, lambda_tree, labels_of, copy_args=False, **knobs)
            )
            for hint, knobs in AUC_KNOBS.items()
        ]
        name = f"six prompts' trees, lambda_tree = {lambda_tree}"
        args = (trees, lambda_tree, labels_of)
        shown = f"6 prompts (BEL-like trees with labels), lambda_tree={lambda_tree}"
        cases.append(make_case(name, fn, args, expected, mistakes, shown, copy_args=False))
    return run_check("the credit AUC of A_hier (E9)", cases)


# ---- the student's table, recomputed -------------------------------------------------------


def run_and_show(run, seeds, prompts: int, lambdas) -> tuple | None:
    """Run the student's ``run(seeds, prompts, lambdas) -> (results, summary)``, print its
    table and how long it took; ``None`` (and "not implemented yet") for a stub."""
    started = time.perf_counter()
    try:
        results, summary = run(seeds, prompts, lambdas)
    except NotImplementedError:
        print("not implemented yet")
        return None
    minutes = (time.perf_counter() - started) / 60
    print(f"{len(seeds)} seeds x {prompts} prompts, {minutes:.1f} minutes")
    for key, (mean, half) in summary.items():
        per_seed = [round(v, 3) for v in results.get(key, [])]
        print(f"lambda_tree {key!s:>7}: {mean:.3f} ± {half:.3f}  per seed {per_seed}")
    return results, summary


def check_experiment(outcome: tuple | None, seeds, prompts: int) -> bool:
    """Recompute every number of the student's table from the recipe.

    Args:
        outcome: ``(results, summary)`` as :func:`run_and_show` returns it: ``results`` is
            ``{lambda_tree: [credit AUC for each seed, in the order of seeds]}``, ``summary``
            ``{lambda_tree: (mean, half-width)}`` and ``"0.5 - 0"``, the paired difference of
            λ_tree = 0.5 and 0 (``mean_ci``); ``None`` when the run is not written yet.
        seeds, prompts: the run's settings, as passed to :func:`trees_for`.

    Prints a verdict per line, not the numbers: they depend on the sampled trees, which the
    notebook prints itself.
    """
    seeds = list(seeds)
    print(f"your table: seeds {seeds}, {prompts} prompts")
    if outcome is None:
        print("  not implemented yet")
        return False
    results, summary = outcome
    ok, hints = True, []
    for lambda_tree, values in results.items():
        if len(values) != len(seeds):
            print(
                f"  {FAIL} lambda_tree = {lambda_tree}: {len(values)} values for {len(seeds)} seeds"
            )
            ok = False
            continue
        recomputed = [reference_credit_auc(trees_for(s, prompts), lambda_tree) for s in seeds]
        wrong_seeds = [s for s, v, r in zip(seeds, values, recomputed) if not close(v, r, 1e-9)]
        if wrong_seeds:
            print(
                f"  {FAIL} lambda_tree = {lambda_tree}: seeds {wrong_seeds} differ from the recipe"
            )
            hints.append(RECIPE)
            ok = False
        else:
            print(f"  {PASS} lambda_tree = {lambda_tree}: every seed matches the recomputation")
    for hint in dict.fromkeys(hints):
        print(f"    hint: {hint}")
    expected = {lam: mean_ci(values) for lam, values in results.items()}
    if 0.0 in results and 0.5 in results:
        differences = [a - b for a, b in zip(results[0.5], results[0.0])]
        expected["0.5 - 0"] = mean_ci(differences)
    for key, value in expected.items():
        if key not in summary:
            print(f"  {FAIL} the summary has no entry {key!r}")
            ok = False
        elif not close(tuple(summary[key]), value, 1e-9):
            print(f"  {FAIL} the summary's {key!r} is not mean_ci of the table's values")
            if key == "0.5 - 0":
                print(f"    hint: {UNPAIRED}")
            ok = False
        else:
            print(f"  {PASS} the summary's {key!r} matches")
    return ok
