"""Command line: ``python -m elpo_min {demo,train,eval,warmup,make-data} ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"


def _eval(args) -> None:
    import time

    import torch

    from . import toy
    from .metrics import evaluate
    from .models import load_policy
    from .rollout import RolloutEngine, render_trajectory

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    model, tokenizer = load_policy(args.model)
    model.eval()
    problems = [toy.problem_from_row(r) for r in toy.load_problems(args.data, limit=args.problems)]
    engine = RolloutEngine(model, tokenizer, temperature=args.temperature)
    summary = evaluate(engine, problems, k=args.k)
    k = args.k
    print(f"held-out problems: {len(problems)} x {k} samples  (policy: {args.model})")
    print(f"success rate (pass@1): {summary['pass@1']:.1%}   pass@{k}: {summary[f'pass@{k}']:.1%}"
          f"   maj@{k}: {summary[f'maj@{k}']:.1%}")
    print(f"tool calls per problem: {summary['tool_calls_per_problem']:.2f}   per solved: "
          f"{summary['tool_calls_per_solved']:.2f}   truncated: {summary['truncated_rate']:.1%}")
    hist = summary["first_error_hist"]
    total = max(sum(hist.values()), 1)
    print("failed trajectories by the oracle's first wrong step:")
    for step, count in hist.items():
        label = f"step {step}" if step != "none" else "no wrong output"
        print(f"  {label:>15}: {'#' * round(40 * count / total):<40} {count}")
    failed = next((t for g in summary["trajectories"] for t in g if not t.success), None)
    example = failed or summary["trajectories"][0][0]
    print("one trajectory (tool outputs in colour):")
    print(render_trajectory(example, tokenizer, color=sys.stdout.isatty()))
    print(f"done in {time.perf_counter() - start:.1f} s")


def _demo() -> None:
    """The main job: ELPO on the shipped tiny policy, CPU-sized, with before/after."""
    import time

    from .config import Config
    from .train import train

    start = time.perf_counter()
    cfg = Config.load(None, {"out_dir": "runs/demo"})
    print(f"ELPO on the toy TIR world: {cfg.steps} steps x {cfg.prompts_per_step} prompts x "
          f"N_total={cfg.n_total} rollouts, held-out pass@1 on {cfg.eval_problems} problems")
    result = train(cfg)
    print(f"log: {result['log']}   curve: {cfg.out_dir}/learning_curve.png   "
          f"({time.perf_counter() - start:.0f} s)")
    print(f"held-out success: {result['before']['success_rate']:.1%} -> {result['after']['success_rate']:.1%}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m elpo_min", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("demo", help="the main job: train the shipped tiny policy with ELPO on CPU")

    p = sub.add_parser("eval", help="evaluate a policy on held-out toy problems")
    p.add_argument("--model", default=str(DATA / "tiny_policy"))
    p.add_argument("--data", default=str(DATA / "toy_test.jsonl"))
    p.add_argument("--problems", type=int, default=200)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)

    p = sub.add_parser("warmup", help="supervised warm-up of the tiny policy")
    p.add_argument("--out", default=str(DATA / "tiny_policy"))
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--p_copy_error", type=float, default=0.1)
    p.add_argument("--p_syntax_error", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--init", default=None, help="continue from this saved tiny policy (constant lr)")
    p.add_argument("--time_limit_s", type=float, default=0.0)
    p.add_argument("--eval_problems", type=int, default=400)

    p = sub.add_parser("make-data", help="regenerate data/toy_{train,test}.jsonl byte for byte")
    p.add_argument("--out", default=str(DATA))

    p = sub.add_parser("train", help="train with ELPO or GRPO: train [--config F] [--resume] [--key value ...]")
    p.add_argument("--config", default=None, help="YAML file of Config fields")
    p.add_argument("--resume", action="store_true", help="continue from out_dir/checkpoint")

    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "demo":
        _demo()
    elif args.command == "eval":
        _eval(args)
    elif args.command == "train":
        from .config import Config, parse_overrides
        from .train import train

        cfg = Config.load(args.config, parse_overrides(rest))
        result = train(cfg, resume=args.resume)
        before = f"{result['before']['success_rate']:.1%} -> " if result["before"] else ""
        print(f"log: {result['log']}   curve: {cfg.out_dir}/learning_curve.png")
        print(f"held-out success: {before}{result['after']['success_rate']:.1%}")
    elif args.command == "warmup":
        import torch

        from .warmup import warmup

        torch.set_num_threads(args.threads)
        record = warmup(args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                        p_copy_error=args.p_copy_error, p_syntax_error=args.p_syntax_error,
                        seed=args.seed, init=args.init, time_limit_s=args.time_limit_s,
                        eval_problems=args.eval_problems)
        print(record)
    elif args.command == "make-data":
        from .toy import make_data

        make_data(args.out)
        print(f"wrote {args.out}/toy_train.jsonl and toy_test.jsonl")


if __name__ == "__main__":
    main()
