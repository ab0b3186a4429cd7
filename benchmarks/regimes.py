"""ELPO vs GRPO in the regimes where error localization could matter.

Each regime is a problem shape, a policy re-warmed for it (supervised, continued from the
shipped tiny policy on that shape's demonstrations) and training flags:

* ``long``: 10-11 tool steps per problem, so a failure has many sound turns to protect;
* ``hard``: 3-5 steps, one of them +/- a 7-digit operand; the warm-up's demonstrations
  mis-copy that operand 30% of the time and any carried value only 2%, so the policy's
  fatal errors concentrate at one step per problem (``toy.hard_step``);
* ``paper``: the shipped data and policy with the paper's update regime, mini-batches of 16
  of the 128 rollouts, 8 policy updates per step (the ratio leaves 1, clipping can bind).

For each regime this writes the data, warms the policy up, reports where the policy's fatal
steps fall (``toy.fatal_step`` on held-out rollouts), runs ``sample_efficiency.py --arms grpo
elpo`` (equal rollouts per prompt, paired seeds) and averages each run's logged step-level
credit metrics (``metrics.credit_metrics``) over its steps::

    python benchmarks/regimes.py --regimes long hard --seeds 0 1 2 3 4 5 --out runs/regimes

Writes ``<out>/<regime>/efficiency_*`` and ``<out>/<regime>/regime_summary.md``, copied to
``<results>/regime_<regime>_{rows.json,summary.md,curves.png,credit.json}``. Steps already done
(a data
file, a warmed policy, a finished run) are kept, so a rerun resumes.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from credit import METRICS, interval, run_means  # noqa: E402

from elpo_min.diagnostics import read_log  # noqa: E402
from elpo_min.tasks import data_dir  # noqa: E402

REGIMES = {
    "long": {
        "shape": {"min_ops": 10, "max_ops": 11},
        "seeds": (31, 32),
        "warmup": ["--p_copy_error", "0.04"],
        "train": ["--max_turns", "14"],
        "steps": 12,
        "eval_every": 6,
    },
    "hard": {
        "shape": {"min_ops": 3, "max_ops": 5, "hard_digits": 7},
        "seeds": (41, 42),
        "warmup": ["--p_copy_error", "0.02", "--p_hard_error", "0.3"],
        "train": [],
        "steps": 15,
        "eval_every": 3,
    },
    "paper": {"shape": None, "train": ["--minibatch_size", "16"], "steps": 15, "eval_every": 3},
}


def prepare(name: str, regime: dict, out: Path, python: str) -> list[str]:
    """Data and warmed policy of a regime (skipped when present); returns its training flags."""
    from elpo_min import toy
    from elpo_min.tasks import save_problems

    if regime["shape"] is None:
        return regime["train"]
    train, test, policy = (
        out / f"{name}_train.jsonl",
        out / f"{name}_test.jsonl",
        out / f"{name}_policy",
    )
    if not test.exists():
        splits = (
            (train, regime["seeds"][0], 3000, "train"),
            (test, regime["seeds"][1], 800, "test"),
        )
        for path, seed, n, split in splits:
            save_problems(
                toy.generate_problems(n, seed, prefix=name + split, **regime["shape"]), path
            )
    if not (policy / "tiny_policy.json").exists():
        shape = [x for k, v in regime["shape"].items() for x in (f"--{k}", str(v))]
        subprocess.run(
            [
                python,
                "-m",
                "elpo_min",
                "warmup",
                "--out",
                str(policy),
                "--init",
                str(data_dir() / "tiny_policy"),
                "--steps",
                "300",
                "--lr",
                "3e-4",
                "--p_syntax_error",
                "0.1",
                *regime["warmup"],
                *shape,
                "--test_data",
                str(test),
                "--threads",
                "1",
            ],
            check=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    return [
        "--model",
        str(policy),
        "--train_data",
        str(train),
        "--test_data",
        str(test),
        *regime["train"],
    ]


def where_fatal(policy: str, test: str, hard: bool, n: int = 400, seed: int = 0) -> dict:
    """Held-out rollouts of ``policy``: success, the share of failures with a fatal step, the
    mean fatal step, and (``hard``) the share of fatal steps at the problem's ``toy.hard_step``."""
    import torch

    from elpo_min import toy
    from elpo_min.diagnostics import evaluate
    from elpo_min.models import load_policy
    from elpo_min.rollout import RolloutEngine
    from elpo_min.tasks import load_problems
    from elpo_min.tools import run_arith

    torch.manual_seed(seed)
    model, tokenizer = load_policy(policy)
    problems = load_problems(test, limit=n)
    engine = RolloutEngine(model, tokenizer, tool=run_arith, max_turns=14)
    result = evaluate(engine, problems, progress=False)
    failed = [t for group in result["trajectories"] for t in group if not t.success]
    fatal = [(toy.fatal_step(t.problem, t.tool_outputs), t.problem) for t in failed]
    steps = [(s, p) for s, p in fatal if s is not None]
    share = (
        {"fatal_at_hard_step": sum(s == toy.hard_step(p) for s, p in steps) / max(len(steps), 1)}
        if hard
        else {}
    )
    return {
        "success": result["success_rate"],
        "failures": len(failed),
        "with_fatal_step": len(steps) / max(len(failed), 1),
        "mean_fatal_step": statistics.mean(s for s, _ in steps) if steps else None,
        "mean_steps": statistics.mean(len(p.ops) for p in problems),
        **share,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--regimes", nargs="+", default=["long", "hard"], choices=list(REGIMES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/regimes")
    ap.add_argument("--results", default=str(HERE / "results"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.regimes:
        regime = REGIMES[name]
        flags = prepare(name, regime, out, sys.executable)
        runs = out / name
        subprocess.run(
            [
                sys.executable,
                str(HERE / "sample_efficiency.py"),
                "--arms",
                "grpo",
                "elpo",
                "--seeds",
                *map(str, args.seeds),
                "--steps",
                str(regime["steps"]),
                "--eval_every",
                str(regime["eval_every"]),
                "--parallel",
                str(args.parallel),
                "--out",
                str(runs),
                *flags,
            ],
            check=True,
        )
        report = [
            f"## {name}: `{' '.join(flags)}`",
            "",
            (runs / "efficiency_summary.md").read_text(),
        ]
        fatal = None
        if regime["shape"] is not None:
            fatal = where_fatal(flags[1], flags[5], hard="hard_digits" in regime["shape"])
            report += [
                "",
                "Where the warmed policy's fatal steps fall (400 held-out problems): "
                f"`{json.dumps(fatal)}`",
            ]
        lines = ["| rule | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
        credit = {"regime": name, "fatal": fatal, "rules": {}}
        for rule, arm, suffix in (
            ("ELPO A_hier", "elpo", ""),
            ("lambda_tree = 0, ELPO's trees", "elpo", "_lambda0"),
            ("GRPO", "grpo", ""),
        ):
            logs = [read_log(runs / f"{arm}-{s}" / "metrics.jsonl") for s in args.seeds]
            means = [run_means(log, suffix) for log in logs]
            credit["rules"][rule] = means  # per seed
            lines.append(
                f"| {rule} | " + " | ".join(interval([m[k] for m in means]) for k in METRICS) + " |"
            )
        report += [
            "",
            "Credit metrics, mean over steps per run, mean ± 95% interval over seeds:",
            "",
            *lines,
            "",
        ]
        (runs / "regime_summary.md").write_text("\n".join(report) + "\n")
        (runs / "regime_credit.json").write_text(json.dumps(credit, indent=2) + "\n")
        for src, dst in (
            ("efficiency_rows.json", "rows.json"),
            ("regime_summary.md", "summary.md"),
            ("efficiency_curves.png", "curves.png"),
            ("regime_credit.json", "credit.json"),
        ):
            shutil.copy(runs / src, Path(args.results) / f"regime_{name}_{dst}")
        print("\n".join(report))


if __name__ == "__main__":
    main()
