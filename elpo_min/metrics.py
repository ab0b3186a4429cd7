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
    if not votes:
        return False
    winner = votes.most_common(1)[0][0]
    return next(ok for a, ok in zip(answers, correct) if a is not None and a.strip() == winner)


def evaluate(engine, problems: list, k: int = 1, progress: bool = True,
             first_error=None) -> dict:
    """Sample ``k`` trajectories per problem and summarize.

    Args:
        engine: a :class:`~elpo_min.rollout.RolloutEngine`.
        problems: held-out problems.
        k: samples per problem (pass@1 is averaged over all k).
        progress: show a progress bar.
        first_error: ``(problem, tool_outputs) -> step | None``; the toy oracle by default.

    Returns:
        dict with ``success_rate``, ``pass@k`` for k in {1, k}, ``maj@k``,
        ``tool_calls_per_problem``, ``tool_calls_per_solved``, ``truncated_rate``,
        ``first_error_hist`` (oracle step of failed trajectories, "none" when no
        tool output departed) and the ``trajectories`` themselves.
    """
    from tqdm import tqdm

    from .toy import first_error_step

    first_error = first_error or first_error_step
    with tqdm(total=len(problems) * k, desc="evaluate", disable=not progress, leave=False) as bar:
        groups = engine.rollout([engine.start(p) for p in problems], k,
                                progress=lambda done: bar.update(done))
    trajs = [t for g in groups for t in g]
    solved = [t for t in trajs if t.success]
    hist = Counter()
    for t in trajs:
        if not t.success:
            step = first_error(t.problem, t.tool_outputs)
            hist["none" if step is None else step] += 1
    summary = {
        "success_rate": len(solved) / len(trajs),
        "pass@1": sum(pass_at_k(k, sum(t.success for t in g), 1) for g in groups) / len(groups),
        f"pass@{k}": sum(pass_at_k(k, sum(t.success for t in g), k) for g in groups) / len(groups),
        f"maj@{k}": sum(maj_at_k([t.answer for t in g], [t.success for t in g])
                        for g in groups) / len(groups),
        "tool_calls_per_problem": sum(t.num_steps for t in trajs) / len(trajs),
        "tool_calls_per_solved": sum(t.num_steps for t in solved) / max(len(solved), 1),
        "truncated_rate": sum(t.truncated for t in trajs) / len(trajs),
        "first_error_hist": dict(sorted(hist.items(), key=lambda kv: (isinstance(kv[0], str), kv[0]))),
        "trajectories": groups,
    }
    return summary
