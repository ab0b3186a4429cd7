"""The command line: ``python -m elpo_min {demo,train,eval,warmup,cold-start,make-data}``."""

from __future__ import annotations

import argparse
import sys
import time

from ..config import Config
from ..errors import UserError

DESCRIPTION = (
    "ELPO (Error-Localized Policy Optimization) for tool-using LLM agents, small and readable."
)


def cmd_demo(args, overrides: dict) -> None:
    """The main job: ELPO on the shipped tiny policy, CPU-sized, with before/after.

    The demo decodes with the core's plain decoder, the loop a learner reads in
    ``elpo_min.rollout``: it costs about a fifth more wall time than the fast decoder on a 2-core
    CPU (246 s against 200 s, docs/results.md), and draws the same samples.
    """
    from .config_io import load_config

    start = time.perf_counter()
    cfg = load_config(None, {"out_dir": "runs/demo", "decoder": "plain", **overrides})
    from .build import run_training

    print(
        f"ELPO on the toy TIR world: {cfg.steps} steps x {cfg.prompts_per_step} prompts x "
        f"N_total={cfg.n_total} rollouts, held-out pass@1 on {cfg.eval_problems} problems"
    )
    result = run_training(cfg)
    elapsed = time.perf_counter() - start
    print(f"rollouts: the {cfg.decoder} decoder   update: {result['update']} log-probs")
    print(f"log: {result['log']}   curve: {cfg.out_dir}/learning_curve.png   ({elapsed:.0f} s)")
    before, after = result["before"]["success_rate"], result["after"]["success_rate"]
    print(f"held-out success: {before:.1%} -> {after:.1%}")


def cmd_train(args, overrides: dict) -> None:
    from .config_io import load_config, load_resumed_config, read_yaml, resume_changes

    if args.resume:
        from_file = read_yaml(args.config) if args.config else {}
        out_dir = overrides.get("out_dir") or from_file.get("out_dir") or Config.out_dir
        cfg = load_resumed_config(args.config, overrides, out_dir)
        changes = resume_changes(cfg, out_dir)
        if changes:
            # allowed, but never silent
            print(changes)
    else:
        cfg = load_config(args.config, overrides)
    # the config is checked before torch and the model are loaded
    from .build import run_training

    result = run_training(cfg, resume=args.resume)
    before = f"{result['before']['success_rate']:.1%} -> " if result["before"] else ""
    print(f"log: {result['log']}   curve: {cfg.out_dir}/learning_curve.png")
    print(f"held-out success: {before}{result['after']['success_rate']:.1%}")


def print_error_histogram(hist: dict) -> None:
    """The failed trajectories by the oracle's first wrong step, as a bar per step."""
    if not hist:
        return
    print("failed trajectories by the oracle's first wrong step:")
    total = max(sum(hist.values()), 1)
    for step, count in hist.items():
        label = f"step {step}" if step != "none" else "no wrong output"
        print(f"  {label:>15}: {'#' * round(40 * count / total):<40} {count}")


def cmd_eval(args, overrides: dict) -> None:
    from .config_io import load_config

    start = time.perf_counter()
    cfg = load_config(args.config, {**overrides, "eval_problems": args.problems})
    import torch

    from ..diagnostics import evaluate, render_trajectory
    from ..models import load_policy
    from ..tasks import load_task
    from .build import executor_name, make_engine, use_threads, uses_chat_format

    task = load_task(cfg.task, cfg.train_data, cfg.test_data, cfg.eval_problems)
    use_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model, tokenizer = load_policy(cfg.model, gguf_file=cfg.gguf_file, dtype=cfg.dtype)
    model.eval()
    engine = make_engine(model, tokenizer, task, cfg)
    k = args.k
    summary = evaluate(engine, task.test, k=k, progress=cfg.progress)
    chat = uses_chat_format(tokenizer, cfg)
    tool = executor_name(task, chat, cfg)
    fmt = "fenced (chat template)" if chat else "toy tags"
    print(
        f"held-out problems: {len(task.test)} x {k} samples  (task: {cfg.task}, policy: "
        f"{cfg.model}, format: {fmt}, tool: {tool})"
    )
    print(
        f"success rate (pass@1): {summary['pass@1']:.1%}   pass@{k}: {summary[f'pass@{k}']:.1%}"
        f"   maj@{k}: {summary[f'maj@{k}']:.1%}"
    )
    print(
        f"tool calls per problem: {summary['tool_calls_per_problem']:.2f}   per solved: "
        f"{summary['tool_calls_per_solved']:.2f}   truncated: {summary['truncated_rate']:.1%}"
    )
    print(
        f"format compliance (turns that parse): {summary['format_ok']:.1%}   sandbox errors: "
        f"{summary['tool_error_rate']:.1%} of calls"
    )
    print("answers: " + ", ".join(f"{name} {count}" for name, count in summary["outcomes"].items()))
    print_error_histogram(summary["first_error_hist"])
    trajs = [t for group in summary["trajectories"] for t in group]
    example = max(trajs, key=lambda t: (t.success, t.num_steps > 0, t.answer is not None))
    print("one trajectory (tool outputs in colour):")
    print(render_trajectory(example, tokenizer, color=sys.stdout.isatty()))
    print(f"done in {time.perf_counter() - start:.1f} s")


