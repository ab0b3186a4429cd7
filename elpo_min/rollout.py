"""Batched multi-turn rollouts on token ids, with tool calls in the loop.

One *round* = every active trajectory generates one assistant turn (one batched,
KV-cached decode), then the round's tool calls run as a batch, and each tool output is
tokenized once and appended with action mask 0. Rounds repeat until every trajectory
has answered or hit a limit. Per token we record the id, the action mask, the log-prob
under the sampling distribution (temperature applied, before top-p) and its entropy.
A continuation from ``prefix(m)`` starts from the parent's stored ids: nothing is ever
decoded and re-encoded.

Design choices: each turn re-prefills its context rather than carrying the KV cache
across the tool call (simple and correct with left padding); finished rows leave the
batch cache once a quarter of the batch is done.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import toy
from .models import cache_keyword, context_length
from .sandbox import run_many
from .tasks import last_boxed


@dataclass
class Turn:
    """One assistant turn: generated tokens ``[start, end)``, then its tool output up
    to ``out_end`` (``out_end == end`` when the turn made no call)."""

    start: int
    end: int
    out_end: int
    code: str | None = None
    output: str | None = None
    answer: str | None = None
    failed: bool = False  # the tool call raised, timed out or crashed


@dataclass
class Trajectory:
    """A (possibly partial) multi-turn trajectory, stored as token ids. Steps are the turns that
    made a tool call, 1..K; ``prefix(m)`` is the prompt plus steps 1..m with step m's output."""

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
        return sum(t.code is not None for t in self.turns)

    @property
    def tool_outputs(self) -> list[str]:
        """One per step; "" for a call that never ran (the trajectory hit a limit first)."""
        return [t.output or "" for t in self.turns if t.code is not None]

    @property
    def history(self) -> list[str]:
        """The code of the calls that succeeded: what the next call's sandbox replays."""
        return [t.code for t in self.turns if t.code is not None and t.output is not None and not t.failed]

    def turn_entropy(self, index: int, window: int = 32) -> float:
        """Mean entropy of the first ``window`` generated tokens of turn ``index`` (0-based)."""
        t = self.turns[index]
        values = self.entropies[t.start:min(t.end, t.start + window)]
        return sum(values) / len(values) if values else 0.0

    def prefix(self, m: int) -> Trajectory:
        """prefix(m): the prompt plus steps 1..m (0 <= m <= K), ready to be continued."""
        if not 0 <= m <= self.num_steps:
            raise ValueError(f"prefix({m}) needs 0 <= m <= K = {self.num_steps}")
        cut = self.turns[m - 1].out_end if m else self.prompt_len
        return Trajectory(self.problem, self.token_ids[:cut], self.action_mask[:cut],
                          self.logprobs[:cut], self.entropies[:cut], self.prompt_len,
                          copy.deepcopy(self.turns[:m]))


