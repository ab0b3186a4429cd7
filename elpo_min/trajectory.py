"""Trajectories on token ids, and the turn format that delimits calls, outputs and answers.

A :class:`Trajectory` is the prompt followed by assistant turns: sampled tokens (action mask 1,
log-prob and entropy recorded at sampling time), then, after a tool call, the tool's output as
context (action mask 0). A training sequence or a branch prefix is a slice of the sampled ids,
never a decoded and re-encoded text, so recorded log-probs always belong to the tokens trained
on. Steps are the turns that made a tool call, 1..K; ``prefix(m)`` is the prompt plus steps 1..m
with step m's output, and a continuation sampled from it starts with turn m+1.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import toy


@dataclass
class Turn:
    """One assistant turn: generated tokens ``[start, end)``, then its tool output up to
    ``out_end`` (``out_end == end`` when the turn made no call)."""

    start: int
    end: int
    out_end: int
    code: str | None = None
    output: str | None = None
    answer: str | None = None
    # the tool call raised, timed out or crashed
    failed: bool = False


@dataclass
class Trajectory:
    """A (possibly partial) multi-turn trajectory, stored as token ids.

    ``token_ids``, ``action_mask``, ``logprobs`` and ``entropies`` are parallel lists, one entry
    per token; prompt and tool-output tokens have mask 0 and log-prob/entropy 0.
    """

    problem: Any
    token_ids: list[int]
    action_mask: list[int]
    logprobs: list[float]
    entropies: list[float]
    prompt_len: int
    turns: list[Turn] = field(default_factory=list)
    answer: str | None = None
    reward: float = 0.0
    success: bool = False
    truncated: bool = False
    done: bool = False

    @property
    def num_steps(self) -> int:
        """K, the number of tool calls."""
        return sum(t.code is not None for t in self.turns)

    @property
    def tool_outputs(self) -> list[str]:
        """One per step; "" for a call that never ran (the trajectory hit a limit first)."""
        return [t.output or "" for t in self.turns if t.code is not None]

    @property
    def history(self) -> list[str]:
        """The code of the calls that succeeded: what a stateful tool replays first."""
        ran = [t for t in self.turns if t.code is not None and t.output is not None]
        return [t.code for t in ran if not t.failed]

    def turn_entropy(self, index: int, window: int) -> float:
        """Mean entropy of the first ``window`` generated tokens of turn ``index`` (0-based)."""
        turn = self.turns[index]
        values = self.entropies[turn.start : min(turn.end, turn.start + window)]
        return sum(values) / len(values) if values else 0.0

    def prefix(self, m: int) -> Trajectory:
        """prefix(m): the prompt plus steps 1..m (0 <= m <= K), ready to be continued."""
        if not 0 <= m <= self.num_steps:
            raise ValueError(f"prefix({m}) needs 0 <= m <= K = {self.num_steps}")
        cut = self.turns[m - 1].out_end if m else self.prompt_len
        return Trajectory(
            problem=self.problem,
            token_ids=self.token_ids[:cut],
            action_mask=self.action_mask[:cut],
            logprobs=self.logprobs[:cut],
            entropies=self.entropies[:cut],
            prompt_len=self.prompt_len,
            turns=copy.deepcopy(self.turns[:m]),
        )


# control characters but newline and tab
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """``text`` with each control character but newline and tab as a repr writes it."""
    return CONTROLS.sub(lambda match: repr(match.group())[1:-1], text)


def encode_as_text(tokenizer, text: str) -> list[int]:
    """``text``'s ids through the tokenizer's pipeline without its added tokens, special or not
    (``split_special_tokens`` would keep the others: Qwen3's ``<think>``, the toy's tags)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a tokenizer in Python: its special tokens are split, not its others
        return tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)
    text = backend.normalizer.normalize_str(text) if backend.normalizer else text
    pieces = backend.pre_tokenizer.pre_tokenize_str(text) if backend.pre_tokenizer else [(text, 0)]
    return [token.id for piece, _ in pieces for token in backend.model.tokenize(piece)]


