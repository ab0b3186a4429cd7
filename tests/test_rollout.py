"""The rollout engine: recorded log-probs, masks, truncation, prefixes, formats."""

import pytest
import torch

from elpo_min import toy
from elpo_min.models import cache_keyword, token_logprobs
from elpo_min.rollout import RolloutEngine, TurnFormat, collate

PROBLEMS = toy.generate_problems(6, seed=123)


@pytest.fixture(scope="module")
def sampled(shipped_policy):
    model, tok = shipped_policy
    torch.manual_seed(0)
    engine = RolloutEngine(model, tok, temperature=1.0)
    groups = engine.rollout([engine.start(p) for p in PROBLEMS], 4)
    return engine, [t for g in groups for t in g]


def teacher_forced(model, trajs, pad_id, temperature=1.0):
    batch = collate(trajs, pad_id)
    with torch.no_grad():
        logp, entropy = token_logprobs(model, batch["input_ids"], batch["attention_mask"],
                                       temperature, chunk=37, with_entropy=True)
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
        recorded_h[row, :len(t.entropies)] = torch.tensor(t.entropies)
    assert torch.allclose(entropy[mask], recorded_h[mask], atol=1e-4)


def test_temperature_is_part_of_the_recorded_distribution(shipped_policy):
    model, tok = shipped_policy
    torch.manual_seed(1)
    engine = RolloutEngine(model, tok, temperature=0.7)
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


def test_prefix_bounds(sampled):
    _, trajs = sampled
    t = trajs[0]
    assert t.prefix(0).token_ids == t.token_ids[:t.prompt_len]
    with pytest.raises(ValueError, match="prefix"):
        t.prefix(t.num_steps + 1)


@pytest.mark.parametrize("limits", [{"max_turns": 2}, {"max_new_tokens": 4}])
def test_truncation_is_a_failure_with_masks_intact(shipped_policy, limits):
    model, tok = shipped_policy
    torch.manual_seed(3)
    engine = RolloutEngine(model, tok, **limits)
    long_problem = toy.Problem(123, (("+", 111),) * 5, id="long")
    trajs = engine.rollout([engine.start(long_problem)], 3)[0]
    for t in trajs:
        assert t.truncated and t.done and not t.success and t.reward == 0.0
        assert len(t.action_mask) == len(t.token_ids) and sum(t.action_mask) > 0
        assert len(t.turns) <= limits.get("max_turns", 10)


def test_prompt_longer_than_the_context_is_refused(shipped_policy):
    model, tok = shipped_policy
    engine = RolloutEngine(model, tok)
    huge = toy.Problem(1, (("+", 123456789),) * 100, id="huge")
    with pytest.raises(ValueError, match="longer than the model's context"):
        engine.start(huge)


class PastKeyValuesOnly(torch.nn.Module):
    """A model whose forward only knows ``past_key_values`` (transformers <= 5.17)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.config = inner, inner.config

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                use_cache=None, logits_to_keep=0):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                          position_ids=position_ids, use_cache=use_cache,
                          logits_to_keep=logits_to_keep, **{cache_keyword(self.inner): past_key_values})


def test_engine_picks_the_cache_keyword_by_signature(shipped_policy):
    model, tok = shipped_policy
    old_style = PastKeyValuesOnly(model)
    assert cache_keyword(old_style) == "past_key_values"
    torch.manual_seed(4)
    a = RolloutEngine(old_style, tok).rollout([RolloutEngine(model, tok).start(PROBLEMS[1])], 2)[0]
    torch.manual_seed(4)
    b = RolloutEngine(model, tok).rollout([RolloutEngine(model, tok).start(PROBLEMS[1])], 2)[0]
    assert [t.token_ids for t in a] == [t.token_ids for t in b]


CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<eos>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_chat_format_frames_tool_output_from_the_template(tiny_tokenizer):
    tok = tiny_tokenizer
    tok.chat_template = CHAT_TEMPLATE
    try:
        fmt = TurnFormat.for_chat(tok, "Use <code> for Python.", style="tags")
        assert fmt.output_open == "<eos><|user|>Output:\n"
        assert fmt.output_close == "<eos><|assistant|>"
        assert fmt.prompt_text(tok, "2+2?") == ("<|system|>Use <code> for Python.<eos>"
                                                "<|user|>2+2?<eos><|assistant|>")
        assert fmt.parse("let me <code>print(2+2)</code>") == ("print(2+2)", None)
        assert fmt.parse("<answer>4</answer>") == (None, "4")
    finally:
        tok.chat_template = None


def test_instruct_model_without_chat_template_is_refused(tiny_tokenizer):
    with pytest.raises(ValueError, match="no chat template"):
        TurnFormat.for_chat(tiny_tokenizer, "system")
