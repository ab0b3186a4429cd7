"""Exercise E4's checks: the ELC mask, the lower clip width (Eq. 11), and the clipped loss
(Eqs. 1, 2 and 12) with both aggregations.

The ELC mask's worked case is τ* of notebooks 01-04 with its real turn spans: t_crit = 4, 40
tokens under ELC, in a row padded to the batch's 203 positions. The loss's cases have
advantages that change from turn to turn along a row (as A_hier does), ratios spread over
both sides of the trust region, and the negative-advantage tokens in [0.685, 0.8) where ELC
changes the gradient. Every usual mistake of the loss is a knob of :func:`loss_with`.
"""

from __future__ import annotations

import torch

from ..advantages import Node
from ..loss import clip_bounds, clipped_policy_loss
from ..train import CreditedTree, token_advantages
from ..trajectory import Trajectory, Turn
from .checker import Case, close, make_case, outcome_of, run_check, symptom, wrong

# the usual mistakes, one hint each
BEFORE_T_CRIT = "ELC starts at turn t_crit itself (1-based), not at the turn before it"
AFTER_T_CRIT = "t_crit is 1-based: turn t_crit is turns[t_crit - 1], and ELC starts there"
ONLY_T_CRIT = "ELC covers the critical step and every turn after it, not the critical turn alone"
TOOL_TOKENS = "ELC covers action tokens only: a turn's tool output [end, out_end) is context"
TO_THE_END = "from t_crit's first token to the end also covers tool outputs and padding"
END_INCLUSIVE = "a turn's tokens are [start, end): end is exclusive"
WIDTH_SUBTRACTED = "ELC widens the clip range: eps_low + eps_elc on the suffix, not minus"
BOUND_NOT_WIDTH = "return the width eps_low_t; the lower bound 1 - eps_low_t is the loss's job"
ELC_EVERYWHERE = "eps_elc is added only where the ELC mask is 1"
MASK_INVERTED = "eps_elc goes where the ELC mask is 1 (the error suffix), not where it is 0"
UPPER = "ELC widens only the lower bound; the upper bound stays 1 + eps_high"
TOKEN_MEAN = "that is token-mean; seq-mean-token-mean averages within each sequence first (Eq. 1)"
SEQ_MEAN = "token-mean was asked: one mean over all action tokens of the batch"
EMPTY_ROWS = "a sequence without action tokens is counted: leave it out of the mean"
MAX_NOT_MIN = "the clipped objective takes the min of r A and clip(r) A (pessimistic), not max"
ELC_POSITIVE_ONLY = "the ELC width applies on the mask whatever the sign of A; do not gate it on A"
NOT_NEGATED = "the loss is minus the objective: gradient descent on it ascends the objective"
PER_SEQUENCE = "advantages are per token (A_hier changes from turn to turn): use all of them"
DIVIDES_BY_T = "each sequence's mean divides by its own action tokens, not by the row length T"
ALL_POSITIONS = "token-mean divides by the number of action tokens, not by B * T"
LOG_RATIO = "the ratio is r = exp(logp - old_logp), not the log-ratio"
RATIO_INVERTED = "the ratio is pi / pi_old = exp(logp - old_logp), not its inverse"
WIDTH_AS_BOUND = "clip r at 1 - eps_low_t below; eps_low_t is a width, not the bound"
DETACHED = (
    "the loss must stay a tensor connected to logp (no .item(), float() or torch.no_grad): "
    "backward() needs it"
)

# the worked example's tau*: (start, end, out_end) of its seven turns, as notebook 01 prints
WORKED_TURNS = [(28, 35, 41), (41, 49, 56), (56, 68, 96), (96, 107, 114), (114, 125, 132)]
WORKED_TURNS += [(132, 143, 150), (150, 157, 157)]
# the worked batch pads every row to 203 positions
WORKED_LENGTH = 203


def reference_elc_mask(turns, t_crit: int, length: int) -> list[float]:
    """The package's ELC mask of one trajectory whose search found ``t_crit``."""
    stand_in = Trajectory(None, [0] * length, [1] * length, [0.0] * length, [0.0] * length, 0)
    stand_in.turns = [Turn(start, end, out_end) for start, end, out_end in turns]
    path = {id(stand_in): [Node() for _ in turns]}
    credited = CreditedTree(None, None, path, {id(stand_in): t_crit - 1})
    return token_advantages(stand_in, credited)[1]


