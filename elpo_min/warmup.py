"""Supervised warm-up of the tiny policy on generated demonstrations.

RL needs a policy that succeeds sometimes but not always. We get one reliably by training
to convergence on demonstrations with a *controlled* mistake rate: a converged model imitates
the data, so its per-step error rate sits near ``p_copy_error`` and the held-out success rate
near the product over steps. The demonstrations also contain recoverable mistakes (a call that
raises, then a retry), without which every error would be terminal. Loss is on action tokens
only (prompt and tool outputs are context), exactly the mask the rollout engine records.
"""

from __future__ import annotations

import json
import math
import random
import time
from functools import partial
from pathlib import Path

import torch

from . import toy
from .models import build_tiny_policy, build_tiny_tokenizer, load_policy, token_logprobs


def demo_batches(problems, tokenizer, rng, batch_size, **error_rates):
    """Right-padded batches ``(ids, attention_mask, loss_mask)``, each [B, T], of demonstrations
    in the toy's tag format, bucketed by length (half the padding and CPU time); the loss mask
    is 0 on the prompt and on ``<o>...</o>`` blocks; ``error_rates`` go to ``toy.demo_pieces``."""
    from .rollout import Trajectory, TurnFormat, collate

    seqs = [chat_example(TurnFormat(), tokenizer, p.prompt, toy.demo_pieces(p, rng, **error_rates))
            for p in problems]
    seqs.sort(key=lambda s: len(s[0]))
    chunks = [seqs[i:i + batch_size] for i in range(0, len(seqs), batch_size)]
    rng.shuffle(chunks)
    for chunk in chunks:
        batch = collate([Trajectory(None, ids, mask, [0.0] * len(ids), [], 0) for ids, mask in chunk],
                        tokenizer.pad_token_id)
        yield batch["input_ids"], batch["attention_mask"], batch["action_mask"]


def warmup(out_dir: str | Path, steps: int = 1500, batch_size: int = 64, lr: float = 1e-3,
           p_copy_error: float = 0.1, p_syntax_error: float = 0.1, seed: int = 0,
           eval_problems: int = 400, progress: bool = True, init: str | None = None,
           time_limit_s: float = 0.0, min_ops: int = 3, max_ops: int = 6, hard_digits: int = 0,
           p_hard_error: float = 0.0, test_data: str | None = None) -> dict:
    """Train the tiny policy from scratch and save it (model, tokenizer, and the record it returns,
    ``tiny_policy.json``: settings and held-out success). With ``init`` (a saved tiny policy) it
    *continues* supervised training at a constant ``lr`` instead: the baseline RL gains are
    compared with. ``time_limit_s`` > 0 stops after that long. ``min_ops``, ``max_ops``, ``hard_digits``,
    ``p_hard_error``: see ``toy.generate_problems`` / ``demo_steps``; ``test_data``: the held-out split."""
    from tqdm import tqdm

    from .metrics import evaluate
    from .rollout import RolloutEngine

    torch.manual_seed(seed)
    rng = random.Random(seed)
    if init:
        model, tokenizer = load_policy(init)
    else:
        tokenizer = build_tiny_tokenizer()
        model = build_tiny_policy(tokenizer, seed=seed)
    held_out = toy.held_out()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 1.0 if init else min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    start = time.perf_counter()
    bar = tqdm(total=steps, desc="warm-up", disable=not progress)
    block = 0
    while bar.n < steps:  # blocks of 8 batches, bucketed by length
        problems = [p for p in toy.generate_problems(8 * batch_size, 10_000 + block, min_ops, max_ops,
                                                     prefix="demo", hard_digits=hard_digits)
                    if (p.start, p.ops) not in held_out]
        block += 1
        for ids, attn, loss_mask in demo_batches(problems, tokenizer, rng, batch_size, p_copy_error=p_copy_error,
                                                 p_syntax_error=p_syntax_error, p_hard_error=p_hard_error):
            if bar.n >= steps or (time_limit_s and time.perf_counter() - start > time_limit_s):
                steps = bar.n
                break
            logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]  # [B, T-1, V]
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:],
                                                    reduction="none")  # [B, T-1]
            weights = loss_mask[:, 1:].float()  # [B, T-1]
            loss = (nll * weights).sum() / weights.sum()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    minutes, out_dir = (time.perf_counter() - start) / 60, Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)  # saved before evaluating: nothing trained is lost
    tokenizer.save_pretrained(out_dir)
    model.eval()
    test = [toy.problem_from_row(r) for r in toy.load_problems(
        test_data or Path(__file__).resolve().parent.parent / "data" / "toy_test.jsonl", limit=eval_problems)]
    torch.manual_seed(seed)
    summary = evaluate(RolloutEngine(model, tokenizer, max_turns=max(10, max_ops + 4)), test, k=1, progress=progress)
    record = {"command": f"python -m elpo_min warmup --out {out_dir} --steps {steps} --batch_size {batch_size} "
              f"--lr {lr} --p_copy_error {p_copy_error} --p_syntax_error {p_syntax_error} --seed {seed}"
              + (f" --init {init}" if init else "") + "".join(f" --{k} {v}" for k, v, default in (
                  ("min_ops", min_ops, 3), ("max_ops", max_ops, 6), ("hard_digits", hard_digits, 0),
                  ("p_hard_error", p_hard_error, 0.0), ("test_data", test_data, None)) if v != default),
              "heldout_success": summary["success_rate"], "eval_problems": len(test), "eval_seed": seed,
              "train_minutes": round(minutes, 2), "final_loss": round(loss.item(), 4),
              "params": sum(p.numel() for p in model.parameters()), "torch_threads": torch.get_num_threads()}
    (out_dir / "tiny_policy.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def chat_example(fmt, tokenizer, question: str, pieces: list[tuple[str, str | None]]
                 ) -> tuple[list[int], list[int]]:
    """``(ids, mask)`` of one demonstration, built as the rollout engine builds a trajectory:
    the prompt (``fmt.prompt_text``), then each ``(assistant text, tool output or None)`` of
    ``pieces`` and its framed output, each encoded on its own, so the ids at every turn boundary
    are the ones RL will see. The mask is 1 on assistant tokens and the closing end-of-sequence.
    """
    encode = partial(tokenizer.encode, add_special_tokens=False)
    ids = encode(fmt.prompt_text(tokenizer, question))
    mask = [0] * len(ids)
    for text, output in pieces:
        ids += encode(text)
        mask += [1] * (len(ids) - len(mask))
        if output is not None:
            ids += encode(fmt.output_open + output + fmt.output_close)
            mask += [0] * (len(ids) - len(mask))
    return ids + [tokenizer.eos_token_id], mask + [1]


def cold_start(model, examples: list[tuple[list[int], list[int]]], steps: int, lr: float = 1e-4,
               batch_size: int = 8, pad_id: int = 0, seed: int = 0, progress: bool = True) -> list[float]:
    """Supervised pass on ``(ids, mask)`` demonstrations before RL (the paper's cold start), loss
    on action tokens through the trainer's token-chunked log-probs; returns every step's loss."""
    from tqdm import tqdm

    from .rollout import Trajectory, collate

    rng = random.Random(seed)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc="cold start", disable=not progress):
        chosen = rng.sample(examples, min(batch_size, len(examples)))
        batch = collate([Trajectory(None, ids, mask, [0.0] * len(ids), [], 0) for ids, mask in chosen], pad_id,
                        next(model.parameters()).device)
        logp = token_logprobs(model, batch["input_ids"], batch["attention_mask"])  # [B, T]
        loss = -(logp * batch["action_mask"]).sum() / batch["action_mask"].sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses
