"""Supervised passes on demonstrations: the shared loss, and a chat model's cold start.

A demonstration is ``(ids, mask)``: token ids and a mask that is 1 on the assistant's tokens.
The loss is the mean negative log-likelihood of the masked tokens (prompt and tool outputs are
context), computed through the trainer's chunked :func:`~elpo_min.logprobs.token_logprobs`, so a
150k vocabulary never materializes a [B, T, V] tensor.
"""

from __future__ import annotations

import random
from functools import partial

import torch

from ..logprobs import token_logprobs


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
    logp = token_logprobs(model, batch["input_ids"], batch["attention_mask"], target_mask=loss_mask)
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