@dataclass
class TurnFormat:
    """How calls, outputs and answers are delimited in the token stream (see :meth:`for_chat`).

    * ``"tags"``: ``<c>code</c>`` ... ``<a>answer</a>`` (single tokens in the toy world); for chat
      models ``<code>``/``<answer>``, the output framed as a user message cut from the chat template.
    * ``"fenced"``: the TIR format instruct models know from pre-training: a ```` ```python ````
      block ends the turn, its result comes back inline as an ```` ```output ```` block, and the
      answer is the last ``\boxed{}`` of a turn without code (that turn ends at end-of-sequence).
    """

    call_open: str = toy.CALL_OPEN
    call_close: str = toy.CALL_CLOSE
    answer_open: str = toy.ANSWER_OPEN
    answer_close: str = toy.ANSWER_CLOSE
    output_open: str = toy.OUTPUT_OPEN
    output_close: str = toy.OUTPUT_CLOSE
    system_prompt: str | None = None
    chat: bool = False
    style: str = "tags"

    @classmethod
    def for_chat(cls, tokenizer, system_prompt: str, style: str = "fenced", call=("<code>", "</code>"),
                 answer=("<answer>", "</answer>")) -> TurnFormat:
        """The chat-model format: fenced TIR (default), or tags with the tool output framed
        as a user message derived from the tokenizer's chat template."""
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("this tokenizer has no chat template; use an instruct model, set "
                             "tokenizer.chat_template, or use the plain toy TurnFormat()")
        if style == "fenced":
            return cls("```python\n", "```", "\\boxed{", "}", "\n```output\n", "\n```\n", system_prompt,
                       chat=True, style="fenced")
        if style != "tags":
            raise ValueError(f"unknown tool format {style!r}; use 'fenced' or 'tags'")
        msgs = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "@A@"},
                {"role": "user", "content": "@OUT@"}]
        text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        between = text.split("@A@", 1)[1]
        before, after = between.split("@OUT@", 1)
        return cls(call[0], call[1], answer[0], answer[1], before + "Output:\n", after,
                   system_prompt, chat=True)

    def parse(self, text: str) -> tuple[str | None, str | None]:
        """(code, answer) of one turn; (None, None) if it has neither."""
        if self.style == "fenced":
            m = re.search(r"```python[ \t]*\n(.*?)```", text, re.S)
            return (m.group(1), None) if m else (None, last_boxed(text))
        return toy.parse_turn(text, (self.call_open, self.call_close), (self.answer_open, self.answer_close))

    def turn_ends(self, text: str) -> bool:
        """Does the turn stop here? At a complete call; at a tags answer's close (a fenced
        answer turn ends at end-of-sequence)."""
        code, answer = self.parse(text)
        return code is not None or (self.style == "tags" and answer is not None)

    def prompt_text(self, tokenizer, question: str) -> str:
        if not self.chat:
            return question
        msgs = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else [])
        msgs.append({"role": "user", "content": question})
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


