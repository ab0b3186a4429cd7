"""Sample efficiency at equal rollouts per prompt: held-out pass@1 curves over seeds.

Every (arm, seed) is one ``python -m elpo_min train`` run with held-out evaluation every
``--eval_every`` steps; arms differ only in their flags, so every arm spends the same
N_total rollouts per prompt per step. Runs go ``--parallel`` at a time, one thread each.

    python benchmarks/sample_efficiency.py --seeds 0 1 2 3 4 5 --steps 15 --out runs/efficiency

Writes ``<out>/efficiency_summary.md`` (pass@1 per step: mean and 95% t-interval; the
paired ELPO − GRPO difference; rollouts per prompt to reach ``--target``),
``<out>/efficiency_curves.png`` and ``<out>/efficiency_rows.json``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from elpo_min.diagnostics import mean_ci, read_log

ARMS = {
    "grpo": ["--algo", "grpo"],
    "elpo": ["--algo", "elpo"],
    "elpo_lambda0": ["--algo", "elpo", "--lambda_tree", "0"],
    "elpo_no_elc": ["--algo", "elpo", "--eps_elc", "0"],
    "elpo_random_anchors": ["--algo", "elpo"],
}
RUNNER = {
    "elpo_random_anchors": [str(Path(__file__).with_name("random_anchors.py"))]
}  # default: -m elpo_min


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--arms", nargs="+", default=["grpo", "elpo"], choices=list(ARMS))
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--eval_every", type=int, default=3)
    ap.add_argument("--eval_problems", type=int, default=400)
    ap.add_argument("--target", type=float, default=0.65)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/efficiency")
    args, extra = ap.parse_known_args()
    out = Path(args.out)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }

    def run(job):
        arm, seed = job
        run_dir = out / f"{arm}-{seed}"
        cmd = [
            sys.executable,
            *RUNNER.get(arm, ["-m", "elpo_min"]),
            "train",
            *ARMS[arm],
            "--seed",
            str(seed),
            "--steps",
            str(args.steps),
            "--eval_every",
            str(args.eval_every),
            "--eval_problems",
            str(args.eval_problems),
            "--save_every",
            str(args.steps),
            "--threads",
            "1",
            "--progress",
            "false",
            "--out_dir",
            str(run_dir),
            *extra,
        ]
        log_path = run_dir / "metrics.jsonl"
        if not (
            log_path.exists()
            and any(r["step"] == args.steps and "eval" in r for r in read_log(log_path))
        ):
            # else finished: a rerun resumes
            subprocess.run(cmd, check=True, env=env, capture_output=True)
        log = read_log(log_path)
        return {
            "arm": arm,
            "seed": seed,
            "curve": {r["step"]: r["eval"]["success_rate"] for r in log if "eval" in r},
            "rollouts_per_step": next(
                r["rollouts_per_prompt"] for r in log if "rollouts_per_prompt" in r
            ),
        }

    jobs = [(arm, seed) for seed in args.seeds for arm in args.arms]
    with ThreadPoolExecutor(args.parallel) as pool:
        rows = list(pool.map(run, jobs))
    steps = sorted(rows[0]["curve"])
    lines = [
        "| rollouts per prompt | step | " + " | ".join(args.arms) + " |",
        "|---" * (len(args.arms) + 2) + "|",
    ]
    curves = {}
    for arm in args.arms:
        mine = [r for r in rows if r["arm"] == arm]
        curves[arm] = [mean_ci([r["curve"][s] for r in mine]) for s in steps]
    per_step = rows[0]["rollouts_per_step"]
    for i, s in enumerate(steps):
        cells = [f"{curves[a][i][0]:.1%} ± {curves[a][i][1]:.1%}" for a in args.arms]
        lines.append(f"| {s * per_step:.0f} | {s} | " + " | ".join(cells) + " |")
    notes = []
    for arm in args.arms:
        reach = next((s for s, (m, _) in zip(steps, curves[arm]) if m >= args.target), None)
        when = (
            f"after {reach * per_step:.0f} rollouts per prompt (step {reach})"
            if reach is not None
            else "never"
        )
        notes.append(f"- {arm}: mean pass@1 first reaches {args.target:.0%}: {when}")
    for arm in args.arms:
        if arm != "grpo" and "grpo" in args.arms:
            diffs = [
                next(r for r in rows if r["arm"] == arm and r["seed"] == seed)["curve"][steps[-1]]
                - next(r for r in rows if r["arm"] == "grpo" and r["seed"] == seed)["curve"][
                    steps[-1]
                ]
                for seed in args.seeds
            ]
            m, h = mean_ci(diffs)
            notes.append(
                f"- {arm} − grpo at step {steps[-1]}, paired over {len(diffs)} seeds: "
                f"{m * 100:+.1f} ± {h * 100:.1f} points (95% interval)"
            )
            mine = {r["seed"]: r["curve"] for r in rows if r["arm"] == arm}
            base = {r["seed"]: r["curve"] for r in rows if r["arm"] == "grpo"}
            m, h = mean_ci(
                [
                    statistics.mean(mine[seed][s] - base[seed][s] for s in steps[1:])
                    for seed in args.seeds
                ]
            )
            notes.append(
                f"- {arm} − grpo averaged over the evaluations after step 0, paired: "
                f"{m * 100:+.1f} ± {h * 100:.1f} points"
            )
    summary = (
        f"{len(args.seeds)} seeds, pass@1 on {args.eval_problems} held-out problems, "
        "mean ± 95% t-interval\n\n" + "\n".join(lines) + "\n\n" + "\n".join(notes)
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "efficiency_rows.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "efficiency_summary.md").write_text(summary + "\n")
    print(summary)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = [s * per_step for s in steps]
    for arm in args.arms:
        m = [c[0] for c in curves[arm]]
        ax.plot(x, m, marker="o", label=arm)
        ax.fill_between(
            x,
            [a - c[1] for a, c in zip(m, curves[arm])],
            [a + c[1] for a, c in zip(m, curves[arm])],
            alpha=0.2,
        )
    ax.set(
        xlabel="rollouts per prompt",
        ylabel="held-out pass@1",
        title=f"equal rollouts per prompt, {len(args.seeds)} seeds (95% intervals)",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "efficiency_curves.png", dpi=120)


if __name__ == "__main__":
    main()
