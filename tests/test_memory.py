"""Training memory: chunked log-probs are exact and keep no [tokens, vocab] tensor for backward;
micro-batch accumulation gives the one-pass update."""

import copy

import pytest
import torch
from conftest import next_token_log_probs

from elpo_min import toy
from elpo_min.config import Config
from elpo_min.logprobs import token_logprobs
from elpo_min.models import load_policy
from elpo_min.rollout import RolloutEngine
from elpo_min.tools import run_arith
from elpo_min.train import grpo_trees, policy_update, training_batch


def plain_logprobs(model, ids, attn, temperature):
    """The textbook computation: full [B, T, V] logits, log_softmax, gather."""
    log_probs = next_token_log_probs(model, ids, attn, temperature)  # [B, T-1, V]
    logp = log_probs.gather(-1, ids[:, 1:, None]).squeeze(-1)  # [B, T-1]
    return torch.nn.functional.pad(logp, (1, 0))


@pytest.fixture(scope="module")
def batch_of_ids():
    torch.manual_seed(0)
    model, _ = load_policy()
    ids = torch.randint(3, model.config.vocab_size, (3, 41))
    attn = torch.ones_like(ids)
    attn[1, 30:] = 0  # a right-padded row
    mask = (torch.rand(ids.shape) < 0.6).float() * attn
    return ids, attn, mask


@pytest.mark.parametrize("chunk", [1, 7, 1024])
def test_chunked_logprobs_and_gradients_equal_the_plain_computation(batch_of_ids, chunk):
    ids, attn, mask = batch_of_ids
    model, _ = load_policy()
    twin = copy.deepcopy(model)
    plain = plain_logprobs(twin, ids, attn, 0.7)
    chunked = token_logprobs(model, ids, attn, 0.7, chunk=chunk, target_mask=mask)
    wanted = mask.bool()
    wanted[:, 0] = False
    assert torch.allclose(chunked[wanted], plain[wanted], atol=1e-5)
    assert chunked[~wanted].abs().sum() == 0  # positions not asked for stay 0
    (plain * wanted).sum().backward()
    (chunked * wanted).sum().backward()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        assert (p.grad - q.grad).norm() <= 1e-5 * q.grad.norm() + 1e-7, name


def test_a_boolean_target_mask_is_left_as_the_caller_made_it(batch_of_ids):
    ids, attn, mask = batch_of_ids
    model, _ = load_policy()
    flags = mask.bool()  # [B, T]
    before = flags.clone()
    with torch.no_grad():
        from_flags = token_logprobs(model, ids, attn, target_mask=flags)  # [B, T]
        from_floats = token_logprobs(model, ids, attn, target_mask=mask)  # [B, T]
    assert torch.equal(flags, before) and before[:, 0].any()
    assert torch.equal(from_flags, from_floats)


def test_no_vocabulary_sized_activation_is_kept_for_backward(batch_of_ids):
    ids, attn, mask = batch_of_ids
    model, _ = load_policy()
    vocab, saved = model.config.vocab_size, []

    def keep(t):
        saved.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        token_logprobs(model, ids, attn, chunk=16, target_mask=mask)
    assert saved  # the decoder's activations are seen, so the hook works
    assert not [s for s in saved if s[-1] == vocab], (
        "a [tokens, vocab] tensor was saved for backward"
    )
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        plain_logprobs(model, ids, attn, 1.0)
    assert [s for s in saved if s[-1] == vocab]  # ... while the plain computation keeps one


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
