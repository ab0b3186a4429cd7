"""The fast decoder against its reference, the plain loop of elpo_min.rollout, and its parts.

Under one seed both decoders draw one sample per row per step from the same random stream, so
they sample the same tokens; what may differ is float rounding, from attention over padded
columns and caches of other shapes. The reference test holds that to 1e-5 on CPU.
"""

import pytest
import torch

from elpo_min import toy
from elpo_min.fast_decoder import FastDecoder, KVSlots
from elpo_min.fast_decoder.attention import packed_sdpa
from elpo_min.logprobs import token_logprobs
from elpo_min.rollout import PlainDecoder, RolloutEngine, cache_keyword
from elpo_min.tools import run_arith
from elpo_min.trajectory import collate

PROBLEMS = toy.generate_problems(6, seed=123)


def rollout_with(decoder, model, tok, seeds, n, seed):
    engine = RolloutEngine(model, tok, tool=run_arith, decoder=decoder)
    torch.manual_seed(seed)
    return [t for group in engine.rollout(seeds, n) for t in group]


def assert_same_samples(plain, fast):
    """Same tokens and masks; recorded log-probs and entropies within 1e-5."""
    assert [t.token_ids for t in plain] == [t.token_ids for t in fast]
    assert [t.action_mask for t in plain] == [t.action_mask for t in fast]
    for a, b in zip(plain, fast):
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5)
        assert torch.allclose(torch.tensor(a.entropies), torch.tensor(b.entropies), atol=1e-5)


@pytest.fixture(scope="module")
def both(shipped_policy):
    model, tok = shipped_policy
    engine = RolloutEngine(model, tok, tool=run_arith)
    seeds = [engine.start(p) for p in PROBLEMS]
    plain = rollout_with(PlainDecoder, model, tok, seeds, 4, seed=11)
    fast = rollout_with(FastDecoder, model, tok, seeds, 4, seed=11)
    return plain, fast


def test_first_turns_sample_the_same_tokens_with_the_same_logprobs(both):
    plain, fast = both
    first = [t.turns[0].end for t in plain]
    assert_same_samples(
        [first_tokens(t, end) for t, end in zip(plain, first)],
        [first_tokens(t, end) for t, end in zip(fast, first)],
    )


def test_turns_after_a_tool_output_agree_too(both):
    plain, fast = both
    assert sum(t.num_steps >= 2 for t in plain) >= 10  # many turns follow a tool output
    assert_same_samples(plain, fast)
    assert [t.reward for t in plain] == [t.reward for t in fast]


def test_continuations_from_prefix_m_agree(both, shipped_policy):
    model, tok = shipped_policy
    plain, _ = both
    parents = [t for t in plain if t.num_steps >= 3][:4]
    prefixes = [t.prefix(m) for t in parents for m in (1, 2)]
    a = rollout_with(PlainDecoder, model, tok, prefixes, 3, seed=12)
    b = rollout_with(FastDecoder, model, tok, prefixes, 3, seed=12)
    assert_same_samples(a, b)
    cut = prefixes[0].turns[-1].out_end
    assert all(t.token_ids[:cut] == parents[0].token_ids[:cut] for t in a[:3])


def first_tokens(traj, end):
    """The trajectory's first ``end`` tokens, as a stand-in with the fields compared."""
    return type(traj)(
        traj.problem,
        traj.token_ids[:end],
        traj.action_mask[:end],
        traj.logprobs[:end],
        traj.entropies[:end],
        traj.prompt_len,
    )


class FeedCounter(torch.nn.Module):
    """Records (rows, ids) of every multi-token forward: what the decoder prefills."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.config, self.prefills = inner, inner.config, []

    def forward(self, input_ids=None, cache=None, **kwargs):
        if input_ids.shape[1] > 1:
            self.prefills.append(tuple(input_ids.shape))
        return self.inner(input_ids=input_ids, **{cache_keyword(self.inner): cache}, **kwargs)


def test_shared_prefixes_prefill_once_and_turns_feed_only_new_tokens(shipped_policy):
    model, tok = shipped_policy
    counter = FeedCounter(model)
    engine = RolloutEngine(counter, tok, tool=run_arith, decoder=FastDecoder)
    torch.manual_seed(4)
    seeds = [engine.start(p) for p in PROBLEMS[:2]]
    trajs = [t for g in engine.rollout(seeds, 5) for t in g]
    rows, width = counter.prefills[0]
    # 10 rows, 2 distinct prompts
    assert rows == 2 and width == max(len(s.token_ids) for s in seeds)
    assert len(counter.prefills) >= 2
    longest_context = max(len(t.token_ids) for t in trajs)
    for _rows, width in counter.prefills[
        1:
    ]:  # the last sampled token plus one tool output, not the context
        assert width < longest_context / 2
    batch = collate(trajs, tok.pad_token_id)
    with torch.no_grad():
        logp = token_logprobs(model, batch["input_ids"], batch["attention_mask"])
    mask = batch["action_mask"].bool()
    assert torch.allclose(logp[mask], batch["old_logp"][mask], atol=1e-4)


def test_kv_slots_branch_and_widen_rows():
    slots = KVSlots(batch=2, length=4, device="cpu")
    key = torch.arange(2 * 3 * 2 * 5, dtype=torch.float).view(2, 3, 2, 5)  # [B, H, n, D]
    keys, _ = slots.update(key, -key, 0)
    assert torch.equal(keys[:, :, :2], key) and keys[:, :, 2:].abs().sum() == 0
    slots.valid[:, :2] = True
    branched = slots.select(torch.tensor([1, 1, 0]), length=8)
    assert branched.keys[0].shape == (3, 3, 8, 5) and branched.valid.shape == (3, 8)
    assert torch.equal(branched.keys[0][0, :, :2], key[1]) and torch.equal(
        branched.values[0][2, :, :2], -key[0]
    )
    assert branched.valid[:, :2].all() and not branched.valid[:, 2:].any()


def test_packed_decode_attention_equals_transformers_sdpa():
    """One query token: folding query heads into rows of their shared KV head (no repeat_kv
    copy of the cache) must give transformers' own sdpa result, head for head."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal, module.training = 3, True, False
    torch.manual_seed(0)
    query, key, value = torch.randn(2, 6, 1, 8), torch.randn(2, 2, 5, 8), torch.randn(2, 2, 5, 8)
    mask = torch.zeros(2, 1, 1, 5).masked_fill_(
        torch.tensor([[0, 1, 0, 0, 1], [0, 0, 0, 1, 1]]).bool()[:, None, None],
        torch.finfo(torch.float).min,
    )
    expected, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=0.3)
    got, _ = packed_sdpa(module, query, key, value, mask, scaling=0.3)
    assert got.shape == expected.shape == (2, 1, 6, 8)
    assert torch.allclose(got, expected, atol=1e-6)