@dataclass
class TurnFormat:
    """How calls, outputs and answers are delimited in the token stream: the toy's tags.

    ``<c>code</c>`` ends a turn with a tool call and ``<a>answer</a>`` with the final answer; the
    tool's output comes back as ``<o>output</o>``. Each marker is one token of the tiny
    tokenizer. Chat models use :class:`elpo_min.tasks.FencedFormat`, which overrides the methods.

    The tool's output cannot forge the format: its control characters but newline and tab are
    escaped (ESC reads ``\\x1b``), and its text goes through the tokenizer's model alone, so no
    marker, chat token or end-of-text arises from it; the markers around it are the real tokens.
    """

    call_open: str = toy.CALL_OPEN
    call_close: str = toy.CALL_CLOSE
    answer_open: str = toy.ANSWER_OPEN
    answer_close: str = toy.ANSWER_CLOSE
    output_open: str = toy.OUTPUT_OPEN
    output_close: str = toy.OUTPUT_CLOSE

    def parse(self, text: str) -> tuple[str | None, str | None]:
        """(code, answer) of one turn; (None, None) if it has neither."""
        call = (self.call_open, self.call_close)
        answer = (self.answer_open, self.answer_close)
        return toy.parse_turn(text, call, answer)

    def turn_ends(self, text: str) -> bool:
        """Does a turn whose text is ``text`` stop here? At a complete call or answer."""
        code, answer = self.parse(text)
        return code is not None or answer is not None

    def prompt_text(self, tokenizer, question: str) -> str:
        """The prompt: the toy's question as it is."""
        return question

    def output_parts(self, output: str, turn_text: str = "") -> tuple[str, str, str]:
        """``(opening, body, closing)`` of the tool output appended after a turn whose text is
        ``turn_text``: the body is the output, its control characters escaped."""
        return self.output_open, escape_controls(output), self.output_close

    def output_ids(self, tokenizer, output: str, turn_text: str = "") -> list[int]:
        """The tool output's ids: the markers are the real tokens, the output is text."""
        opening, body, closing = self.output_parts(output, turn_text)
        frame = [tokenizer.encode(part, add_special_tokens=False) for part in (opening, closing)]
        return frame[0] + encode_as_text(tokenizer, body) + frame[1]

    def stop_rule(self, tokenizer, end_ids: set[int]) -> Callable[[list[int]], bool]:
        """``stops(sampled ids of a turn) -> bool``: the turn ends at an end id or at a close
        marker. A marker that is one token ends it by itself; a longer one (a tokenizer without
        the toy's tokens) is found by decoding the turn, which is slow but rare."""
        stop_ids = set(end_ids)
        longer = []
        for marker in (self.call_close, self.answer_close):
            ids = tokenizer.encode(marker, add_special_tokens=False)
            if len(ids) == 1:
                stop_ids.add(ids[0])
            else:
                longer.append(marker)

        def stops(sampled: list[int]) -> bool:
            if sampled[-1] in stop_ids:
                return True
            return bool(longer) and self.turn_ends(tokenizer.decode(sampled))

        return stops


def pad_rows(rows: list[list], fill, dtype, device="cpu") -> torch.Tensor:
    """Right-pad lists of per-token values into one [B, T] tensor."""
    width = max(len(row) for row in rows)
    padded = [row + [fill] * (width - len(row)) for row in rows]
    return torch.tensor(padded, dtype=dtype).to(device)


def collate(trajs: list[Trajectory], pad_id: int, device="cpu") -> dict[str, torch.Tensor]:
    """Right-pad trajectories into [B, T] tensors for a teacher-forced pass.

    Returns:
        ``input_ids``, ``attention_mask``, ``action_mask`` and ``old_logp`` (the log-probs
        recorded at sampling time), each [B, T].
    """
    return {
        "input_ids": pad_rows([t.token_ids for t in trajs], pad_id, torch.long, device),
        "attention_mask": pad_rows([[1] * len(t.token_ids) for t in trajs], 0, torch.long, device),
        "action_mask": pad_rows([t.action_mask for t in trajs], 0, torch.float, device),
        "old_logp": pad_rows([t.logprobs for t in trajs], 0.0, torch.float, device),
    }
