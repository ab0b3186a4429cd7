"""Where each advantage rule puts credit, measured on the rollouts of real training runs.

For every seed, one ELPO run and one GRPO run with the same settings (equal rollouts per
prompt). Each step's ``metrics.jsonl`` record carries the step-level credit metrics
of ``diagnostics.credit_metrics``: for ELPO its A_hier and lambda_tree = 0 on the same
trees, for GRPO its own advantages. A run's figure is the mean over its steps; the table
gives the mean over seeds with a 95% t-interval, and held-out pass@1 at the end.

    python benchmarks/credit.py --seeds 0 1 2 --steps 10 --out runs/credit [--key value ...]

Writes ``<out>/credit_summary.md`` and ``<out>/credit_rows.json``.
"""

import argparse
import json
import statistics
from pathlib import Path

from elpo_min.diagnostics import mean_ci, read_log
from elpo_min.launch import load_config, parse_overrides, run_training

METRICS = (
    "credit_auc",
    "sound_punished",
    "unequal_failed",
    "elc_fatal",
    "elc_sound",
    "clip_frac_in_region",
    "clip_frac_out_region",
)


def run_means(log: list[dict], suffix: str = "") -> dict:
    steps = [r for r in log if "loss" in r]
    out = {}
    for key in METRICS:
        name = key if key.startswith("clip") else key + suffix  # clip fractions belong to the run
        values = [r.get(name) for r in steps if r.get(name) is not None]
        out[key] = statistics.mean(values) if values else None
    return out


def interval(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    mean, half = mean_ci(values)
    if len(values) == 1:
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {half:.3f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default="runs/credit")
    args, rest = ap.parse_known_args()
    overrides = {
        "steps": args.steps,
        "eval_every": args.steps,
        "save_every": args.steps,
        "progress": False,
        **parse_overrides(rest),
    }
    out = Path(args.out)
    rows = []
    for seed in args.seeds:
        for algo in ("elpo", "grpo"):
            cfg = load_config(
                None,
                {**overrides, "seed": seed, "algo": algo, "out_dir": str(out / f"{algo}-{seed}")},
            )
            result = run_training(cfg)
            log = read_log(result["log"])
            if algo == "elpo":
                rules = [("ELPO A_hier", ""), ("ELPO tree, lambda_tree=0", "_lambda0")]
            else:
                rules = [("GRPO", "")]
            for rule, suffix in rules:
                rows.append(
                    {
                        "seed": seed,
                        "rule": rule,
                        **run_means(log, suffix),
                        "after": result["after"]["success_rate"],
                    }
                )
    lines = [
        "| rule | AUC sound > fatal | sound turns punished | failures with unequal turns | "
        "fatal tokens under ELC | sound tokens under ELC | clipped, error suffix | "
        "clipped, elsewhere "
        "| held-out pass@1 after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rule in dict.fromkeys(r["rule"] for r in rows):
        mine = [r for r in rows if r["rule"] == rule]
        cells = [interval([r[k] for r in mine]) for k in METRICS] + [
            interval([r["after"] for r in mine])
        ]
        if rule == "ELPO tree, lambda_tree=0":  # the same run: only the advantage rule differs
            cells[3:] = ["n/a"] * (len(cells) - 3)
        elif rule == "GRPO":
            cells[3] = cells[4] = cells[5] = "n/a"
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    summary = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "credit_rows.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "credit_summary.md").write_text(summary + "\n")
    print(
        f"{len(args.seeds)} seeds x {args.steps} steps, mean over steps, "
        "mean ± 95% interval over seeds"
    )
    print(summary)


if __name__ == "__main__":
    main()
