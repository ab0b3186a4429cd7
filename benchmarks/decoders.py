"""The CPU demo with each decoder, one after the other in one run: the fast decoder against its
reference, the plain loop.

Both draw the same samples from the same random stream, so the two runs should print the same
``held-out success`` line unless float rounding flips a sampled token somewhere; what differs is
the time spent in rollouts (``rollout_s``, summed over the steps of ``metrics.jsonl``).

    python benchmarks/decoders.py --out runs/decoders      # about 8 minutes on a 2-core CPU

Writes ``<out>/<decoder>/metrics.jsonl`` and prints a table; ``--steps`` shortens both runs.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from elpo_min.diagnostics import read_log


def cpu_name() -> str:
    """The CPU's model name (Linux), so that a timing says which machine it came from."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(
            line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")
        )
    except (OSError, StopIteration):
        return "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/decoders")
    ap.add_argument("--steps", type=int, default=30, help="the demo's 30 by default")
    args = ap.parse_args()
    rows = []
    for decoder in ("fast", "plain"):
        out_dir = Path(args.out) / decoder
        command = [sys.executable, "-m", "elpo_min", "train", "--decoder", decoder]
        command += ["--steps", str(args.steps), "--out_dir", str(out_dir), "--progress", "false"]
        start = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
        records = read_log(out_dir / "metrics.jsonl")
        steps = [r for r in records if "rollout_s" in r]
        rows.append(
            {
                "decoder": decoder,
                "wall_s": round(wall, 1),
                "rollout_s": round(sum(r["rollout_s"] for r in steps), 1),
                "update_s": round(sum(r["step_s"] - r["rollout_s"] for r in steps), 1),
                "result": done.stdout.strip().splitlines()[-1],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{cpu_name()}, {args.steps} steps of the demo config")
    print("| decoder | wall | rollouts (sum of rollout_s) | updates | printed |")
    print("|---|---|---|---|---|")
    for r in rows:
        times = f"{r['wall_s']} s | {r['rollout_s']} s | {r['update_s']} s"
        print(f"| {r['decoder']} | {times} | {r['result']} |")
    record = {"cpu": cpu_name(), "steps": args.steps, "rows": rows}
    (Path(args.out) / "decoders.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
