"""Supervised warm-up of the tiny policy on generated demonstrations.

RL needs a policy that succeeds sometimes but not always. We get one reliably by training to
convergence on demonstrations with a *controlled* mistake rate: a converged model imitates the
data, so its per-step error rate sits near ``p_copy_error`` and its held-out success rate near
the product over the steps. The demonstrations also hold recoverable mistakes (a call that
raises, then a retry), without which every error would be terminal. The loss is on action
tokens only (prompt and tool outputs are context), the mask the rollout engine records.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import torch

from .. import toy
from ..rollout import RolloutEngine
from ..tasks.files import data_dir
from ..tasks.toy_data import held_out, load_problems
from ..tools import run_arith
from ..trajectory import TurnFormat
from .cold_start import chat_example, padded_batch, sft_loss
from .demos import demo_pieces


def reproducing_command(subcommand: str, options: dict) -> str:
    """``python -m elpo_min <subcommand> --key value ...`` for the options that are set."""
    flags = "".join(f" --{key} {value}" for key, value in options.items() if value is not None)
    return f"python -m elpo_min {subcommand}{flags}"


def demo_batches(problems, tokenizer, rng, batch_size, **error_rates):
    """Batches (see :func:`~elpo_min.sft.cold_start.padded_batch`) of demonstrations in the
    toy's tag format, bucketed by length (half the padding, half the CPU time) and shuffled.
    ``error_rates`` go to :func:`~elpo_min.sft.demos.demo_pieces`."""
    fmt = TurnFormat()
    examples = [
        chat_example(fmt, tokenizer, p.prompt, demo_pieces(p, rng, **error_rates)) for p in problems
    ]
    examples.sort(key=lambda example: len(example[0]))
    chunks = [examples[i : i + batch_size] for i in range(0, len(examples), batch_size)]
    rng.shuffle(chunks)
    for chunk in chunks:
        yield padded_batch(chunk, tokenizer.pad_token_id)


def warmup(
    out_dir: str | Path,
    steps: int = 1500,
    batch_size: int = 64,
    lr: float = 1e-3,
    p_copy_error: float = 0.1,
    p_syntax_error: float = 0.1,
    seed: int = 0,
    eval_problems: int = 400,
    progress: bool = True,
    init: str | None = None,
    time_limit_s: float = 0.0,
    min_ops: int = 3,
    max_ops: int = 6,
    hard_digits: int = 0,
    p_hard_error: float = 0.0,
    test_data: str | None = None,
) -> dict:
    """Train the tiny policy from scratch and save it, with the record it returns.

    The record (``tiny_policy.json``) holds the command that reproduces the run and its held-out
    success. With ``init`` (a saved tiny policy) it *continues* supervised training at a constant
    ``lr`` instead: the baseline RL gains are compared with.

    Args:
        out_dir: where the model, tokenizer and record go.
        steps, batch_size, lr, seed: of the supervised run; ``time_limit_s`` > 0 stops earlier.
        p_copy_error, p_syntax_error, p_hard_error: mistake rates (:mod:`elpo_min.sft.demos`).
        eval_problems: held-out problems evaluated after training.
        min_ops, max_ops, hard_digits: the problem shape (``toy.generate_problems``).
        test_data: the held-out split (default: the shipped toy test split).
    """
    # what the record's command repeats (the command line calls the folder --out)
    arguments = dict(locals())
    options = {"out": arguments.pop("out_dir"), **arguments}
    options.pop("progress")
    from tqdm import tqdm

    from ..diagnostics.metrics import evaluate
    from ..models import build_tiny_policy, build_tiny_tokenizer, load_policy

    torch.manual_seed(seed)
    rng = random.Random(seed)
    if init:
        model, tokenizer = load_policy(init)
    else:
        tokenizer = build_tiny_tokenizer()
        model = build_tiny_policy(tokenizer, seed=seed)
    test_problems = held_out()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)

    def schedule(s: int) -> float:
        # continued training keeps lr; from scratch: 50 warm-up steps, then a cosine decay
        return 1.0 if init else min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * s / steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    start = time.perf_counter()
    bar = tqdm(total=steps, desc="warm-up", disable=not progress)
    error_rates = {
        "p_copy_error": p_copy_error,
        "p_syntax_error": p_syntax_error,
        "p_hard_error": p_hard_error,
    }
    block = 0
    while bar.n < steps:
        # blocks of 8 batches of fresh problems, bucketed by length
        generated = toy.generate_problems(
            8 * batch_size, 10_000 + block, min_ops, max_ops, prefix="demo", hard_digits=hard_digits
        )
        problems = [p for p in generated if (p.start, p.ops) not in test_problems]
        block += 1
        for batch in demo_batches(problems, tokenizer, rng, batch_size, **error_rates):
            out_of_time = time_limit_s and time.perf_counter() - start > time_limit_s
            if bar.n >= steps or out_of_time:
                steps = bar.n
                break
            loss = sft_loss(model, batch)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    minutes = (time.perf_counter() - start) / 60
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # saved before evaluating: nothing trained is lost
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    model.eval()
    test = load_problems(test_data or data_dir() / "toy_test.jsonl", limit=eval_problems)
    torch.manual_seed(seed)
    engine = RolloutEngine(model, tokenizer, tool=run_arith, max_turns=max(10, max_ops + 4))
    summary = evaluate(engine, test, k=1, progress=progress)
    options["steps"] = steps
    record = {
        "command": reproducing_command("warmup", options),
        "heldout_success": summary["success_rate"],
        "eval_problems": len(test),
        "eval_seed": seed,
        "train_minutes": round(minutes, 2),
        "final_loss": round(loss.item(), 4),
        "params": sum(p.numel() for p in model.parameters()),
        "torch_threads": torch.get_num_threads(),
    }
    (out_dir / "tiny_policy.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
