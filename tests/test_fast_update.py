"""The update's fast path against the core's textbook: the memory-saving head computes the
same log-probs and gradients as a full-vocabulary log_softmax, keeps no [tokens, vocab] tensor
for backward, and leaves a caller's mask alone."""

import copy

import pytest
import torch

from elpo_min.fast_update import ChunkedLogProbs, chunked_token_logprobs
from elpo_min.logprobs import LogProbs, token_logprobs
from elpo_min.models import load_policy


@pytest.fixture(scope="module")
def batch_of_ids():
    torch.manual_seed(0)
    model, _ = load_policy()
    ids = torch.randint(3, model.config.vocab_size, (3, 41))
    attn = torch.ones_like(ids)
    attn[1, 30:] = 0  # a right-padded row
    attn[2, :6] = 0  # a left-padded row
    mask = (torch.rand(ids.shape) < 0.6).float() * attn
    return ids, attn, mask


@pytest.mark.parametrize("chunk", [1, 7, 1024])
def test_the_chunked_head_equals_the_textbook_logprobs_and_gradients_in_float64(
    batch_of_ids, chunk
):
    ids, attn, mask = batch_of_ids
    model = load_policy()[0].double()
    # random weights everywhere, so every parameter's gradient is exercised, not a trained one's
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    twin = copy.deepcopy(model)
    textbook = token_logprobs(twin, ids, attn, 0.7, target_mask=mask)  # [B, T]
    chunked = chunked_token_logprobs(model, ids, attn, 0.7, chunk=chunk, target_mask=mask)
    wanted = mask.bool()
    wanted[:, 0] = False
    assert wanted.sum() > 40
    # both say 0 where no log-prob was asked for
    assert chunked[~wanted].abs().sum() == 0 and textbook[~wanted].abs().sum() == 0
    assert chunked.dtype == textbook.dtype == torch.float64
    assert (chunked - textbook).abs().max() < 1e-10
    weights = torch.randn(ids.shape, dtype=torch.float64) * wanted  # [B, T]
    (textbook * weights).sum().backward()
    (chunked * weights).sum().backward()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        assert q.grad.norm() > 0, name
        assert (p.grad - q.grad).abs().max() < 1e-10, name


def test_the_trainer_modules_agree_and_take_the_same_arguments(batch_of_ids):
    ids, attn, mask = batch_of_ids
    model, _ = load_policy()
    with torch.no_grad():
        textbook = LogProbs(model)(ids, attn, mask, 0.7)
        chunked = ChunkedLogProbs(model, chunk=5)(ids, attn, mask, 0.7)
    assert torch.allclose(textbook, chunked, atol=1e-5)


def test_a_boolean_target_mask_is_left_as_the_caller_made_it(batch_of_ids):
    ids, attn, mask = batch_of_ids
    model, _ = load_policy()
    flags = mask.bool()  # [B, T]
    before = flags.clone()
    with torch.no_grad():
        from_flags = chunked_token_logprobs(model, ids, attn, target_mask=flags)  # [B, T]
        from_floats = chunked_token_logprobs(model, ids, attn, target_mask=mask)  # [B, T]
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
        chunked_token_logprobs(model, ids, attn, chunk=16, target_mask=mask)
    assert saved  # the decoder's activations are seen, so the hook works
    assert not [s for s in saved if s[-1] == vocab], (
        "a [tokens, vocab] tensor was saved for backward"
    )
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        token_logprobs(model, ids, attn)
    assert [s for s in saved if s[-1] == vocab]  # ... while the textbook computation keeps one
