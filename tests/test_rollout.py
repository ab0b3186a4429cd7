"""The rollout engine, with either decoder: recorded log-probs, masks, truncation, prefixes,
formats. (tests/test_fast_decoder.py holds the fast decoder to the plain one.)"""

import pytest
import torch
from conftest import next_token_log_probs

from elpo_min import toy
from elpo_min.fast_decoder import FastDecoder
from elpo_min.fast_update import chunked_token_logprobs
from elpo_min.rollout import (
    PlainDecoder,
    RolloutEngine,
    cache_keyword,
    sample_tokens,
    token_entropy,
)
from elpo_min.tasks import FencedFormat
from elpo_min.tools import run_arith
from elpo_min.trajectory import collate

PROBLEMS = toy.generate_problems(6, seed=123)
DECODERS = {"plain": PlainDecoder, "fast": FastDecoder}


@pytest.fixture(scope="module", params=list(DECODERS))
def make_engine(request, shipped_policy):
    """``make_engine(model=None, **options)``: an engine on the shipped policy with one decoder."""
    model, tok = shipped_policy

    def make(inner=None, **options):
        return RolloutEngine(
            inner or model, tok, tool=run_arith, decoder=DECODERS[request.param], **options
        )

    return make


@pytest.fixture(scope="module")
def sampled(make_engine):
    torch.manual_seed(0)
    engine = make_engine(temperature=1.0)
    groups = engine.rollout([engine.start(p) for p in PROBLEMS], 4)
    return engine, [t for g in groups for t in g]


def teacher_forced(model, trajs, pad_id, temperature=1.0):
    """The recorded values recomputed from the finished sequences: each token's log-prob by the
    trainer's memory-saving head (the training path), and the entropy of the distribution it was
    sampled from by a plain full-vocabulary forward (Eq. 3), both aligned with the tokens they
    score."""
    batch = collate(trajs, pad_id)
    with torch.no_grad():
        logp = chunked_token_logprobs(
            model, batch["input_ids"], batch["attention_mask"], temperature, chunk=37
        )  # [B, T]
        log_probs = next_token_log_probs(
            model, batch["input_ids"], batch["attention_mask"], temperature
        )  # [B, T-1, V]
        entropy = torch.zeros_like(logp)  # [B, T]
        entropy[:, 1:] = token_entropy(log_probs)  # [B, T-1]
    return batch, logp, entropy


def test_batch_contains_tool_outputs_and_both_outcomes(sampled):
    _, trajs = sampled
    assert all(t.num_steps >= 1 for t in trajs)
    assert any(t.success for t in trajs) and any(not t.success for t in trajs)


def test_sampling_logprobs_equal_teacher_forced(sampled, shipped_policy):
    model, tok = shipped_policy
    _, trajs = sampled
    batch, logp, entropy = teacher_forced(model, trajs, tok.pad_token_id)
    mask = batch["action_mask"].bool()
    assert mask.sum() > 500
    assert torch.allclose(logp[mask], batch["old_logp"][mask], atol=1e-4)
    recorded_h = torch.zeros_like(entropy)
    for row, t in enumerate(trajs):
        recorded_h[row, : len(t.entropies)] = torch.tensor(t.entropies)
    assert torch.allclose(entropy[mask], recorded_h[mask], atol=1e-4)


def test_temperature_is_part_of_the_recorded_distribution(make_engine, shipped_policy):
    model, tok = shipped_policy
    torch.manual_seed(1)
    engine = make_engine(temperature=0.7)
    trajs = engine.rollout([engine.start(PROBLEMS[0])], 4)[0]
    batch, logp, _ = teacher_forced(model, trajs, tok.pad_token_id, temperature=0.7)
    mask = batch["action_mask"].bool()
    assert torch.allclose(logp[mask], batch["old_logp"][mask], atol=1e-4)


def test_masks_zero_on_tool_outputs_one_on_sampled(sampled):
    _, trajs = sampled
    for t in trajs:
        expected = [0] * t.prompt_len
        for turn in t.turns:
            expected += [1] * (turn.end - turn.start) + [0] * (turn.out_end - turn.end)
        assert t.action_mask == expected
        assert len(t.token_ids) == len(t.logprobs) == len(t.entropies) == len(expected)
        assert all(lp == 0.0 for lp, m in zip(t.logprobs, t.action_mask) if m == 0)


def test_continuation_starts_with_the_exact_prefix(sampled, shipped_policy):
    model, tok = shipped_policy
    engine, trajs = sampled
    parent = max(trajs, key=lambda t: t.num_steps)
    m = parent.num_steps // 2 + 1
    prefix = parent.prefix(m)
    torch.manual_seed(2)
    children = engine.rollout([prefix], 4)[0]
    cut = parent.turns[m - 1].out_end
    for child in children:
        assert child.token_ids[:cut] == parent.token_ids[:cut]
        assert child.action_mask[:cut] == parent.action_mask[:cut]
        assert child.tool_outputs[:m] == parent.tool_outputs[:m]
        assert child.num_steps >= m
    batch, logp, _ = teacher_forced(model, children, tok.pad_token_id)
    mask = batch["action_mask"].bool()
    assert torch.allclose(logp[mask], batch["old_logp"][mask], atol=1e-4)