def mask_over(turns, length: int, span=lambda start, end, out_end: (start, end)) -> list[float]:
    """1.0 over ``span`` of each given turn, written the way a student's loop writes it."""
    mask = [0.0] * length
    for start, end, out_end in turns:
        first, last = span(start, end, out_end)
        mask[first:last] = [1.0] * (last - first)
    return mask


def to_the_end(turns, t_crit: int, length: int) -> list[float]:
    mask = [0.0] * length
    first = turns[t_crit - 1][0]
    mask[first:] = [1.0] * (length - first)
    return mask


def check_elc_mask(fn) -> bool:
    """``fn(turns, t_crit, length) -> list[float]``: 1 on the action tokens of turns
    t_crit..last; ``turns`` holds each turn's ``(start, end, out_end)``."""
    inputs = [
        ("the worked example's tau*, t_crit = 4", WORKED_TURNS, 4, WORKED_LENGTH),
        ("t_crit = 1: every turn", [(3, 6, 9), (9, 12, 12)], 1, 14),
        ("t_crit at the last step", [(0, 2, 4), (4, 6, 8), (8, 10, 10)], 3, 10),
        ("t_crit = 2 of 3, padded", [(2, 5, 8), (8, 12, 15), (15, 18, 18)], 2, 21),
    ]
    cases = []
    for name, turns, t_crit, length in inputs:
        expected = reference_elc_mask(turns, t_crit, length)
        suffix = turns[t_crit - 1 :]
        mistakes = [
            # Python's turns[-1:] is what turns[t_crit - 2:] gives at t_crit = 1
            wrong(BEFORE_T_CRIT, mask_over(turns[t_crit - 2 :], length)),
            wrong(AFTER_T_CRIT, mask_over(turns[t_crit:], length)),
            wrong(ONLY_T_CRIT, mask_over(suffix[:1], length)),
            wrong(TOOL_TOKENS, mask_over(suffix, length, lambda s, e, o: (s, o))),
            wrong(TO_THE_END, to_the_end(turns, t_crit, length)),
            wrong(END_INCLUSIVE, mask_over(suffix, length, lambda s, e, o: (s, e + 1))),
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
        mistakes = [
            wrong(WIDTH_SUBTRACTED, eps_low - eps_elc * mask),
            wrong(BOUND_NOT_WIDTH, 1 - expected),
            wrong(ELC_EVERYWHERE, torch.full_like(mask, eps_low + eps_elc)),
            wrong(MASK_INVERTED, eps_low + eps_elc * (1 - mask)),
        ]
        cases.append(make_case(name, fn, (mask, eps_low, eps_elc), expected, mistakes))
    return run_check("the per-token lower clip width (Eq. 11)", cases)


def loss_with(
    logp,
    old,
    adv,
    mask,
    elc,
    eps_low,
    eps_high,
    eps_elc,
    aggregation,
    ratio_of=lambda logp, old: (logp - old).exp(),
    per_token=lambda adv: adv,
    elc_on=lambda elc, adv: elc,
    lower_of=lambda width: 1 - width,
    upper_elc=0.0,
    pick=torch.minimum,
    sign=-1.0,
    force=None,
    seq_divisor=lambda mask: mask.sum(-1).clamp(min=1),
    count_empty=False,
    token_divisor=lambda mask: mask.sum().clamp(min=1),
):
    """The clipped loss with one knob per usual mistake; the defaults are the right loss."""
    ratio = ratio_of(logp, old)  # [B, T]
    adv = per_token(adv)  # [B, T]
    covered = elc_on(elc, adv)  # [B, T]
    lower = lower_of(eps_low + eps_elc * covered)  # [B, T]
    upper = 1 + eps_high + upper_elc * covered  # [B, T]
    clipped = torch.minimum(torch.maximum(ratio, lower), upper * torch.ones_like(ratio))
    objective = pick(ratio * adv, clipped * adv)  # [B, T]
    if (force or aggregation) == "token-mean":
        return sign * (objective * mask).sum() / token_divisor(mask)
    per_seq = (objective * mask).sum(-1) / seq_divisor(mask)  # [B]
    rows = mask.shape[0] if count_empty else (mask.sum(-1) > 0).sum().clamp(min=1)
    return sign * per_seq.sum() / rows


LOSS_KNOBS = {
    UPPER: {"upper_elc": 0.115},
    TOKEN_MEAN: {"force": "token-mean"},
    SEQ_MEAN: {"force": "seq-mean-token-mean"},
    EMPTY_ROWS: {"count_empty": True},
    MAX_NOT_MIN: {"pick": torch.maximum},
    ELC_POSITIVE_ONLY: {"elc_on": lambda elc, adv: elc * (adv > 0)},
    NOT_NEGATED: {"sign": 1.0},
    PER_SEQUENCE: {"per_token": lambda adv: adv[:, :1].expand_as(adv)},
    DIVIDES_BY_T: {"seq_divisor": lambda mask: mask.shape[-1]},
    ALL_POSITIONS: {"token_divisor": lambda mask: mask.numel()},
    LOG_RATIO: {"ratio_of": lambda logp, old: logp - old},
    RATIO_INVERTED: {"ratio_of": lambda logp, old: (old - logp).exp()},
    WIDTH_AS_BOUND: {"lower_of": lambda width: width},
}


def loss_inputs(seed: int, empty_row: bool = False, moved: bool = True):
    """``(logp, old_logp, advantages, mask, elc_mask)`` of shape [4, 12].

    Ratios are spread over [0.5, 1.6] (1 everywhere unless ``moved``); advantages change every
    three or four tokens, as A_hier does from turn to turn; the ELC mask covers the action
    tokens from position 5 on.
    """
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(4, 12, generator=g, dtype=torch.float64) * 3
    ratio = 0.5 + 1.1 * torch.rand(4, 12, generator=g, dtype=torch.float64)
    logp = old + ratio.log() if moved else old.clone()
    turn_of = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3])
    advantages = torch.randn(4, 4, generator=g, dtype=torch.float64)[:, turn_of]
    mask = (torch.arange(12) < torch.tensor([[12], [7], [3], [10]])).double()
    if empty_row:
        mask[2] = 0.0
    elc = (torch.arange(12) >= 5).double().expand(4, 12) * mask
    return logp, old, advantages, mask, elc


