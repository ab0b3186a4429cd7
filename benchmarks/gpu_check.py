"""One-GPU check: training memory and time per ELPO update, recipes, and decode speed.

Random weights of the real shapes (Qwen2.5 0.5B/1.5B/3B/7B-Instruct, Qwen3-4B) with the
real vocabulary: memory and speed do not depend on the weights or on which ids are
sampled, so no download and no tokenizer are needed. Sections, each printed as a table
and saved to the JSON as soon as it is done (a run cut short keeps what it measured):

1. **decode**: steps/s at batch 64 and 256 (0.5B, bf16, 31-token prompt, 128 sampled
   tokens, stop tokens off, T = 1): the fast decoder (CUDA graph, and eager), the plain
   reference decoder, ``generate`` with a dynamic cache, and (last, it compiles) ``generate``
   with a static compiled cache.
2. **equivalence**: the CUDA-graph decode against the eager one under one seed, and its
   recorded log-probs against a teacher-forced pass.
3. **prefix reuse**: BEL-style continuations (16 prefixes of 512 tokens x 16), each prefix
   prefilled once and branched, or prefilled once per row.
4. **update**: one ELPO update through the project's own ``policy_update`` and the trainer's
   default training forward (LoRA r16 on all linear layers, gradient checkpointing, the packed
   update's chunked head; random ids share no prefix) on 8 x 1024 tokens,
   bf16 LoRA and nf4 QLoRA (bitsandbytes): peak memory and seconds.
5. **recipes**: each ``configs/*.yaml`` at its shape: one mini-batch update with its
   micro-batches (peak memory, seconds) and decode steps/s at its rollout batch.
6. **packed**: the packed update against per-leaf rows on BEL-shaped trees of 4 prompts (0.5B,
   LoRA r16, mini-batches of one prompt's tree): seconds and peak memory, side by side.
7. **sampler**: the sampler's recorded log-probs and entropies on a peaked distribution over
   the real vocabulary, against float64, eager and (on a GPU) replayed from a CUDA graph;
   the bound is 1e-5.

Every decode is timed under ``torch.no_grad()`` after one warm-up.

    python benchmarks/gpu_check.py --device cuda          # about 7 minutes on one H200
    python benchmarks/gpu_check.py --device cpu --tiny    # seconds: the test suite's smoke run

Results go to ``benchmarks/results/gpu_check_<device>.json`` (``--out`` to change).
"""

import argparse
import dataclasses
import json
import platform
import time
from functools import partial
from pathlib import Path

import torch

from elpo_min.config import Config
from elpo_min.fast_decoder import FastDecoder
from elpo_min.fast_update import chunked_token_logprobs
from elpo_min.launch import load_config
from elpo_min.launch.build import enable_gradient_checkpointing, training_forward
from elpo_min.models.loading import disable_avx512bf16
from elpo_min.rollout import PlainDecoder, sample_tokens, token_entropy
from elpo_min.train import policy_update, training_batch
from elpo_min.trajectory import Trajectory, collate

SHAPES = {  # Qwen2.5-*-Instruct config.json values
    "0.5b": dict(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
    ),
    "1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
    ),
    "3b": dict(
        hidden_size=2048,
        intermediate_size=11008,
        num_hidden_layers=36,
        num_attention_heads=16,
        num_key_value_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
    ),
    "7b": dict(
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        vocab_size=152064,
        tie_word_embeddings=False,
    ),
    "qwen3-4b": dict(
        hidden_size=2560,
        intermediate_size=9728,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        vocab_size=151936,
        tie_word_embeddings=True,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1000,
        tie_word_embeddings=True,
    ),
}


RECIPE_SHAPES = {
    "Qwen/Qwen2.5-0.5B-Instruct": "0.5b",
    "Qwen/Qwen2.5-1.5B-Instruct": "1.5b",
    "Qwen/Qwen2.5-3B-Instruct": "3b",
    "Qwen/Qwen3-4B-Instruct-2507": "qwen3-4b",
}