def test_sampler_draws_what_multinomial_draws():
    """sample_tokens replaces torch.multinomial (whose host-side check a CUDA graph cannot hold)
    with the same computation on the same random stream: same tokens, seed for seed."""
    logits = torch.randn(64, 97) * 3  # [B, V]
    for top_p in (1.0, 0.8):
        torch.manual_seed(7)
        token, logp, entropy = sample_tokens(logits, 0.7, top_p)
        log_probs = (logits / 0.7).log_softmax(-1)
        probs = log_probs.exp()
        if top_p < 1:  # the nucleus, written out independently
            sorted_p, order = probs.sort(-1, descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p <= top_p
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p * keep)
        torch.manual_seed(7)
        expected = torch.multinomial(probs, 1)
        assert torch.equal(token, expected)
        exact = (logits.double() / 0.7).log_softmax(-1)  # [B, V]
        assert torch.allclose(logp.double(), exact.gather(-1, expected).squeeze(-1), atol=1e-6)
        assert torch.allclose(entropy.double(), -(exact.exp() * exact).sum(-1), atol=1e-6)


def test_prefix_bounds(sampled):
    _, trajs = sampled
    t = trajs[0]
    assert t.prefix(0).token_ids == t.token_ids[: t.prompt_len]
    with pytest.raises(ValueError, match="prefix"):
        t.prefix(t.num_steps + 1)


@pytest.mark.parametrize("limits", [{"max_turns": 2}, {"max_new_tokens": 4}])
def test_truncation_is_a_failure_with_masks_intact(make_engine, limits):
    torch.manual_seed(3)
    engine = make_engine(**limits)
    long_problem = toy.Problem(123, (("+", 111),) * 5, id="long")
    trajs = engine.rollout([engine.start(long_problem)], 3)[0]
    for t in trajs:
        assert t.truncated and t.done and not t.success and t.reward == 0.0
        assert len(t.action_mask) == len(t.token_ids) and sum(t.action_mask) > 0
        assert len(t.turns) <= limits.get("max_turns", 10)


def test_prompt_longer_than_the_context_is_refused(make_engine):
    engine = make_engine()
    huge = toy.Problem(1, (("+", 123456789),) * 100, id="huge")
    with pytest.raises(ValueError, match="longer than the model's context"):
        engine.start(huge)


class PastKeyValuesOnly(torch.nn.Module):
    """A model whose forward only knows ``past_key_values`` (transformers <= 5.17)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.config = inner, inner.config

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        use_cache=None,
        logits_to_keep=0,
    ):
        return self.inner(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            **{cache_keyword(self.inner): past_key_values},
        )


def test_engine_picks_the_cache_keyword_by_signature(make_engine, shipped_policy):
    model, tok = shipped_policy
    old_style = PastKeyValuesOnly(model)
    assert cache_keyword(old_style) == "past_key_values"
    torch.manual_seed(4)
    a = make_engine(old_style).rollout([make_engine().start(PROBLEMS[1])], 2)[0]
    torch.manual_seed(4)
    b = make_engine().rollout([make_engine().start(PROBLEMS[1])], 2)[0]
    assert [t.token_ids for t in a] == [t.token_ids for t in b]


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_chat_format_is_fenced_inside_the_template(tiny_tokenizer):
    tok = tiny_tokenizer
    tok.chat_template = CHAT_TEMPLATE
    try:
        fmt = FencedFormat.for_chat(tok, "Use Python.")
        assert (fmt.output_open, fmt.output_close) == ("\n```output\n", "\n```\n")
        assert (
            fmt.prompt_text(tok, "2+2?")
            == "<|system|>Use Python.<eos><|user|>2+2?<eos><|assistant|>"
        )
        assert fmt.parse("let me\n```python\nprint(2+2)\n```") == ("print(2+2)\n", None)
        assert fmt.parse("so \\boxed{4} or \\boxed{5}.") == (None, "5")  # the last box
        assert fmt.turn_ends("```python\nx = 1\n```") and not fmt.turn_ends("```python\nx = 1")
        assert not fmt.turn_ends("\\boxed{4}")  # a fenced answer turn ends at end-of-sequence
    finally:
        tok.chat_template = None


def test_instruct_model_without_chat_template_is_refused(tiny_tokenizer):
    with pytest.raises(ValueError, match="no chat template"):
        FencedFormat.for_chat(tiny_tokenizer, "system")
