"""Peak memory of the log-prob head in training, on CPU: the fused backward against autograd.

The output head is most of a small model's training memory: Qwen2.5's vocabulary has
151,936 entries, so one chunk of 1024 tokens has 622 MB of fp32 logits. Two ways to take
log p(target) through it, each chunk recomputed in backward:

* ``autograd``: ``head(h).float() / T``, ``logsumexp``, ``gather`` under
  ``torch.utils.checkpoint`` (elpo_min before the fused head); autograd's backward holds
  several [c, V] fp32 tensors at once;
* ``fused``: :class:`elpo_min.fast_update.HeadLogprobs`, whose backward turns one recomputed
  [c, V] buffer into d logp / d logit in place.

Each (method, chunk) runs in a fresh process: bf16 hidden states [N, 896] (the 0.5B width)
and a frozen bf16 head (LoRA trains no head), forward and backward of ``logp.sum()``, and the
peak resident memory above the start (``ru_maxrss``; large CPU tensors are their own mmap, so
this tracks the live tensors). GPU figures come from ``gpu_check.py``::

    python benchmarks/logprob_memory.py --tokens 1024 --chunks 1024 256

Writes ``benchmarks/results/logprob_memory_cpu.json`` (``--out``).
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

VOCAB, WIDTH = 151_936, 896


def autograd_chunk(head, hidden, targets, temperature):
    logits = head(hidden).float() / temperature  # [c, V]
    return logits.gather(-1, targets[:, None]).squeeze(-1) - logits.logsumexp(-1)  # [c]


def measure(method: str, chunk: int, tokens: int) -> dict:
    import torch
    from torch.utils.checkpoint import checkpoint

    from elpo_min.fast_update import HeadLogprobs

    torch.set_num_threads(1)
    torch.manual_seed(0)
    head = torch.nn.Linear(WIDTH, VOCAB, bias=False, dtype=torch.bfloat16).requires_grad_(False)
    hidden = torch.randn(tokens, WIDTH, dtype=torch.bfloat16, requires_grad=True)  # [N, H]
    targets = torch.randint(0, VOCAB, (tokens,))  # [N]
    start_gib = int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**30  # resident now
    start = time.perf_counter()
    if method == "fused":
        pieces = [
            HeadLogprobs.apply(hidden[s : s + chunk], head.weight, targets[s : s + chunk], 1.0)
            for s in range(0, tokens, chunk)
        ]
    else:
        pieces = [
            checkpoint(
                autograd_chunk,
                head,
                hidden[s : s + chunk],
                targets[s : s + chunk],
                1.0,
                use_reentrant=False,
            )
            for s in range(0, tokens, chunk)
        ]
    torch.cat(pieces).sum().backward()
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {
        "method": method,
        "chunk": chunk,
        "tokens": tokens,
        "peak_above_start_gib": round(peak_gib - start_gib, 3),
        "seconds": round(time.perf_counter() - start, 2),
        "grad_norm": hidden.grad.float().norm().item(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--chunks", type=int, nargs="+", default=[1024, 256])
    ap.add_argument("--out", default="benchmarks/results/logprob_memory_cpu.json")
    # internal: METHOD CHUNK in this process
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), args.tokens)))
        return
    rows = []
    for chunk in args.chunks:
        for method in ("autograd", "fused"):
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--tokens",
                    str(args.tokens),
                    "--one",
                    method,
                    str(chunk),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            rows.append(json.loads(done.stdout.splitlines()[-1]))
    print(
        f"{args.tokens} tokens, vocabulary {VOCAB}, width {WIDTH}, bf16, "
        f"CPU ({platform.processor() or 'cpu'})"
    )
    print("| chunk | autograd peak | fused peak | autograd s | fused s | |grad| equal |")
    print("|---|---|---|---|---|---|")
    for chunk in args.chunks:
        a, f = (
            next(r for r in rows if r["chunk"] == chunk and r["method"] == m)
            for m in ("autograd", "fused")
        )
        same = abs(a["grad_norm"] - f["grad_norm"]) <= 1e-2 * a["grad_norm"]
        print(
            f"| {chunk} | {a['peak_above_start_gib']:.2f} GiB "
            f"| {f['peak_above_start_gib']:.2f} GiB "
            f"| {a['seconds']:.1f} | {f['seconds']:.1f} | {same} |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