def random_model(shape: str, dtype, device: str, nf4: bool = False, lora_rank: int = 16):
    """A Qwen2 model of ``shape`` with random weights, optionally nf4 (QLoRA), LoRA-wrapped."""
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    config_cls, model_cls = (
        (Qwen3Config, Qwen3ForCausalLM)
        if shape.startswith("qwen3")
        else (Qwen2Config, Qwen2ForCausalLM)
    )
    config = config_cls(
        **SHAPES[shape], max_position_embeddings=4096, pad_token_id=0, eos_token_id=1
    )
    with torch.device(device):
        model = model_cls(config).to(dtype)
    if nf4:
        import bitsandbytes as bnb

        for layer in model.model.layers:
            for parent in (layer.self_attn, layer.mlp):
                for name, linear in list(parent.named_children()):
                    if isinstance(linear, torch.nn.Linear):
                        q = bnb.nn.Linear4bit(
                            linear.in_features,
                            linear.out_features,
                            linear.bias is not None,
                            compute_dtype=dtype,
                            quant_type="nf4",
                            device="meta",
                        )
                        q.weight = bnb.nn.Params4bit(
                            linear.weight.data, requires_grad=False, quant_type="nf4"
                        ).to(device)
                        if linear.bias is not None:
                            q.bias = torch.nn.Parameter(linear.bias.data, requires_grad=False)
                        setattr(parent, name, q)
        disable_avx512bf16(model)
    if lora_rank:
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora_rank, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"
            ),
        )
        enable_gradient_checkpointing(model)
    return model


def update_row(shape, nf4, device, seqs, tokens, dtype, cfg: Config | None = None) -> dict:
    """Peak memory and seconds of one ELPO update (the second of two) on seqs x tokens."""
    torch.manual_seed(0)
    model = random_model(shape, dtype, device, nf4=nf4, lora_rank=cfg.lora_rank if cfg else 16)
    vocab = SHAPES[shape]["vocab_size"]
    ids = torch.randint(2, vocab, (seqs, tokens), device=device)
    action = torch.ones(seqs, tokens, device=device)
    action[:, :64] = 0  # a prompt
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "action_mask": action,
        "old_logp": torch.full((seqs, tokens), -2.0, device=device),
        "advantages": torch.randn(seqs, 1, device=device).expand(seqs, tokens).contiguous(),
        "elc_mask": torch.zeros(seqs, tokens, device=device),
    }
    # rows of random ids share nothing: the packed update's worst case, so its memory bound
    cfg = cfg or Config(minibatch_size=seqs, minibatch_prompts=0, micro_batch_size=seqs)
    batch["prompt"] = torch.arange(seqs, device=device) // cfg.n_total  # [B]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    seconds = []
    for _ in range(2):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        policy_update(training_forward(cfg)(model), optimizer, batch, cfg)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    del model, optimizer, batch
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {
        "shape": shape,
        "mode": "nf4 QLoRA" if nf4 else "bf16 LoRA",
        "tokens": f"{seqs}x{tokens}",
        "peak_gib": peak,
        "update_s": seconds[-1],
    }


