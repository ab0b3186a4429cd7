"""Command line: ``python -m elpo_min {demo,train,eval,warmup,make-data} ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"


def _eval(args, overrides: dict) -> None:
    import time

    import torch

    from .config import Config
    from .metrics import evaluate
    from .models import load_policy
    from .rollout import render_trajectory
    from .tasks import load_task
    from .train import make_engine

    cfg, start = Config.load(args.config, {**overrides, "eval_problems": args.problems}), time.perf_counter()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model, tokenizer = load_policy(cfg.model, gguf_file=cfg.gguf_file, dtype=cfg.dtype)
    model.eval()
    task = load_task(cfg.task, cfg.train_data, cfg.test_data, cfg.eval_problems)
    engine = make_engine(model, tokenizer, task, cfg)
    summary, k = evaluate(engine, task.test, k=args.k, progress=cfg.progress), args.k
    print(f"held-out problems: {len(task.test)} x {k} samples  (task: {cfg.task}, policy: {cfg.model}, "
          f"format: {engine.fmt.style}, tool: {engine.executor})")
    print(f"success rate (pass@1): {summary['pass@1']:.1%}   pass@{k}: {summary[f'pass@{k}']:.1%}"
          f"   maj@{k}: {summary[f'maj@{k}']:.1%}")
    print(f"tool calls per problem: {summary['tool_calls_per_problem']:.2f}   per solved: "
          f"{summary['tool_calls_per_solved']:.2f}   truncated: {summary['truncated_rate']:.1%}")
    print(f"format compliance (turns that parse): {summary['format_ok']:.1%}   sandbox errors: "
          f"{summary['tool_error_rate']:.1%} of calls")
    print("answers: " + ", ".join(f"{name} {count}" for name, count in summary["outcomes"].items()))
    if hist := summary["first_error_hist"]:
        print("failed trajectories by the oracle's first wrong step:")
    for step, count in hist.items():
        label = f"step {step}" if step != "none" else "no wrong output"
        print(f"  {label:>15}: {'#' * round(40 * count / max(sum(hist.values()), 1)):<40} {count}")
    trajs = [t for g in summary["trajectories"] for t in g]
    example = max(trajs, key=lambda t: (t.success, t.num_steps > 0, t.answer is not None))
    print("one trajectory (tool outputs in colour):")
    print(render_trajectory(example, tokenizer, color=sys.stdout.isatty()))
    print(f"done in {time.perf_counter() - start:.1f} s")


def _cold_start(args) -> None:
    """Cold start before RL: fenced-TIR demonstrations of the chat-form toy task."""
    import json
    import random
    import time

    import torch

    from . import toy
    from .models import load_policy
    from .rollout import TurnFormat
    from .tasks import TIR_SYSTEM_PROMPT
    from .warmup import chat_example, cold_start

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start, rng, held_out = time.perf_counter(), random.Random(args.seed), toy.held_out()
    model, tokenizer = load_policy(args.model)
    fmt = TurnFormat.for_chat(tokenizer, TIR_SYSTEM_PROMPT)
    problems = [p for p in toy.generate_problems(args.examples, seed=20_000 + args.seed, prefix="cold")
                if (p.start, p.ops) not in held_out]
    examples = [chat_example(fmt, tokenizer, toy.chat_question(p), toy.demo_pieces(
        p, rng, args.p_copy_error, args.p_syntax_error, fenced=True)) for p in problems]
    losses = cold_start(model, examples, args.steps, args.lr, args.batch_size, tokenizer.pad_token_id, args.seed)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    flags = " ".join(f"--{k} {v}" for k, v in vars(args).items() if k != "command")
    record = {"command": f"python -m elpo_min cold-start {flags}", "first_loss": losses[0], "last_loss": losses[-1],
              "minutes": round((time.perf_counter() - start) / 60, 2)}
    Path(args.out, "cold_start.json").write_text(json.dumps(record, indent=2) + "\n")
    print(record)


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

    p = sub.add_parser("eval", help="evaluate a policy on held-out problems: eval [--problems N] [--k K] "
                       "[--key value ...] (Config keys: --model, --task, --max_new_tokens, ...)")
    p.add_argument("--config", default=None, help="YAML file of Config fields")
    p.add_argument("--problems", type=int, default=200)
    p.add_argument("--k", type=int, default=4)

    def options(p, **defaults):  # --name with the default's type; None defaults take strings
        for name, default in defaults.items():
            p.add_argument(f"--{name}", type=str if default is None else type(default), default=default)

    sft = {"p_copy_error": 0.1, "p_syntax_error": 0.1, "seed": 0, "threads": 2}
    options(sub.add_parser("warmup", help="supervised warm-up of the tiny policy (--init: continue one)"),
            out=str(DATA / "tiny_policy"), steps=1500, batch_size=64, lr=1e-3, init=None, time_limit_s=0.0,
            eval_problems=400, min_ops=3, max_ops=6, hard_digits=0, p_hard_error=0.0, test_data=None, **sft)
    options(sub.add_parser("cold-start", help="supervised pass of a chat model on fenced-TIR toy demonstrations"),
            model="smollm2-135m", out="runs/cold_start", steps=60, batch_size=8, lr=1e-4, examples=512, **sft)

    p = sub.add_parser("make-data", help="regenerate data/toy_*.jsonl (or gsm_*.jsonl) byte for byte")
    p.add_argument("--out", default=str(DATA))
    p.add_argument("--task", default="toy", choices=["toy", "gsm"])

    p = sub.add_parser("train", help="train with ELPO or GRPO: train [--config F] [--resume] [--key value ...]")
    p.add_argument("--config", default=None, help="YAML file of Config fields")
    p.add_argument("--resume", action="store_true", help="continue from out_dir/checkpoint")

    from .config import parse_overrides

    args, rest = parser.parse_known_args(argv)
    if rest and args.command not in ("train", "eval"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "demo":
        _demo()
    elif args.command == "eval":
        _eval(args, parse_overrides(rest))
    elif args.command == "train":
        from .config import Config
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
        print(warmup(args.out, **{k: v for k, v in vars(args).items() if k not in ("command", "threads", "out")}))
    elif args.command == "cold-start":
        _cold_start(args)
    elif args.command == "make-data":
        from .tasks import make_gsm_data
        from .toy import make_data

        (make_data if args.task == "toy" else make_gsm_data)(args.out)
        print(f"wrote the {args.task} splits to {args.out}")


if __name__ == "__main__":
    main()