class RolloutEngine:
    """Samples multi-turn tool-using trajectories for a batch of prompts or prefixes.

    Args:
        model, tokenizer, fmt: any HF causal LM, its tokenizer, the :class:`TurnFormat`.
        question, check: ``problem -> str`` (the user text); ``(problem, answer) -> bool`` (reward 1).
        executor: ``"arith"`` (toy, in-process) or ``"python"`` (sandboxed subprocess).
        max_new_tokens, max_turns: per assistant turn (running out truncates); turns per trajectory.
        batch_size, tool_workers, tool_timeout_s: rows per decode batch; sandbox pool; per-call limit.
    """

    def __init__(self, model, tokenizer, fmt: TurnFormat | None = None,
                 question: Callable = lambda p: p.prompt, check: Callable = toy.check_answer,
                 executor: str = "arith", temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 48, max_turns: int = 10, batch_size: int = 256,
                 tool_workers: int = 2, tool_timeout_s: float = 5.0):
        if temperature <= 0 or not 0 < top_p <= 1:
            raise ValueError(f"need temperature > 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
        self.model, self.tokenizer, self.fmt = model, tokenizer, fmt or TurnFormat()
        self.question, self.check, self.executor = question, check, executor
        self.temperature, self.top_p = temperature, top_p
        self.max_new_tokens, self.max_turns, self.batch_size = max_new_tokens, max_turns, batch_size
        self.tool_workers, self.tool_timeout_s = tool_workers, tool_timeout_s
        self.cache_kw = cache_keyword(model)
        self.max_len = context_length(model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        # A turn stops at end-of-sequence, at a single-token close marker (the toy's </c>),
        # or when a sampled token that could complete a marker makes fmt.turn_ends true.
        self.stop_ids, closes = {tokenizer.eos_token_id}, [self.fmt.call_close]
        if self.fmt.style == "tags":
            closes.append(self.fmt.answer_close)
        for marker in list(closes):
            ids = tokenizer.encode(marker, add_special_tokens=False)
            if len(ids) == 1 and self.fmt.style == "tags":
                self.stop_ids.add(ids[0])
                closes.remove(marker)
        pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))]) if closes else []
        self.trigger_ids = {i for i, piece in enumerate(pieces) if any(m[-1] in piece for m in closes)}

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def start(self, problem) -> Trajectory:
        """A prompt-only trajectory for ``problem`` (= prefix(0))."""
        ids = self.encode(self.fmt.prompt_text(self.tokenizer, self.question(problem)))
        if len(ids) >= self.max_len:
            raise ValueError(f"prompt of problem {getattr(problem, 'id', problem)!r} is {len(ids)} "
                             f"tokens, longer than the model's context of {self.max_len}; "
                             "shorten the problem or use a model with a longer context")
        n = len(ids)
        return Trajectory(problem, ids, [0] * n, [0.0] * n, [0.0] * n, n)

    @torch.no_grad()
    def rollout(self, seeds: list[Trajectory], n: int | list[int] = 1,
                progress: Callable[[int], None] | None = None) -> list[list[Trajectory]]:
        """Continue every seed ``n`` times (or ``n[i]`` times) until done; one list of finished
        trajectories per seed, in order."""
        counts = [n] * len(seeds) if isinstance(n, int) else list(n)
        groups = [[seed.prefix(seed.num_steps) for _ in range(c)] for seed, c in zip(seeds, counts)]
        active = [t for g in groups for t in g]
        while active:
            for i in range(0, len(active), self.batch_size):
                self._generate_turn(active[i:i + self.batch_size])
            calls = [t for t in active if not t.done and t.turns[-1].code is not None]
            results = run_many([t.turns[-1].code for t in calls], self.executor, self.tool_workers,
                               [t.history for t in calls], timeout_s=self.tool_timeout_s)
            for traj, result in zip(calls, results):
                traj.turns[-1].failed = result.error is not None
                self._append_output(traj, result.render())
            finished = [t for t in active if t.done]
            for traj in finished:
                traj.success = traj.answer is not None and bool(self.check(traj.problem, traj.answer))
                traj.reward = float(traj.success)
            if progress:
                progress(len(finished))
            active = [t for t in active if not t.done]
        return groups

    def _append_output(self, traj: Trajectory, output: str) -> None:
        ids = self.encode(self.fmt.output_open + output + self.fmt.output_close)
        traj.token_ids += ids
        traj.action_mask += [0] * len(ids)
        traj.logprobs += [0.0] * len(ids)
        traj.entropies += [0.0] * len(ids)
        turn = traj.turns[-1]
        turn.output, turn.out_end = output, len(traj.token_ids)
        if len(traj.turns) >= self.max_turns or len(traj.token_ids) >= self.max_len:
            traj.truncated = traj.done = True

    @torch.no_grad()
    def _generate_turn(self, batch: list[Trajectory]) -> None:
        """Generate one assistant turn for every trajectory in ``batch`` (in place)."""
        model, device = self.model, next(self.model.parameters()).device
        lengths = [len(t.token_ids) for t in batch]
        width = max(lengths)
        budget = min(self.max_new_tokens, self.max_len - width)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)  # [B, T]
        mask = torch.zeros((len(batch), width), dtype=torch.long)  # [B, T]
        for row, t in enumerate(batch):
            ids[row, width - len(t.token_ids):] = torch.tensor(t.token_ids)
            mask[row, width - len(t.token_ids):] = 1
        ids, mask = ids.to(device), mask.to(device)
        position = mask.cumsum(-1) - 1  # [B, T]
        from transformers import DynamicCache  # imported here so `import elpo_min` stays light

        cache = DynamicCache(config=model.config)
        out = model(input_ids=ids, attention_mask=mask, position_ids=position.clamp(min=0),
                    use_cache=True, logits_to_keep=1, **{self.cache_kw: cache})
        rows = torch.arange(len(batch), device=device)  # batch row -> index into `batch`
        new = [[] for _ in batch]
        stopped = [False] * len(batch)
        next_pos = position[:, -1:] + 1  # [B, 1]
        for _ in range(max(budget, 0)):
            logits = out.logits[:, -1].float() / self.temperature  # [b, V]
            log_probs = logits.log_softmax(-1)  # [b, V]
            probs = log_probs.exp()  # [b, V]
            entropy = -(probs * log_probs).sum(-1)  # [b]
            token = torch.multinomial(self._top_p(probs), 1)  # [b, 1]
            logp = log_probs.gather(-1, token).squeeze(-1)  # [b]
            # one device->host copy per step: rows, tokens, log-probs, entropies (float32 holds
            # ids below 2**24 exactly)
            step = torch.stack([rows.float(), token.squeeze(-1).float(), logp, entropy]).tolist()
            row_list = [int(r) for r in step[0]]
            for r, tok, lp, h in zip(row_list, step[1], step[2], step[3]):
                if stopped[r]:
                    continue
                new[r].append((int(tok), lp, h))
                if int(tok) in self.stop_ids or (int(tok) in self.trigger_ids and self.fmt.turn_ends(
                        self.tokenizer.decode([s[0] for s in new[r]]))):
                    stopped[r] = True
            keep = [i for i, r in enumerate(row_list) if not stopped[r]]
            if not keep:
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)  # [b, T+1]
            if len(keep) < 0.75 * len(row_list):  # drop finished rows from the cache
                idx = torch.tensor(keep, device=device)
                cache.batch_select_indices(idx)
                rows, token, mask, next_pos = rows[idx], token[idx], mask[idx], next_pos[idx]
            out = model(input_ids=token, attention_mask=mask, position_ids=next_pos, use_cache=True,
                        **{self.cache_kw: cache})
            next_pos = next_pos + 1
        for traj, sampled, stop in zip(batch, new, stopped):
            start = len(traj.token_ids)
            traj.token_ids += [s[0] for s in sampled]
            traj.action_mask += [1] * len(sampled)
            traj.logprobs += [s[1] for s in sampled]
            traj.entropies += [s[2] for s in sampled]
            code, answer = self.fmt.parse(self.tokenizer.decode([s[0] for s in sampled]))
            traj.turns.append(Turn(start, len(traj.token_ids), len(traj.token_ids), code, None, answer))
            if code is None or not stop:  # an answer, a turn with neither, or out of tokens
                traj.answer, traj.done = answer, True
                traj.truncated = answer is None or (not stop and code is not None)

    def _top_p(self, probs: torch.Tensor) -> torch.Tensor:
        """Zero out the tail beyond cumulative mass ``top_p`` (multinomial renormalizes)."""
        if self.top_p >= 1.0:
            return probs
        sorted_p, order = probs.sort(-1, descending=True)  # [b, V]
        drop = sorted_p.cumsum(-1) - sorted_p > self.top_p  # [b, V]
        return probs.scatter(-1, order, sorted_p.masked_fill(drop, 0.0))


