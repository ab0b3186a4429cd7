"""The clipped objective with ELC (paper Eqs. 1, 2, 11 and 12), checked by hand."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from elpo_min import clip_bounds, clipped_policy_loss


def test_clip_bounds_on_and_off_the_error_suffix():
    eps_low = clip_bounds(torch.tensor([[1.0, 0.0]]), eps_low=0.2, eps_elc=0.115)
    lower, upper = 1 - eps_low, 1 + 0.315
    assert lower.tolist()[0] == pytest.approx([0.685, 0.8]) and upper == pytest.approx(1.315)


def objective(r, a, lo, hi):
    return min(r * a, min(max(r, lo), hi) * a)


@pytest.mark.parametrize(
    "ratio, adv, elc, expected",
    [
        (0.5, -1.0, 0.0, objective(0.5, -1, 0.8, 1.315)),  # clipped at 0.8: -0.8
        (0.5, -1.0, 1.0, objective(0.5, -1, 0.685, 1.315)),  # ELC: clipped at 0.685
        (0.75, -1.0, 1.0, -0.75),  # inside [0.685, 1.315]: unclipped
        (0.75, -1.0, 0.0, -0.8),  # outside [0.8, ...]: clipped
        (2.0, 1.0, 1.0, 1.315),  # upper bound unchanged by ELC
        (0.5, 1.0, 1.0, 0.5),  # A > 0: lower bound never binds
    ],
)
def test_single_token_objective(ratio, adv, elc, expected):
    logp = torch.tensor([[math.log(ratio)]])
    eps_low = clip_bounds(torch.tensor([[elc]]))
    loss, _ = clipped_policy_loss(
        logp, torch.zeros(1, 1), torch.tensor([[adv]]), torch.ones(1, 1), eps_low, 0.315
    )
    assert loss.item() == pytest.approx(-expected)


def test_aggregations_on_a_two_sequence_example():
    # ratios all 1, so objective = A on every action token
    adv = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    zeros = torch.zeros(2, 4)
    loss, _ = clipped_policy_loss(zeros, zeros, adv, mask, 0.2, 0.315)
    assert loss.item() == pytest.approx(-((1 + 2 + 3) / 3 + 4 / 1) / 2)  # -3.0
    loss, _ = clipped_policy_loss(zeros, zeros, adv, mask, 0.2, 0.315, aggregation="token-mean")
    assert loss.item() == pytest.approx(-(1 + 2 + 3 + 4) / 4)  # -2.5


def test_sequence_without_action_tokens_is_excluded():
    adv = torch.tensor([[2.0, 2.0], [5.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    zeros = torch.zeros(2, 2)
    for agg in ("seq-mean-token-mean", "token-mean"):
        loss, stats = clipped_policy_loss(zeros, zeros, adv, mask, 0.2, 0.315, aggregation=agg)
        assert loss.item() == pytest.approx(-2.0) and math.isfinite(stats["clip_frac"])
    loss, stats = clipped_policy_loss(zeros, zeros, adv, torch.zeros(2, 2), 0.2, 0.315)
    assert loss.item() == 0.0 and stats["clip_frac"] == 0.0


def test_clip_fraction_and_regions():
    logp = torch.log(torch.tensor([[0.5, 0.5, 1.0, 2.0]]))
    adv = torch.tensor([[-1.0, -1.0, 1.0, 1.0]])
    region = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    _, stats = clipped_policy_loss(
        logp, torch.zeros(1, 4), adv, torch.ones(1, 4), clip_bounds(region), 0.315, region=region
    )
    # token 0: 0.5 < 0.685 clipped; token 1: 0.5 < 0.8 clipped; token 3: 2 > 1.315 clipped
    assert stats["clip_frac"] == pytest.approx(0.75)
    assert stats["clip_frac_in_region"] == 1.0 and stats["clip_frac_out_region"] == pytest.approx(
        2 / 3
    )


def test_unknown_aggregation_is_refused():
    z = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="aggregation"):
        clipped_policy_loss(z, z, z, z, 0.2, 0.3, aggregation="sum")


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), agg=st.sampled_from(["seq-mean-token-mean", "token-mean"]))
def test_gradient_is_zero_on_masked_tokens(seed, agg):
    g = torch.Generator().manual_seed(seed)
    logp = (torch.randn(3, 5, generator=g) * 0.3).requires_grad_()
    mask = (torch.rand(3, 5, generator=g) > 0.5).float()
    adv = torch.randn(3, 5, generator=g)
    eps_low = clip_bounds((torch.rand(3, 5, generator=g) > 0.5).float())
    loss, _ = clipped_policy_loss(logp, torch.zeros(3, 5), adv, mask, eps_low, 0.315, agg)
    loss.backward()
    assert torch.all(logp.grad[mask == 0] == 0)


def test_all_equal_rewards_give_finite_zero_loss():
    logp = torch.randn(2, 3, requires_grad=True)
    loss, _ = clipped_policy_loss(
        logp, torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 3), 0.2, 0.315
    )
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(logp.grad).all()
