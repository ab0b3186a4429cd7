"""Exercise E4's checks: the ELC mask, the lower clip width (Eq. 11), and the clipped loss
(Eqs. 1, 2 and 12) with both aggregations."""

from __future__ import annotations

import torch

from ..advantages import Node
from ..loss import clip_bounds, clipped_policy_loss
from ..train import CreditedTree, token_advantages
from ..trajectory import Trajectory, Turn
from .checker import close, make_case, run_check

# the usual mistakes, one hint each
UPPER = "ELC widens only the lower bound; the upper bound stays 1 + eps_high"
BEFORE_T_CRIT = "ELC starts at turn t_crit itself (1-based), not at the turn before it"
TOOL_TOKENS = "ELC covers action tokens only: a turn's tool output [end, out_end) is context"
TOKEN_MEAN = "that is token-mean; seq-mean-token-mean averages within each sequence first (Eq. 1)"
EMPTY_ROWS = "a sequence without action tokens is counted: leave it out of the mean"


def reference_elc_mask(turns, t_crit: int, length: int) -> list[float]:
    """The package's ELC mask of one trajectory whose search found ``t_crit``."""
    stand_in = Trajectory(None, [0] * length, [1] * length, [0.0] * length, [0.0] * length, 0)
    stand_in.turns = [Turn(start, end, out_end) for start, end, out_end in turns]
    path = {id(stand_in): [Node() for _ in turns]}
    credited = CreditedTree(None, None, path, {id(stand_in): t_crit - 1})
    return token_advantages(stand_in, credited)[1]


def spans_mask(turns, first_turn: int, length: int, upto_output: bool) -> list[float]:
    mask = [0.0] * length
    for start, end, out_end in turns[first_turn:]:
        for i in range(start, out_end if upto_output else end):
            mask[i] = 1.0
    return mask


def check_elc_mask(fn) -> bool:
    """``fn(turns, t_crit, length) -> list[float]``: 1 on the action tokens of turns
    t_crit..last; ``turns`` holds each turn's ``(start, end, out_end)``."""
    worked = [(28, 35, 41), (41, 48, 55), (55, 66, 96), (96, 107, 114), (114, 121, 128)]
    worked += [(128, 135, 142), (142, 150, 150)]
    inputs = [
        ("the worked example's tau*, t_crit = 4", worked, 4, 157),
        ("t_crit = 1: every turn", [(3, 6, 9), (9, 12, 12)], 1, 14),
        ("t_crit at the last step", [(0, 2, 4), (4, 6, 8), (8, 10, 10)], 2, 10),
    ]
    cases = []
    for name, turns, t_crit, length in inputs:
        expected = reference_elc_mask(turns, t_crit, length)
        early = spans_mask(turns, max(t_crit - 2, 0), length, False)
        with_output = spans_mask(turns, t_crit - 1, length, True)
        mistakes = [
            (BEFORE_T_CRIT, lambda got, w=early, e=expected: w != e and close(got, w)),
            (TOOL_TOKENS, lambda got, w=with_output, e=expected: w != e and close(got, w)),
        ]
        shown = f"turns={turns}, t_crit={t_crit}, length={length}"
        cases.append(make_case(name, fn, (turns, t_crit, length), expected, mistakes, shown))
    return run_check("the ELC mask", cases)


def check_lower_bound(fn) -> bool:
    """``fn(elc_mask [B, T], eps_low, eps_elc) -> eps_low_t [B, T]`` (Eq. 11)."""
    inputs = [
        ("one suffix token", torch.tensor([[0.0, 1.0]]), 0.2, 0.115),
        ("no ELC at all", torch.zeros(2, 3), 0.2, 0.115),
        ("other widths", torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]), 0.1, 0.05),
    ]
    cases = []
    for name, mask, eps_low, eps_elc in inputs:
        expected = clip_bounds(mask, eps_low, eps_elc)
        cases.append(make_case(name, fn, (mask, eps_low, eps_elc), expected))
    return run_check("the per-token lower clip width (Eq. 11)", cases)


def loss_inputs(seed: int, empty_row: bool = False):
    """Random ``(logp, old_logp, advantages, mask, elc_mask)`` of shape [4, 12]."""
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(4, 12, generator=g) * 3
    logp = old + 0.5 * torch.randn(4, 12, generator=g)
    advantages = torch.randn(4, 1, generator=g).expand(4, 12).clone()
    mask = (torch.arange(12) < torch.tensor([[12], [7], [3], [10]])).float()
    if empty_row:
        mask[2] = 0.0
    elc = (torch.arange(12) >= 5).float().expand(4, 12) * mask
    return logp, old, advantages, mask, elc


def check_policy_loss(fn) -> bool:
    """``fn(logp, old_logp, advantages, mask, elc_mask, eps_low, eps_high, eps_elc,
    aggregation) -> loss``: minus Eq. 12's objective, aggregated as Eq. 1 (or token-mean)."""
    logp, old, advantages, mask, elc = loss_inputs(0)
    inputs = [
        ("ratio 1 everywhere", (old, old, advantages, mask, elc), "seq-mean-token-mean"),
        ("random ratios", loss_inputs(1), "seq-mean-token-mean"),
        ("a sequence with no action token", loss_inputs(2, empty_row=True), "seq-mean-token-mean"),
        ("token-mean when asked", loss_inputs(3), "token-mean"),
    ]
    cases = []
    for name, (logp, old, adv, mask, elc), aggregation in inputs:
        args = (logp, old, adv, mask, elc, 0.2, 0.315, 0.115, aggregation)
        bounds = clip_bounds(elc, 0.2, 0.115)
        expected = clipped_policy_loss(logp, old, adv, mask, bounds, 0.315, aggregation)[0]
        wrong = {
            UPPER: widened_upper_loss(logp, old, adv, mask, elc, aggregation),
            TOKEN_MEAN: clipped_policy_loss(logp, old, adv, mask, bounds, 0.315, "token-mean")[0],
            EMPTY_ROWS: counting_empty_rows(logp, old, adv, mask, bounds, aggregation),
        }
        mistakes = [
            (hint, lambda got, w=value, e=expected: not close(w, e) and close(got, w))
            for hint, value in wrong.items()
        ]
        shown = f"[4, 12] tensors, action tokens per row {mask.sum(-1).int().tolist()}"
        shown += f", aggregation={aggregation!r}"
        cases.append(make_case(name, fn, args, expected, mistakes, shown))
    return run_check("the clipped loss with ELC (Eqs. 1, 2, 11, 12)", cases)


def widened_upper_loss(logp, old, adv, mask, elc, aggregation):
    ratio = (logp - old).exp()
    clipped = torch.clamp(ratio, 1 - 0.2 - 0.115 * elc, 1 + 0.315 + 0.115 * elc)
    objective = torch.minimum(ratio * adv, clipped * adv)
    if aggregation == "token-mean":
        return -(objective * mask).sum() / mask.sum()
    per_seq = (objective * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return -per_seq.sum() / (mask.sum(-1) > 0).sum()


def counting_empty_rows(logp, old, adv, mask, bounds, aggregation):
    loss = clipped_policy_loss(logp, old, adv, mask, bounds, 0.315, aggregation)[0]
    with_tokens = int((mask.sum(-1) > 0).sum())
    return loss * with_tokens / mask.shape[0]