def render_trajectory(traj: Trajectory, tokenizer, color: bool = True) -> str:
    """Readable text: prompt plain, sampled turns as-is, tool outputs in a box/colour."""
    def span(a, b):
        return tokenizer.decode(traj.token_ids[a:b])

    lines = [span(0, traj.prompt_len).rstrip("\n")]
    for i, t in enumerate(traj.turns, start=1):
        lines.append(f"  turn {i}: {span(t.start, t.end)}")
        if t.out_end > t.end:
            out = span(t.end, t.out_end)
            lines.append(f"    tool> \x1b[36m{out}\x1b[0m" if color else f"    tool> [{out}]")
    status = "correct" if traj.success else ("truncated" if traj.truncated else "wrong")
    lines.append(f"  => answer {traj.answer!r}: {status} (reward {traj.reward:g})")
    return "\n".join(lines)


def collate(trajs: list[Trajectory], pad_id: int, device="cpu") -> dict[str, torch.Tensor]:
    """Right-pad trajectories into tensors for a teacher-forced pass.

    Returns:
        dict of [B, T] tensors: ``input_ids``, ``attention_mask``, ``action_mask``,
        ``old_logp`` (log-probs recorded at sampling time).
    """
    width = max(len(t.token_ids) for t in trajs)
    out = {"input_ids": torch.full((len(trajs), width), pad_id, dtype=torch.long),  # [B, T]
           "attention_mask": torch.zeros((len(trajs), width), dtype=torch.long),  # [B, T]
           "action_mask": torch.zeros((len(trajs), width)),  # [B, T]
           "old_logp": torch.zeros((len(trajs), width))}  # [B, T]
    for row, t in enumerate(trajs):
        n = len(t.token_ids)
        out["input_ids"][row, :n] = torch.tensor(t.token_ids)
        out["attention_mask"][row, :n] = 1
        out["action_mask"][row, :n] = torch.tensor(t.action_mask, dtype=torch.float)
        out["old_logp"][row, :n] = torch.tensor(t.logprobs)
    return {k: v.to(device) for k, v in out.items()}