def packed_rows(shape: str, dtype, device: str, prompts: int, lengths: dict | None) -> list[dict]:
    """The per-leaf update against the packed one on BEL-shaped trees of ``prompts`` problems
    (``benchmarks/packed_update.py``'s scripted BEL loop, N_total 16, 3-5 tool steps), LoRA r16
    with gradient checkpointing, side by side from the same weights: seconds and peak memory of
    one ``policy_update`` with mini-batches of one prompt's tree (the recipes' setting)."""
    import copy

    from packed_update import CHAT_LENGTHS, FORWARDS, bel_shaped_trees, token_counts

    torch.manual_seed(0)
    vocab = SHAPES[shape]["vocab_size"]
    trees = bel_shaped_trees(vocab, prompts, lengths or CHAT_LENGTHS)
    cfg = Config(minibatch_prompts=1, micro_batch_tokens=8192, pack_tokens=2048)
    batch, _ = training_batch(trees, cfg, 0, device)
    base = random_model(shape, dtype, device)
    tokens = token_counts(batch, cfg)
    rows = []
    for name, logprobs in FORWARDS.items():
        # the forward the trainer builds from this config (its chunk and row budget)
        forward = training_forward(dataclasses.replace(cfg, logprobs=logprobs))
        model = copy.deepcopy(base)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-5)
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        torch.manual_seed(0)
        step = partial(policy_update, forward(model), optimizer, batch, cfg)
        seconds = timed(step, device)
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
        rows.append({"update": name, "shape": shape, "sequences": len(batch["input_ids"])})
        rows[-1].update({"tokens": tokens[name], "peak_gib": peak, "update_s": seconds})
        print(rows[-1], flush=True)
        del model, optimizer, step
    return rows


def has_bnb() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device) -> float:
    """Seconds of one call of ``fn`` after one warm-up call."""
    fn()
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def seeds_of(prompts: torch.Tensor) -> list[Trajectory]:
    return [
        Trajectory(None, p.tolist(), [0] * len(p), [0.0] * len(p), [0.0] * len(p), len(p))
        for p in prompts
    ]


def never_stops(sampled: list[int]) -> bool:
    """Stop tokens off: every turn runs to its budget, like min_new_tokens."""
    return False


def with_turns(seeds: list[Trajectory], turns) -> list[Trajectory]:
    """The seeds with their sampled turn appended (action mask 1, recorded log-probs)."""
    out = []
    for seed, turn in zip(seeds, turns):
        n = len(turn.token_ids)
        out.append(
            Trajectory(
                None,
                seed.token_ids + turn.token_ids,
                seed.action_mask + [1] * n,
                seed.logprobs + turn.logprobs,
                seed.entropies + turn.entropies,
                seed.prompt_len,
            )
        )
    return out


def decode_rows(
    model, device, batch_sizes, prompt_len, new_tokens, compiled: bool = False, only=None
) -> list[dict]:
    """Decode steps/s: the engine (CUDA graph and eager) against ``generate``, same sampling."""
    vocab = model.config.vocab_size
    rows = []
    for b in batch_sizes:
        prompts = torch.randint(2, vocab, (b, prompt_len))

        decoders = {graphs: FastDecoder(model, cuda_graphs=graphs) for graphs in (True, False)}
        decoders["plain"] = PlainDecoder(model)

        def engine_run(which):
            decoders[which].reset()
            decoders[which].sample_turn(seeds_of(prompts), new_tokens, never_stops)

        def generate_run(cache):
            kwargs = {"cache_implementation": "static"} if cache == "static" else {}
            with torch.no_grad():
                model.generate(
                    input_ids=prompts.to(device),
                    attention_mask=torch.ones_like(prompts).to(device),
                    do_sample=True,
                    temperature=1.0,
                    top_p=1.0,
                    top_k=0,
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,
                    pad_token_id=0,
                    **kwargs,
                )

        runs = [
            ("fast decoder", lambda: engine_run(True)),
            ("plain decoder", lambda: engine_run("plain")),
            ("generate, dynamic cache", lambda: generate_run("dynamic")),
        ]
        if device.startswith("cuda"):
            runs.insert(1, ("fast decoder, no CUDA graph", lambda: engine_run(False)))
        if compiled:
            runs.append(("generate, static cache, compiled", lambda: generate_run("static")))
        for name, fn in [r for r in runs if only is None or r[0] in only]:
            try:
                rows.append(
                    {"batch": b, "decoder": name, "steps_per_s": new_tokens / timed(fn, device)}
                )
                if name == "fast decoder" and device.startswith("cuda"):
                    # False: the capture failed
                    rows[-1]["cuda_graph"] = decoders[True].cuda_graphs
            except Exception as e:
                # report, do not hide: e.g. static cache unsupported on this build
                rows.append(
                    {"batch": b, "decoder": name, "error": f"{type(e).__name__}: {e}"[:300]}
                )
            print(rows[-1], flush=True)
    return rows


