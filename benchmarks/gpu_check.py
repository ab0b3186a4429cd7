"""One-GPU check: training memory and time per ELPO update, and decode speed.

Random weights of the real shapes (Qwen2.5 0.5B/1.5B/3B/7B-Instruct) with the real
vocabulary: memory and speed do not depend on the weights or on which ids are sampled,
so no download and no tokenizer are needed. Two tables:

1. **update**: one ELPO update through the project's own ``policy_update`` (LoRA r16 on
   all linear layers, gradient checkpointing, token-chunked log-probs) on 8 x 1024
   tokens, bf16 LoRA and nf4 QLoRA (bitsandbytes): peak memory and seconds.
2. **decode**: decode steps/s at batch 64 and 256 (0.5B, bf16, 31-token prompt, 128
   sampled tokens, stop tokens off, T = 1) for the rollout engine, ``generate`` with a
   dynamic cache and ``generate`` with a static cache (compiled), all in this one run.

Every row is timed under ``torch.no_grad()`` where it decodes, after one warm-up.

    python benchmarks/gpu_check.py --device cuda                 # about 5 minutes on one H100
    python benchmarks/gpu_check.py --device cpu --tiny           # seconds: the test suite's smoke run

Results go to ``benchmarks/results/gpu_check_<device>.json`` (``--out`` to change).
"""

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from elpo_min.config import Config
from elpo_min.rollout import RolloutEngine, Trajectory
from elpo_min.train import policy_update

SHAPES = {  # Qwen2.5-*-Instruct config.json values
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "3b": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
               num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=1000, tie_word_embeddings=True),
}


class IdTokenizer:
    """Just enough of a tokenizer for the engine on random ids (its text is never read)."""

    pad_token_id, eos_token_id, chat_template = 0, 1, None

    def __init__(self, vocab: int):
        self.vocab = vocab

    def __len__(self):
        return self.vocab

    def encode(self, text, add_special_tokens=False):
        return [2 + ord(c) % 97 for c in text]

    def decode(self, ids):
        return ""

    def batch_decode(self, ids):
        return [""] * len(ids)


def random_model(shape: str, dtype, device: str, nf4: bool = False, lora_rank: int = 16):
    """A Qwen2 model of ``shape`` with random weights, optionally nf4 (QLoRA), LoRA-wrapped."""
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**SHAPES[shape], max_position_embeddings=4096, pad_token_id=0, eos_token_id=1)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype)
    if nf4:
        import bitsandbytes as bnb

        for layer in model.model.layers:
            for parent in (layer.self_attn, layer.mlp):
                for name, linear in list(parent.named_children()):
                    if isinstance(linear, torch.nn.Linear):
                        q = bnb.nn.Linear4bit(linear.in_features, linear.out_features, linear.bias is not None,
                                              compute_dtype=dtype, quant_type="nf4", device="meta")
                        q.weight = bnb.nn.Params4bit(linear.weight.data.cpu(), requires_grad=False,
                                                     quant_type="nf4").to(device)
                        if linear.bias is not None:
                            q.bias = torch.nn.Parameter(linear.bias.data, requires_grad=False)
                        setattr(parent, name, q)
        for m in model.modules():  # see elpo_min.models._disable_avx512bf16
            if hasattr(m, "support_avx512bf16_for_cpu"):
                m.support_avx512bf16_for_cpu = False
    if lora_rank:
        model = get_peft_model(model, LoraConfig(r=lora_rank, lora_alpha=32, target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))
        model.activation_checkpointing_enable({"use_reentrant": False})
    return model


def update_row(shape, nf4, device, seqs, tokens, dtype) -> dict:
    """Peak memory and seconds of one ELPO update (the second of two) on seqs x tokens."""
    torch.manual_seed(0)
    model = random_model(shape, dtype, device, nf4=nf4)
    vocab = SHAPES[shape]["vocab_size"]
    ids = torch.randint(2, vocab, (seqs, tokens), device=device)
    action = torch.ones(seqs, tokens, device=device)
    action[:, :64] = 0  # a prompt
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "action_mask": action,
             "old_logp": torch.full((seqs, tokens), -2.0, device=device),
             "advantages": torch.randn(seqs, 1, device=device).expand(seqs, tokens).contiguous(),
             "elc_mask": torch.zeros(seqs, tokens, device=device)}
    cfg = Config(minibatch_size=seqs, micro_batch_size=seqs, logprob_chunk=1024)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    seconds = []
    for _ in range(2):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        policy_update(model, optimizer, batch, cfg)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    del model, optimizer, batch
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"shape": shape, "mode": "nf4 QLoRA" if nf4 else "bf16 LoRA", "tokens": f"{seqs}x{tokens}",
            "peak_gib": peak, "update_s": seconds[-1]}