def cmd_warmup(args, overrides: dict) -> None:
    from ..sft import warmup
    from ..tasks import data_dir
    from .build import use_threads

    use_threads(args.threads)
    options = {
        k: v for k, v in vars(args).items() if k not in ("command", "threads", "out", "debug")
    }
    print(warmup(args.out or data_dir() / "tiny_policy", **options))


def cmd_cold_start(args, overrides: dict) -> None:
    """Cold start before RL: fenced-TIR demonstrations of the chat-form toy task."""
    from ..sft import run_cold_start
    from ..sft.warmup import reproducing_command
    from .build import use_threads

    use_threads(args.threads)
    options = {k: v for k, v in vars(args).items() if k not in ("command", "debug")}
    command = reproducing_command("cold-start", options)
    del options["threads"]
    print(run_cold_start(options.pop("model"), command=command, **options))


def cmd_make_data(args, overrides: dict) -> None:
    from ..tasks import make_data, make_gsm_data

    if args.task == "toy":
        make_data(args.out)
    else:
        make_gsm_data(args.out)
    print(f"wrote the {args.task} splits to {args.out or 'the data folder'}")


def add_options(parser, **defaults) -> None:
    """``--name`` for each default, typed like it (None defaults take strings)."""
    for name, default in defaults.items():
        kind = str if default is None else type(default)
        parser.add_argument(f"--{name}", type=kind, default=default)


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one line on stderr and exit code 2."""

    def error(self, message: str):
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def make_parser() -> argparse.ArgumentParser:
    epilog = (
        "A mistake in a config, a data file or a path is one line; --debug shows the traceback."
    )
    parser = Parser(prog="python -m elpo_min", description=DESCRIPTION, epilog=epilog)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="the main job: train the shipped tiny policy with ELPO on CPU")
    p = sub.add_parser(
        "eval",
        help="evaluate a policy on held-out problems: eval [--problems N] [--k K] "
        "[--key value ...] (Config keys: --model, --task, --max_new_tokens, ...)",
    )
    p.add_argument("--config", default=None, help="YAML file of Config fields")
    p.add_argument("--problems", type=int, default=200)
    p.add_argument("--k", type=int, default=4)
    sft = {"p_copy_error": 0.1, "p_syntax_error": 0.1, "seed": 0, "threads": 0}
    p = sub.add_parser(
        "warmup", help="supervised warm-up of the tiny policy (--init: continue one)"
    )
    add_options(
        p,
        out=None,
        steps=1500,
        batch_size=64,
        lr=1e-3,
        init=None,
        time_limit_s=0.0,
        eval_problems=400,
        min_ops=3,
        max_ops=6,
        hard_digits=0,
        p_hard_error=0.0,
        test_data=None,
        **sft,
    )
    p = sub.add_parser(
        "cold-start", help="supervised pass of a chat model on fenced-TIR toy demonstrations"
    )
    add_options(
        p,
        model="smollm2-135m",
        out="runs/cold_start",
        steps=60,
        batch_size=8,
        lr=1e-4,
        examples=512,
        **sft,
    )
    p = sub.add_parser(
        "make-data", help="regenerate data/toy_*.jsonl (or gsm_*.jsonl) byte for byte"
    )
    p.add_argument("--out", default=None, help="folder (default: the shipped data folder)")
    p.add_argument("--task", default="toy", choices=["toy", "gsm"])
    p = sub.add_parser(
        "train", help="train with ELPO or GRPO: train [--config F] [--resume] [--key value ...]"
    )
    p.add_argument("--config", default=None, help="YAML file of Config fields")
    p.add_argument("--resume", action="store_true", help="continue from out_dir/checkpoint")
    return parser


COMMANDS = {
    "demo": cmd_demo,
    "train": cmd_train,
    "eval": cmd_eval,
    "warmup": cmd_warmup,
    "cold-start": cmd_cold_start,
    "make-data": cmd_make_data,
}


def main(argv: list[str] | None = None) -> None:
    """Run a command; a :class:`~elpo_min.errors.UserError` is one line and exit code 2."""
    from .config_io import parse_overrides

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    parser = make_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command not in ("train", "eval"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        COMMANDS[args.command](args, parse_overrides(rest))
    except UserError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        if debug:
            raise
        # the trainer has already said what it saved; 130 is the shell's code for Ctrl-C
        raise SystemExit(130) from None