def graph_equivalence(model, device, batch=16, prompt_len=31, new_tokens=64) -> dict:
    """The CUDA-graph path against the eager path under one seed, and against teacher forcing."""
    vocab = model.config.vocab_size
    prompts = torch.randint(2, vocab, (batch, prompt_len))
    out = {}
    for graphs in (True, False):
        seeds = seeds_of(prompts)
        torch.manual_seed(123)
        out[graphs] = with_turns(
            seeds,
            FastDecoder(model, cuda_graphs=graphs).sample_turn(seeds, new_tokens, never_stops),
        )
    same = sum(
        a == b for g, e in zip(out[True], out[False]) for a, b in zip(g.token_ids, e.token_ids)
    )
    agree = [
        abs(a - b)
        for g, e in zip(out[True], out[False])
        for x, y, a, b in zip(g.token_ids, e.token_ids, g.logprobs, e.logprobs)
        if x == y
    ]
    batch_t = collate(out[True], 0, device)
    with torch.no_grad():
        forced = chunked_token_logprobs(model, batch_t["input_ids"], batch_t["attention_mask"])
    action = batch_t["action_mask"].bool()
    gap = (forced[action] - batch_t["old_logp"][action]).abs()
    return {
        "tokens_identical": same / sum(len(t.token_ids) for t in out[True]),
        "max_abs_logp_diff_graph_vs_eager": max(agree),
        "max_abs_logp_diff_graph_vs_teacher_forced": gap.max().item(),
        "mean_abs_logp_diff_graph_vs_teacher_forced": gap.mean().item(),
    }


def sampler_fidelity(device: str, vocab: int = 151_669, rows: int = 8) -> dict:
    """Largest gaps of the sampler's log-prob and entropy to float64, on one token at 0 and the
    rest of the vocabulary near -17: a tail a float32 running sum would drop."""
    torch.manual_seed(0)
    logits = (-17.0 + 0.5 * torch.randn(rows, vocab)).to(device)  # [B, V]
    logits[:, 7] = 0.0
    reference = logits.double().log_softmax(-1)  # [B, V]
    reference_entropy = token_entropy(reference)  # [B]

    def gaps(token, logp, entropy) -> dict:
        expected = reference.gather(-1, token).squeeze(-1)  # [B]
        return {
            "max_abs_logp_gap": (logp.double() - expected).abs().max().item(),
            "max_abs_entropy_gap": (entropy.double() - reference_entropy).abs().max().item(),
        }

    out = {"vocab": vocab, "eager": gaps(*sample_tokens(logits, 1.0))}
    if device.startswith("cuda"):
        # warm up on a side stream, then capture the sampler as the fast decoder's graph holds it
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            sample_tokens(logits, 1.0)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = sample_tokens(logits, 1.0)
        graph.replay()
        torch.cuda.synchronize()
        out["cuda_graph"] = gaps(*captured)
    print("sampler against float64:", out, flush=True)
    return out


def prefix_reuse_rows(model, device, anchors, continuations, prefix_len, new_tokens) -> list[dict]:
    """BEL-style continuations: ``anchors`` distinct prefixes, each continued ``continuations``
    times, prefilled once per prefix (branching its cache) or once per row."""
    vocab = model.config.vocab_size
    prefixes = torch.randint(2, vocab, (anchors, prefix_len)).repeat_interleave(continuations, 0)
    rows = []
    for share in (True, False):
        decoder = FastDecoder(model, share_prefixes=share)
        seconds = timed(
            lambda: decoder.sample_turn(seeds_of(prefixes), new_tokens, never_stops), device
        )
        rows.append(
            {
                "continuations": f"{anchors} prefixes x {continuations}",
                "prefix_tokens": prefix_len,
                "new_tokens": new_tokens,
                "prefix_reuse": share,
                "seconds": seconds,
            }
        )
        print(rows[-1], flush=True)
    return rows