def decode_rows(shape, device, batch_sizes, prompt_len, new_tokens, dtype) -> list[dict]:
    torch.manual_seed(0)
    model = random_model(shape, dtype, device, lora_rank=0).eval()
    vocab = SHAPES[shape]["vocab_size"]
    engine = RolloutEngine(model, IdTokenizer(vocab), max_new_tokens=new_tokens, batch_size=max(batch_sizes))
    engine.stop_ids, engine.trigger_ids = set(), set()  # run every step, like min_new_tokens
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rows = []
    for b in batch_sizes:
        prompts = torch.randint(2, vocab, (b, prompt_len))

        def engine_run():
            seeds = [Trajectory(None, p.tolist(), [0] * prompt_len, [0.0] * prompt_len, [0.0] * prompt_len,
                                prompt_len) for p in prompts]
            engine._generate_turn(seeds)

        def generate_run(cache):
            kwargs = {"cache_implementation": "static"} if cache == "static" else {}
            with torch.no_grad():
                model.generate(input_ids=prompts.to(device), attention_mask=torch.ones_like(prompts).to(device),
                               do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=new_tokens,
                               min_new_tokens=new_tokens, pad_token_id=0, **kwargs)

        for name, fn in (("rollout engine", engine_run), ("generate, dynamic cache", lambda: generate_run("dynamic")),
                         ("generate, static cache, compiled", lambda: generate_run("static"))):
            try:
                fn()  # warm-up (and compilation)
                sync()
                start = time.perf_counter()
                fn()
                sync()
                rows.append({"batch": b, "decoder": name, "steps_per_s": new_tokens / (time.perf_counter() - start)})
            except Exception as e:  # report, do not hide: e.g. static cache unsupported on this build
                rows.append({"batch": b, "decoder": name, "error": f"{type(e).__name__}: {e}"[:200]})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes and batches: a smoke run for CPU")
    ap.add_argument("--shapes", default="0.5b,1.5b,3b,7b")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    shapes = ["tiny"] if args.tiny else args.shapes.split(",")
    seqs, tokens = (2, 96) if args.tiny else (8, 1024)
    try:
        import bitsandbytes  # noqa: F401
        modes = (False, True)
    except ImportError:
        modes = (False,)
        print("bitsandbytes is not installed: nf4 rows skipped")
    started = time.perf_counter()
    updates = [update_row(s, nf4, args.device, seqs, tokens, dtype) for s in shapes for nf4 in modes]
    decode = decode_rows("tiny" if args.tiny else "0.5b", args.device, [4, 8] if args.tiny else [64, 256],
                         31, 8 if args.tiny else 128, dtype)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    import transformers

    result = {"device": device, "torch": torch.__version__, "transformers": transformers.__version__,
              "command": "python benchmarks/gpu_check.py --device " + args.device + (" --tiny" if args.tiny else ""),
              "seconds": time.perf_counter() - started, "update": updates, "decode": decode}
    print(f"{device}, torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"\none ELPO update, {seqs} x {tokens} tokens, LoRA r16, gradient checkpointing")
    print("| shape | mode | peak memory (GiB) | seconds per update |\n|---|---|---|---|")
    for r in updates:
        peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "n/a (CPU)"
        print(f"| {r['shape']} | {r['mode']} | {peak} | {r['update_s']:.2f} |")
    print("\ndecode steps/s (0.5B shape)" if not args.tiny else "\ndecode steps/s (tiny shape)")
    print("| batch | decoder | steps/s |\n|---|---|---|")
    for r in decode:
        print(f"| {r['batch']} | {r['decoder']} | {r.get('steps_per_s', 0):.1f} {r.get('error', '')} |")
    out = Path(args.out or f"benchmarks/results/gpu_check_{args.device.split(':')[0]}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
