"""Supervised passes on demonstrations: the shared loss, and a chat model's cold start.

A demonstration is ``(ids, mask)``: token ids and a mask that is 1 on the assistant's tokens.
The loss is the mean negative log-likelihood of the masked tokens (prompt and tool outputs are
context), computed through the trainer's memory-saving head
(:func:`~elpo_min.fast_update.chunked_token_logprobs`), so a 150k vocabulary never
materializes a [B, T, V] tensor. :func:`run_cold_start` is the whole ``cold-start`` command:
demonstrations of the chat-form toy, the supervised pass, and the saved model.
"""

from __future__ import annotations

import json
import random
import time
from functools import partial
from pathlib import Path

import torch

from .. import toy
from ..fast_update import chunked_token_logprobs
from ..tasks import FencedFormat, chat_question, held_out
from .demos import demo_pieces


def chat_example(
    fmt, tokenizer, question: str, pieces: list[tuple[str, str | None]]
) -> tuple[list[int], list[int]]:
    """``(ids, mask)`` of one demonstration, built as the rollout engine builds a trajectory.

    The prompt (``fmt.prompt_text``), then each ``(assistant text, tool output or None)`` of
    ``pieces`` and its framed output, each encoded on its own, so the ids at every turn boundary
    are the ones RL will see. The mask is 1 on assistant tokens and the closing end-of-sequence.
    A chat template is applied to the question only: text a template inserts into finished
    assistant messages (Qwen3's empty ``<think>`` block) never reaches a demonstration.
    """
    encode = partial(tokenizer.encode, add_special_tokens=False)
    ids = encode(fmt.prompt_text(tokenizer, question))
    mask = [0] * len(ids)
    for text, output in pieces:
        ids += encode(text)
        mask += [1] * (len(ids) - len(mask))
        if output is not None:
            ids += fmt.output_ids(tokenizer, output, text)
            mask += [0] * (len(ids) - len(mask))
    return ids + [tokenizer.eos_token_id], mask + [1]


def padded_batch(examples: list[tuple[list[int], list[int]]], pad_id: int, device="cpu") -> dict:
    """Right-pad ``(ids, mask)`` examples into [B, T] ``input_ids``, ``attention_mask`` and
    ``loss_mask``."""
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)  # [B, T]
    attention = torch.zeros(len(examples), width, dtype=torch.long)  # [B, T]
    loss_mask = torch.zeros(len(examples), width)  # [B, T]
    for row, (example_ids, mask) in enumerate(examples):
        ids[row, : len(example_ids)] = torch.tensor(example_ids)
        attention[row, : len(example_ids)] = 1
        loss_mask[row, : len(mask)] = torch.tensor(mask, dtype=torch.float)
    return {
        "input_ids": ids.to(device),
        "attention_mask": attention.to(device),
        "loss_mask": loss_mask.to(device),
    }


def sft_loss(model, batch: dict) -> torch.Tensor:
    """Mean negative log-likelihood of the tokens where ``loss_mask`` is 1."""
    loss_mask = batch["loss_mask"]  # [B, T]
    logp = chunked_token_logprobs(
        model, batch["input_ids"], batch["attention_mask"], target_mask=loss_mask
    )
    return -(logp * loss_mask).sum() / loss_mask.sum()


def cold_start(
    model,
    examples: list[tuple[list[int], list[int]]],
    steps: int,
    lr: float = 1e-4,
    batch_size: int = 8,
    pad_id: int = 0,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """A supervised pass on demonstrations before RL (the paper's cold start).

    Returns:
        every step's loss.
    """
    from tqdm import tqdm

    rng = random.Random(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    device = next(model.parameters()).device
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc="cold start", disable=not progress):
        chosen = rng.sample(examples, min(batch_size, len(examples)))
        loss = sft_loss(model, padded_batch(chosen, pad_id, device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


def run_cold_start(
    model_name: str,
    out: str,
    steps: int,
    lr: float,
    batch_size: int,
    examples: int,
    p_copy_error: float,
    p_syntax_error: float,
    seed: int,
    command: str,
) -> dict:
    """The ``cold-start`` command: fenced-TIR demonstrations of the chat-form toy task, a
    supervised pass of the chat model ``model_name`` on them, the model saved to ``out``.

    Demonstrations avoid the toy's held-out problems and carry the same controlled mistakes as
    the tiny policy's warm-up (mis-copied numbers, calls that raise and are retried).

    Returns:
        the record also written to ``out/cold_start.json``: the command that reproduces it, the
        first and last loss, and the minutes it took.
    """
    from ..models import load_policy

    torch.manual_seed(seed)
    start = time.perf_counter()
    rng = random.Random(seed)
    model, tokenizer = load_policy(model_name)
    fmt = FencedFormat.for_chat(tokenizer)
    test_problems = held_out()
    generated = toy.generate_problems(examples, seed=20_000 + seed, prefix="cold")
    problems = [p for p in generated if (p.start, p.ops) not in test_problems]
    demos = []
    for p in problems:
        pieces = demo_pieces(p, rng, p_copy_error, p_syntax_error, fenced=True)
        demos.append(chat_example(fmt, tokenizer, chat_question(p), pieces))
    losses = cold_start(model, demos, steps, lr, batch_size, tokenizer.pad_token_id, seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    record = {
        "command": command,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "minutes": round((time.perf_counter() - start) / 60, 2),
    }
    Path(out, "cold_start.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
