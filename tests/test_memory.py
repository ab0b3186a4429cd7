"""Training memory: micro-batch accumulation gives the one-pass update. (The memory-saving
head is tested against the textbook log-probs in test_fast_update.py.)"""

import pytest
import torch

from elpo_min import toy
from elpo_min.config import Config
from elpo_min.models import load_policy
from elpo_min.rollout import RolloutEngine
from elpo_min.tools import run_arith
from elpo_min.train import grpo_trees, policy_update, training_batch


@pytest.fixture(scope="module")
def sampled_batch(shipped_policy):
    model, tok = shipped_policy
    torch.manual_seed(3)
    trees = grpo_trees(
        RolloutEngine(model, tok, tool=run_arith), toy.generate_problems(2, seed=9), 4
    )
    return trees, tok


@pytest.mark.parametrize("aggregation", ["seq-mean-token-mean", "token-mean"])
def test_micro_batch_accumulation_gives_the_one_pass_update(sampled_batch, aggregation):
    trees, tok = sampled_batch
    results = []
    for micro in (0, 3):
        cfg = Config(algo="grpo", aggregation=aggregation, micro_batch_size=micro, lr=1e-2)
        batch, _ = training_batch(trees, cfg, tok.pad_token_id)
        # ratios off 1: clipping binds
        batch["old_logp"] = batch["old_logp"] - 0.1 * batch["action_mask"]
        model, _ = load_policy()
        torch.manual_seed(0)
        stats = policy_update(model, torch.optim.SGD(model.parameters(), lr=1.0), batch, cfg)
        results.append((stats, [p.detach().clone() for p in model.parameters()]))
    (one, p_one), (acc, p_acc) = results
    assert one["loss"] == pytest.approx(acc["loss"], rel=1e-5, abs=1e-7)
    assert one["loss"] != 0.0
    moved = sum((a - b).abs().sum() for a, b in zip(p_one, load_policy()[0].parameters()))
    assert moved > 1e-3
    for a, b in zip(p_one, p_acc):
        assert torch.allclose(a, b, atol=1e-6)
