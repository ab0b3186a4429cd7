import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from elpo_min.models import build_tiny_tokenizer

    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def shipped_policy():
    from elpo_min.models import load_policy

    model, tokenizer = load_policy()
    return model.eval(), tokenizer


def next_token_log_probs(model, input_ids, attention_mask, temperature: float = 1.0):
    """The textbook teacher-forced distributions, to check the package's against: full
    [B, T, V] logits, tempered, log-softmaxed in float32. Row t predicts token t + 1, so the
    result is [B, T - 1, V]."""
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # [B, T]
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
    ).logits  # [B, T, V]
    return (logits[:, :-1].float() / temperature).log_softmax(-1)  # [B, T - 1, V]


class ScriptedDecoder:
    """A decoder (the protocol of elpo_min.rollout) that plays back fixed turns of token ids,
    one per row and call of ``sample_turn``, each cut where the format's stop rule ends it."""

    def __init__(self, turns):
        self.turns = list(turns)

    def reset(self):
        pass

    def sample_turn(self, rows, budget, stops):
        from elpo_min.rollout import SampledTurn

        out = []
        for _ in rows:
            ids, kept, stopped = self.turns.pop(0), [], False
            for token in ids:
                kept.append(token)
                if stops(kept):
                    stopped = True
                    break
            out.append(SampledTurn(kept, [-0.1] * len(kept), [0.5] * len(kept), stopped))
        return out


def scripted_rollouts(model, tok, fmt, turns, tool, max_turns: int = 4):
    """A rollout engine in ``fmt`` whose policy plays back ``turns`` (token ids) and whose tool
    is ``tool``; problems are word problems, checked by their answer."""
    from elpo_min.rollout import RolloutEngine
    from elpo_min.tasks import check_answer

    return RolloutEngine(
        model,
        tok,
        fmt,
        lambda p: p.question,
        lambda p, a: check_answer(a, p.answer),
        tool=tool,
        max_turns=max_turns,
        decoder=lambda *args, **kwargs: ScriptedDecoder(turns),
    )


def rank_of(rank: int, world_size: int):
    """A single-process runtime that says it is ``rank`` of ``world_size``: a rank of a
    data-parallel launch, as seen by code that only asks who it is (no collectives run)."""
    from elpo_min.runtime import Runtime

    runtime = Runtime()
    runtime.rank = rank
    runtime.world_size = world_size
    return runtime


# A training run of a few seconds on the shipped policy: 4 steps, evaluated and saved every 2
TINY_RUN = {
    "steps": 4,
    "prompts_per_step": 2,
    "n_total": 4,
    "eval_problems": 8,
    "eval_every": 2,
    "save_every": 2,
    "max_turns": 8,
    "progress": False,
}

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# The worked example a tiny chat model is overfit on: the second block uses the first's variable.
BPE_QUESTION = "What is 3 times 4, plus 1?"
BPE_DEMO = [
    ("Let x be 3 times 4.\n```python\nx = 3 * 4\nprint(x)\n```", "12"),
    ("Add one.\n```python\nprint(x + 1)\n```", "13"),
    ("So the answer is \\boxed{13}.", None),
]


def build_bpe_chat_tokenizer():
    """A byte-level BPE trained in-process on fenced-TIR text, with ChatML special tokens.

    ``use_regex=False`` lets merges cross whitespace and punctuation (as SentencePiece-style
    and many real vocabularies do), so decoding and re-encoding a trajectory *does* change ids
    at turn boundaries: the hazard the token-exactness tests guard against.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from elpo_min.tasks import TIR_SYSTEM_PROMPT

    text = [TIR_SYSTEM_PROMPT, BPE_QUESTION] + [
        a + "\n```output\n" + (b or "") + "\n```\n" for a, b in BPE_DEMO
    ]
    text += [
        f"Step {i}:\n```python\n{i * 37}+{i * 11}\n```\n```output\n{i * 48}\n```\n"
        for i in range(40)
    ]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(
        text * 5,
        trainers.BpeTrainer(
            vocab_size=600,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<|endoftext|>", eos_token="<|im_end|>"
    )
    fast.chat_template = CHATML
    return fast


@pytest.fixture(scope="session")
def bpe_chat_policy(tmp_path_factory):
    """A tiny Qwen2 chat model with the BPE tokenizer, overfit on BPE_DEMO, saved to a folder.

    Returns:
        ``(model, tokenizer, folder)``.
    """
    from elpo_min.models import build_tiny_policy
    from elpo_min.sft import chat_example, cold_start
    from elpo_min.tasks import FencedFormat

    tok = build_bpe_chat_tokenizer()
    model = build_tiny_policy(tok, hidden=64, layers=2, heads=4, seed=0)
    example = chat_example(FencedFormat.for_chat(tok), tok, BPE_QUESTION, BPE_DEMO)
    cold_start(
        model, [example], steps=80, lr=3e-3, batch_size=1, pad_id=tok.pad_token_id, progress=False
    )
    folder = tmp_path_factory.mktemp("bpe_chat_policy")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model.eval(), tok, folder


@pytest.fixture(autouse=True)
def interrupts_left_as_found():
    """Each test leaves Ctrl-C as it found it: the handler, and whether the signal is blocked.

    A test that left SIGINT ignored or swallowed would make every later interrupt test of the
    same worker process pass or hang for reasons of its own; this names the test that did it.
    """
    import signal

    handler = signal.getsignal(signal.SIGINT)
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    now = signal.getsignal(signal.SIGINT)
    now_blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    if now is not handler or now_blocked != blocked:
        signal.signal(signal.SIGINT, handler)
        if now_blocked and not blocked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
        pytest.fail(f"the test left SIGINT changed: handler {now!r}, blocked {now_blocked}")