def recipe_rows(
    device, dtype, tokens, shape: str | None = None, decode_size: tuple | None = None
) -> list[dict]:
    """Each configs/*.yaml recipe with random weights of its shape: peak memory and seconds of
    one mini-batch update (its micro-batches), and decode steps/s at its rollout batch.

    ``shape`` and ``decode_size`` (rows, prompt tokens, new tokens) replace the recipe's model
    shape and its decode batch (rollout batch, 256, 64): the smoke run's tiny sizes.
    """
    rows = []
    for path in sorted(Path("configs").glob("*.yaml")):
        cfg = load_config(str(path))
        row_shape = shape or RECIPE_SHAPES[cfg.model]
        # a mini-batch: minibatch_prompts prompts' n_total rows, or minibatch_size rows
        seqs = cfg.n_total * cfg.minibatch_prompts or cfg.minibatch_size
        micro = f"{cfg.micro_batch_tokens} tokens" if cfg.micro_batch_tokens else None
        row = {
            "config": str(path),
            "shape": row_shape,
            "lora_rank": cfg.lora_rank,
            "micro_batch": micro or cfg.micro_batch_size,
            "tokens": f"{seqs}x{tokens}",
        }
        nf4 = cfg.load_in_4bit and has_bnb()
        row["mode"] = "nf4 QLoRA" if nf4 else "bf16 LoRA"
        row.update(update_row(row_shape, nf4, device, seqs, tokens, dtype, cfg))
        model = random_model(row_shape, dtype, device, nf4=nf4, lora_rank=0).eval()
        rows_decoded, prompt, new = decode_size or (cfg.rollout_batch_size, 256, 64)
        row["decode_steps_per_s"] = decode_rows(
            model, device, [rows_decoded], prompt, new, only=["fast decoder"]
        )[0].get("steps_per_s")
        del model
        rows.append(row)
        print(row, flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--tiny", action="store_true", help="tiny shapes and batches: a smoke run for CPU"
    )
    ap.add_argument("--shapes", default="0.5b,1.5b,7b,3b")
    ap.add_argument(
        "--budget_s", type=float, default=420, help="skip the remaining sections after this"
    )
    ap.add_argument(
        "--sections",
        default="sampler,decode,equivalence,prefix_reuse,update,recipes,packed,decode_compiled",
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import transformers

    tiny, cuda = args.tiny, args.device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    device_name = torch.cuda.get_device_name() if cuda else platform.processor() or "cpu"
    out = Path(args.out or f"benchmarks/results/gpu_check_{args.device.split(':')[0]}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = {
        "device": device_name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "command": "python benchmarks/gpu_check.py --device "
        + args.device
        + (" --tiny" if tiny else ""),
    }
    print(
        f"{device_name}, torch {torch.__version__}, transformers {transformers.__version__}",
        flush=True,
    )
    modes = (False, True) if has_bnb() else (False,)
    if not has_bnb():
        print("bitsandbytes is not installed: nf4 rows skipped")

    def section(name, fn):
        if name not in args.sections.split(","):
            return
        if time.perf_counter() - started > args.budget_s:
            result.setdefault("skipped", []).append(name)
            return
        try:
            result[name] = fn()
        except Exception as e:  # keep the other sections
            result[name] = {"error": f"{type(e).__name__}: {e}"[:500]}
            print(name, result[name], flush=True)
        result["seconds"] = time.perf_counter() - started
        out.write_text(json.dumps(result, indent=2) + "\n")

    models = {}

    # the 0.5B decode model, built once; freed before the update sections measure memory
    def small():
        if "small" not in models:
            torch.manual_seed(0)
            models["small"] = random_model(
                "tiny" if tiny else "0.5b", dtype, args.device, lora_rank=0
            ).eval()
        return models["small"]

    section("sampler", lambda: sampler_fidelity(args.device))
    section(
        "decode",
        lambda: decode_rows(
            small(),
            args.device,
            [4, 8] if tiny else [64, 256],
            31,
            8 if tiny else 128,
            compiled=False,
        ),
    )
    section(
        "equivalence", lambda: graph_equivalence(small(), args.device, *((4, 7, 6) if tiny else ()))
    )
    section(
        "prefix_reuse",
        lambda: prefix_reuse_rows(
            small(), args.device, *((2, 4, 24, 4) if tiny else (16, 16, 512, 64))
        ),
    )
    models.clear()
    if cuda:
        torch.cuda.empty_cache()
    seqs, tokens = (2, 96) if tiny else (8, 1024)
    section(
        "update",
        lambda: [
            update_row(s, nf4, args.device, seqs, tokens, dtype)
            for s in (["tiny"] if tiny else args.shapes.split(","))
            for nf4 in modes
        ],
    )
    section(
        "recipes",
        lambda: recipe_rows(
            args.device,
            dtype,
            96 if tiny else 1024,
            "tiny" if tiny else None,
            (4, 24, 8) if tiny else None,
        ),
    )
    section(
        "packed",
        lambda: packed_rows(
            "tiny" if tiny else "0.5b",
            dtype,
            args.device,
            1 if tiny else 4,
            {"prompt": (8, 12), "turn": (4, 8), "output": (2, 3), "answer": (2, 4)}
            if tiny
            else None,
        ),
    )
    if not tiny:  # last: it compiles (minutes)
        section(
            "decode_compiled",
            lambda: decode_rows(
                small(),
                args.device,
                [64, 256],
                31,
                128,
                compiled=True,
                # its baseline in the same run, minutes after the first decode section
                only=["fast decoder", "generate, static cache, compiled"],
            ),
        )
    report(result, out)


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n{title}\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row) + " |")


