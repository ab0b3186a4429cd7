"""ELPO vs GRPO vs continued supervised training on the toy, over several seeds.

For each seed: ELPO with the demo settings; GRPO with the same rollouts per prompt
per step, run until ELPO's wall time (its held-out success is read at ELPO's step
count for the equal-budget comparison, and at the end for equal wall time); and
continued supervised warm-up for the same wall time. All runs evaluate pass@1 on
the same held-out problems with the same sampling settings.

    python benchmarks/compare.py --seeds 0 1 2 --out runs/compare [--key value ...]

Writes ``runs/compare/summary.md`` and ``runs/compare/curves.png``.
"""

import argparse
import json
import time
from pathlib import Path

from elpo_min.diagnostics import plot_learning_curve, read_log
from elpo_min.launch import load_config, parse_overrides, run_training
from elpo_min.sft import warmup


def eval_at(records, step):
    return next(
        (r["eval"]["success_rate"] for r in records if r["step"] == step and "eval" in r), None
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="runs/compare")
    ap.add_argument("--skip_sft", action="store_true")
    args, rest = ap.parse_known_args()
    overrides = parse_overrides(rest)
    out = Path(args.out)
    rows, logs = [], []
    for seed in args.seeds:
        elpo_cfg = load_config(
            None, {**overrides, "seed": seed, "algo": "elpo", "out_dir": str(out / f"elpo-{seed}")}
        )
        start = time.perf_counter()
        elpo = run_training(elpo_cfg)
        wall = time.perf_counter() - start
        grpo_cfg = load_config(
            None,
            {
                **overrides,
                "seed": seed,
                "algo": "grpo",
                "steps": 10 * elpo_cfg.steps,
                "time_limit_s": wall,
                "out_dir": str(out / f"grpo-{seed}"),
            },
        )
        grpo = run_training(grpo_cfg)
        grpo_log = read_log(grpo["log"])
        row = {
            "seed": seed,
            "before": elpo["before"]["success_rate"],
            "elpo": elpo["after"]["success_rate"],
            "elpo_wall_s": round(wall),
            "elpo_steps": elpo["steps"],
            "grpo_equal_budget": eval_at(grpo_log, elpo["steps"]),
            "grpo_equal_time": grpo["after"]["success_rate"],
            "grpo_steps": grpo["steps"],
        }
        if not args.skip_sft:
            sft = warmup(
                out / f"sft-{seed}",
                steps=10**6,
                lr=elpo_cfg.lr,
                seed=seed,
                init=elpo_cfg.model,
                time_limit_s=wall,
                eval_problems=elpo_cfg.eval_problems,
                progress=False,
            )
            row["sft_equal_time"] = sft["heldout_success"]
        rows.append(row)
        logs += [(elpo["log"], f"ELPO seed {seed}"), (grpo["log"], f"GRPO seed {seed}")]
        print(json.dumps(row), flush=True)
    (out / "rows.json").write_text(json.dumps(rows, indent=2))
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                f"{r[c]:.1%}" if isinstance(r[c], float) and r[c] <= 1 else str(r[c]) for c in cols
            )
            + " |"
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    plot_learning_curve(
        [p for p, _ in logs],
        out / "curves.png",
        labels=[label for _, label in logs],
        colors=["tab:blue" if label.startswith("ELPO") else "tab:orange" for _, label in logs],
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
