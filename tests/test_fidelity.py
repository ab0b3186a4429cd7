"""Real-tokenizer fidelity: exact sampling log-probs at a 150k vocabulary, the tool output framed
the way the model itself would write it, every end id stopping a turn, and cold-start
demonstrations built exactly as the engine builds trajectories.

A scripted decoder (the decoder protocol of elpo_min.rollout) plays back chosen token ids, so
these tests control the very tokenization a real model might produce.
"""

import pytest
import torch
from conftest import scripted_rollouts

from elpo_min.rollout import sample_tokens
from elpo_min.sft import chat_example
from elpo_min.tasks import FencedFormat, WordProblem
from elpo_min.tools import ToolResult

VOCAB = 151_669


def peaked_logits(rows: int = 4) -> torch.Tensor:
    """One token at 0 and 150k tokens near -17 (each below float32's resolution next to 1):
    the tail holds 0.7% of the mass, which a float32 running sum drops."""
    torch.manual_seed(0)
    logits = -17.0 + 0.5 * torch.randn(rows, VOCAB)
    logits[:, 7] = 0.0
    return logits


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampled_logprobs_and_entropies_match_float64_at_a_150k_vocabulary(temperature):
    logits = peaked_logits()
    torch.manual_seed(1)
    token, logp, entropy = sample_tokens(logits, temperature)
    reference = (logits.double() / temperature).log_softmax(-1)  # [B, V]
    expected_logp = reference.gather(-1, token).squeeze(-1)
    expected_entropy = -(reference.exp() * reference).sum(-1)
    assert (logp.double() - expected_logp).abs().max() < 1e-5
    assert (entropy.double() - expected_entropy).abs().max() < 1e-5


def scripted_engine(model, tok, turns, outputs, max_turns=4):
    """The fenced chat format's engine playing back ``turns``; the tool prints ``outputs``."""
    outputs = list(outputs)

    def tool(codes, histories):
        return [ToolResult(stdout=outputs.pop(0) + "\n") for _ in codes]

    return scripted_rollouts(model, tok, FencedFormat.for_chat(tok), turns, tool, max_turns)


@pytest.fixture(scope="module")
def close_tokenizer():
    """A byte-level BPE in which the close of a python block has two tokenizations: the token
    for ``` followed by one for a newline, or a single token for ```\\n."""
    from conftest import CHATML
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    text = [f"Compute.\n```python\nprint({i})\n```\n```output\n{i}\n```\n" for i in range(50)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(text * 3, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<|endoftext|>", eos_token="<|im_end|>"
    )
    fast.chat_template = CHATML
    for piece in ("```", "```\n"):
        if len(fast.encode(piece, add_special_tokens=False)) != 1:
            fast.add_tokens([AddedToken(piece, normalized=False)])
    return fast


def test_the_output_reads_the_same_whichever_way_the_model_closed_its_block(
    close_tokenizer, bpe_chat_policy
):
    model, _, _ = bpe_chat_policy
    tok = close_tokenizer
    encode = lambda text: tok.encode(text, add_special_tokens=False)  # noqa: E731
    body = encode("Compute.\n```python\nprint(12)\n")
    closes = {"``` then newline": encode("```") + encode("\n"), "```\\n": encode("```\n")}
    assert len(closes["```\\n"]) == 1 and len(closes["``` then newline"]) == 2
    answer = encode("So \\boxed{12}.") + [tok.eos_token_id]
    texts = {}
    for name, close in closes.items():
        engine = scripted_engine(model, tok, [body + close, answer], ["12"])
        traj = engine.rollout([engine.start(WordProblem("What is 12?", "12"))], 1)[0][0]
        turn = traj.turns[0]
        assert traj.num_steps == 1 and traj.success, name
        texts[name] = tok.decode(traj.token_ids[turn.start : turn.out_end])
    expected = "Compute.\n```python\nprint(12)\n```\n```output\n12\n```\n"
    assert texts == {name: expected for name in closes}


def test_every_end_id_of_the_model_and_the_tokenizer_stops_a_turn(bpe_chat_policy):
    model, tok, _ = bpe_chat_policy
    end_of_text = tok.convert_tokens_to_ids("<|endoftext|>")
    assert end_of_text != tok.eos_token_id
    model.generation_config.eos_token_id = [tok.eos_token_id, end_of_text]
    try:
        answer = tok.encode("So \\boxed{13}.", add_special_tokens=False)
        for end in (tok.eos_token_id, end_of_text):
            engine = scripted_engine(model, tok, [answer + [end] + answer], [])
            assert engine.stops(answer + [end])
            traj = engine.rollout([engine.start(WordProblem("13?", "13"))], 1)[0][0]
            assert traj.token_ids[-1] == end and traj.success and not traj.truncated
    finally:
        model.generation_config.eos_token_id = tok.eos_token_id


THINKING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' %}<think>\n\n</think>\n\n{% endif %}"
    "{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_cold_start_demonstrations_are_built_as_the_engine_builds_trajectories(bpe_chat_policy):
    """A template that inserts text into finished assistant messages (as Qwen3's does) must not
    leak into demonstrations: they are the prompt, then each piece encoded on its own."""
    model, tok, _ = bpe_chat_policy
    stock = tok.chat_template
    tok.chat_template = THINKING_TEMPLATE
    try:
        fmt = FencedFormat.for_chat(tok)
        pieces = [("Let x be 3.\n```python\nx = 3\nprint(x)\n```", "3"), ("So \\boxed{3}.", None)]
        ids, mask = chat_example(fmt, tok, "What is 3?", pieces)
        turns = [tok.encode(text, add_special_tokens=False) for text, _ in pieces]
        turns[-1].append(tok.eos_token_id)
        engine = scripted_engine(model, tok, turns, ["3"])
        traj = engine.rollout([engine.start(WordProblem("What is 3?", "3"))], 1)[0][0]
        assert traj.token_ids == ids and traj.action_mask == mask
        assert "<think>" not in tok.decode(ids)
        conversation = [{"role": "user", "content": "What is 3?"}]
        conversation.append({"role": "assistant", "content": pieces[0][0]})
        assert "<think>" in tok.apply_chat_template(conversation, tokenize=False)
    finally:
        tok.chat_template = stock