def carries_gradient(got, expected) -> bool:
    return torch.is_tensor(got) and got.requires_grad and close(got, expected)


def detached(got, expected) -> bool:
    """The right number, cut off from the graph."""
    return close(got, expected) and not (torch.is_tensor(got) and got.requires_grad)


def check_policy_loss(fn) -> bool:
    """``fn(logp, old_logp, advantages, mask, elc_mask, eps_low, eps_high, eps_elc,
    aggregation) -> loss``: minus Eq. 12's objective, aggregated as Eq. 1 (or token-mean)."""
    seq, tok = "seq-mean-token-mean", "token-mean"
    inputs = [
        ("ratio 1 everywhere", loss_inputs(0, moved=False), seq),
        ("ratios on both sides of the clip", loss_inputs(1), seq),
        ("a sequence with no action token", loss_inputs(2, empty_row=True), seq),
        ("token-mean when asked", loss_inputs(3), tok),
        ("advantages that change along a row", loss_inputs(4), seq),
        ("token-mean, another batch", loss_inputs(5), tok),
    ]
    cases = []
    for name, tensors, aggregation in inputs:
        args = (*tensors, 0.2, 0.315, 0.115, aggregation)
        cases.append(loss_case(name, fn, args))
    logp, *rest = loss_inputs(6)
    args = (logp.clone().requires_grad_(True), *rest, 0.2, 0.315, 0.115, seq)
    case = loss_case("the loss keeps its gradient", fn, args, same=carries_gradient)
    case.mistakes.append(symptom(DETACHED, lambda got: detached(got, case.expected)))
    cases.append(case)
    return run_check("the clipped loss with ELC (Eqs. 1, 2, 11, 12)", cases)


def loss_case(name, fn, args, same=None) -> Case:
    logp, old, adv, mask, elc, eps_low, eps_high, eps_elc, aggregation = args
    bounds = clip_bounds(elc, eps_low, eps_elc)
    with torch.no_grad():
        expected = clipped_policy_loss(logp, old, adv, mask, bounds, eps_high, aggregation)[0]
        mistakes = [
            wrong(hint, outcome_of(loss_with, *args, **knobs)) for hint, knobs in LOSS_KNOBS.items()
        ]
    shown = f"[4, 12] tensors, action tokens per row {mask.sum(-1).int().tolist()}"
    shown += f", aggregation={aggregation!r}"
    return make_case(name, fn, args, expected, mistakes, shown, same)
