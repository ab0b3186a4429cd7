"""Decode throughput of the rollout engine vs ``model.generate`` on the tiny policy.

Both sample the same number of new tokens (``--new_tokens``) for the same batch of
left-padded toy prompts at temperature 1; the engine's stop tokens are switched
off so both run every step. Reports decode steps per second and sampled tokens
per second, each the median of ``--repeats`` timed runs after one warm-up run.

    python benchmarks/decode_speed.py --batch 128 --new_tokens 64 --threads 2 [--device cuda]
"""

import argparse
import statistics
import time

import torch

from elpo_min import toy
from elpo_min.models import load_policy
from elpo_min.rollout import RolloutEngine


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--new_tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = load_policy(device=args.device)
    model.eval()
    problems = toy.generate_problems(args.batch, seed=7)
    engine = RolloutEngine(model, tok, max_new_tokens=args.new_tokens, batch_size=args.batch)
    engine.stop_ids = set()  # run every step, like generate(min_new_tokens=...)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def run_engine():
        seeds = [engine.start(p) for p in problems]
        engine._generate_turn(seeds)
        return sum(len(s.token_ids) - s.prompt_len for s in seeds)

    tok.padding_side = "left"
    enc = tok([p.prompt for p in problems], return_tensors="pt", padding=True).to(args.device)

    def run_generate():
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                 max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                 pad_token_id=tok.pad_token_id)
        return (out.shape[1] - enc["input_ids"].shape[1]) * args.batch

    results = {}
    for name, fn in (("rollout engine", run_engine), ("model.generate", run_generate)):
        fn()
        times, tokens = [], 0
        for _ in range(args.repeats):
            sync()
            start = time.perf_counter()
            tokens = fn()
            sync()
            times.append(time.perf_counter() - start)
        t = statistics.median(times)
        results[name] = (args.new_tokens / t, tokens / t)
    print(f"tiny policy, batch {args.batch}, {args.new_tokens} new tokens, device {args.device}, "
          f"{args.threads} threads, median of {args.repeats}")
    for name, (steps, toks) in results.items():
        print(f"  {name:15s} {steps:8.1f} decode steps/s  {toks:10.0f} tokens/s")
    ratio = results["rollout engine"][0] / results["model.generate"][0]
    print(f"  engine / generate: {ratio:.2f}x")


if __name__ == "__main__":
    main()