def report(result: dict, out: Path) -> None:
    def ok(section):
        return result.get(section) if isinstance(result.get(section), list) else []

    decode = ok("decode") + ok("decode_compiled")
    table(
        "decode steps/s (0.5B shape)",
        ["batch", "decoder", "steps/s"],
        [[r["batch"], r["decoder"], r.get("steps_per_s", r.get("error"))] for r in decode],
    )
    if "equivalence" in result:
        print("\nCUDA graph vs eager:", result["equivalence"])
    table(
        "BEL continuations",
        ["continuations", "prefix tokens", "new tokens", "prefix reuse", "seconds"],
        [
            [
                r["continuations"],
                r["prefix_tokens"],
                r["new_tokens"],
                r["prefix_reuse"],
                r["seconds"],
            ]
            for r in ok("prefix_reuse")
        ],
    )
    gib = lambda r: r["peak_gib"] if r.get("peak_gib") is not None else "n/a (CPU)"  # noqa: E731
    table(
        "one ELPO update, gradient checkpointing",
        ["shape", "mode", "tokens", "peak memory (GiB)", "seconds"],
        [[r["shape"], r["mode"], r["tokens"], gib(r), r["update_s"]] for r in ok("update")],
    )
    table(
        "recipes: one mini-batch update",
        ["config", "mode", "tokens", "peak GiB", "update s", "decode steps/s"],
        [
            [r["config"], r["mode"], r["tokens"], gib(r), r["update_s"], r["decode_steps_per_s"]]
            for r in ok("recipes")
        ],
    )
    table(
        "the packed update against per-leaf rows (BEL-shaped trees, LoRA r16)",
        ["update", "shape", "sequences", "tokens", "peak GiB", "update s"],
        [
            [r["update"], r["shape"], r["sequences"], r["tokens"], gib(r), r["update_s"]]
            for r in ok("packed")
        ],
    )
    print(
        f"\nwrote {out} in {result.get('seconds', 0):.0f} s; skipped: {result.get('skipped', [])}"
    )


if __name__ == "__main__":
    main()
