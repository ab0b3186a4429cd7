"""Evaluation: success rate, pass@k, maj@k, tool calls, and where failures went wrong."""

from __future__ import annotations

from collections import Counter
from math import comb

import torch

from ..runtime import Runtime
from ..tasks import answer_outcome
from ..toy import Problem, first_error_step
from ..trajectory import Trajectory

OUTCOMES = ("correct", "no answer", "unparseable", "wrong")


def outcome_counts(trajs: list[Trajectory]) -> list[float]:
    """[trajectories, solved, tool calls, tool calls of the solved, truncated]."""
    solved = [t for t in trajs if t.success]
    return [
        len(trajs),
        len(solved),
        sum(t.num_steps for t in trajs),
        sum(t.num_steps for t in solved),
        sum(t.truncated for t in trajs),
    ]


def outcome_rates(counts: list[float]) -> dict:
    """Success rate, tool calls per problem and per solved problem, truncation rate."""
    n, n_solved, calls, solved_calls, truncated = counts
    return {
        "success_rate": n_solved / n,
        "tool_calls_per_problem": calls / n,
        "tool_calls_per_solved": solved_calls / max(n_solved, 1),
        "truncated_rate": truncated / n,
    }


def held_out_success(engine, problems, seed: int, rt: Runtime | None = None) -> dict:
    """Held-out pass@1, on its own random stream so that evaluating never perturbs training;
    sharded over data-parallel ranks and summed."""
    rt = rt or Runtime()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed + rt.rank)
        groups = engine.rollout([engine.start(p) for p in rt.shard(problems)], 1)
    trajs = [t for group in groups for t in group]
    return outcome_rates(rt.all_sum(outcome_counts(trajs)))


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
    """Sample ``k`` trajectories per held-out problem with a rollout engine.

    Returns:
        dict with ``success_rate``, ``pass@1`` (averaged over all k), ``pass@k``, ``maj@k``,
        ``tool_calls_per_problem``, ``tool_calls_per_solved``, ``truncated_rate``, ``format_ok``
        (share of turns that parse as a call or an answer), ``tool_error_rate`` (share of calls
        that raised, timed out or crashed), ``outcomes`` (correct, no answer, unparseable,
        wrong), ``first_error_hist`` (toy only: the oracle's first wrong step of each failure,
        "none" when no output departed) and the ``trajectories``, grouped per problem.
    """
    from tqdm import tqdm

    with tqdm(total=len(problems) * k, desc="evaluate", disable=not progress, leave=False) as bar:
        seeds = [engine.start(p) for p in problems]
        groups = engine.rollout(seeds, k, progress=bar.update)
    trajs = [t for group in groups for t in group]
    hist, outcomes = Counter(), Counter()
    for t in trajs:
        outcome = "correct" if t.success else answer_outcome(t.answer, str(t.problem.answer))
        # math-verify may accept what the task's own check rejected: that is a wrong answer
        outcomes["wrong" if outcome == "correct" and not t.success else outcome] += 1
        if not t.success and isinstance(t.problem, Problem):
            step = first_error_step(t.problem, t.tool_outputs)
            hist["none" if step is None else step] += 1
    turns = [turn for t in trajs for turn in t.turns]
    calls = [turn for turn in turns if turn.code is not None]
    parsed = sum(turn.code is not None or turn.answer is not None for turn in turns)

    def pass_rate(kk: int) -> float:
        return sum(pass_at_k(k, sum(t.success for t in g), kk) for g in groups) / len(groups)

    majority = sum(maj_at_k([t.answer for t in g], [t.success for t in g]) for g in groups)
    return {
        **outcome_rates(outcome_counts(trajs)),
        "pass@1": pass_rate(1),
        f"pass@{k}": pass_rate(k),
        f"maj@{k}": majority / len(groups),
        "format_ok": parsed / max(len(turns), 1),
        "tool_error_rate": sum(turn.failed for turn in calls) / max(len(calls), 1),
        "outcomes": {name: outcomes[name] for name in OUTCOMES},
        "first_error_hist": dict(
            sorted(hist.items(), key=lambda kv: (isinstance(kv[0], str), kv[0]))
        ),
        "trajectories": groups,
    }
