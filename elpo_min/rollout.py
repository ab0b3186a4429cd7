"""Batched multi-turn rollouts on token ids, with tool calls in the loop.

One *round* = every active trajectory generates one assistant turn (one batched,
KV-cached decode), then the round's tool calls run as a batch, and each tool output is
tokenized once and appended with action mask 0. Rounds repeat until every trajectory
has answered or hit a limit. Per token we record the id, the action mask, the log-prob
under the sampling distribution (temperature applied, before top-p) and its entropy.
A continuation from ``prefix(m)`` starts from the parent's stored ids: nothing is ever
decoded and re-encoded.

Speed: the engine owns its KV cache (:class:`KVSlots`, fixed shapes): a turn after a tool
call feeds only the new tokens, each distinct context is prefilled once and branched to its
rows, finished rows stay in the batch until the turn ends, and on a GPU each decode step is
one CUDA-graph replay.
"""

from __future__ import annotations

import copy
import re
import warnings
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

    * ``"tags"`` (the toy world): ``<c>code</c>`` ... ``<a>answer</a>``, each marker one token.
    * ``"fenced"`` (chat models): the TIR format instruct models know from pre-training: a
      ```` ```python ```` block ends the turn, its result comes back inline as an
      ```` ```output ```` block, and the answer is the last ``\boxed{}`` of a turn without code
      (that turn ends at end-of-sequence).
    """

    call_open: str = toy.CALL_OPEN
    call_close: str = toy.CALL_CLOSE
    answer_open: str = toy.ANSWER_OPEN
    answer_close: str = toy.ANSWER_CLOSE
    output_open: str = toy.OUTPUT_OPEN
    output_close: str = toy.OUTPUT_CLOSE
    system_prompt: str | None = None
    style: str = "tags"

    @classmethod
    def for_chat(cls, tokenizer, system_prompt: str) -> TurnFormat:
        """The chat-model format: fenced TIR inside the tokenizer's chat template."""
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("this tokenizer has no chat template; use an instruct model, set "
                             "tokenizer.chat_template, or use the plain toy TurnFormat()")
        return cls("```python\n", "```", "\\boxed{", "}", "\n```output\n", "\n```\n", system_prompt, "fenced")

    def parse(self, text: str) -> tuple[str | None, str | None]:
        """(code, answer) of one turn; (None, None) if it has neither."""
        if self.style == "fenced":
            m = re.search(r"```python[ \t]*\n(.*?)```", text, re.S)
            return (m.group(1), None) if m else (None, last_boxed(text))
        return toy.parse_turn(text, (self.call_open, self.call_close), (self.answer_open, self.answer_close))

    def turn_ends(self, text: str) -> bool:
        """Does the turn stop here? At a complete call; at a tags answer (fenced: at end-of-sequence)."""
        code, answer = self.parse(text)
        return code is not None or (self.style == "tags" and answer is not None)

    def prompt_text(self, tokenizer, question: str) -> str:
        if self.style == "tags":  # the toy's plain text; fenced is the chat format
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
                 tool_workers: int = 2, tool_timeout_s: float = 5.0, cuda_graphs: bool = True):
        if temperature <= 0 or not 0 < top_p <= 1:
            raise ValueError(f"need temperature > 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
        self.model, self.tokenizer, self.fmt = model, tokenizer, fmt or TurnFormat()
        self.question, self.check, self.executor = question, check, executor
        self.temperature, self.top_p = temperature, top_p
        self.max_new_tokens, self.max_turns, self.batch_size = max_new_tokens, max_turns, batch_size
        self.tool_workers, self.tool_timeout_s = tool_workers, tool_timeout_s
        self.cuda_graphs, self.share_prefixes, self._carry = cuda_graphs, True, None  # _carry: see _prefill
        self.cache_kw, self.max_len = cache_keyword(model), context_length(model)
        self.mask_dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())  # attention masks
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
        if (n := len(ids)) >= self.max_len:
            raise ValueError(f"prompt of problem {getattr(problem, 'id', problem)!r} is {n} tokens, longer than "
                             f"the model's context of {self.max_len}; shorten it or use a model with a longer context")
        return Trajectory(problem, ids, [0] * n, [0.0] * n, [0.0] * n, n)

    @torch.no_grad()
    def rollout(self, seeds: list[Trajectory], n: int | list[int] = 1,
                progress: Callable[[int], None] | None = None) -> list[list[Trajectory]]:
        """Continue every seed ``n`` times (or ``n[i]`` times) until done; one list of finished
        trajectories per seed, in order."""
        counts = [n] * len(seeds) if isinstance(n, int) else list(n)
        groups = [[seed.prefix(seed.num_steps) for _ in range(c)] for seed, c in zip(seeds, counts)]
        active = [t for g in groups for t in g]
        self._carry = None
        while active:
            for i in range(0, len(active), self.batch_size):
                self._generate_turn(active[i:i + self.batch_size])
            calls = [t for t in active if not t.done and t.turns[-1].code is not None]
            results = run_many([t.turns[-1].code for t in calls], self.executor, self.tool_workers,
                               [t.history for t in calls], timeout_s=self.tool_timeout_s)
            for traj, result in zip(calls, results):
                traj.turns[-1].failed = result.error is not None
                self._append_output(traj, result.render())
            for traj in (finished := [t for t in active if t.done]):
                traj.success = traj.answer is not None and bool(self.check(traj.problem, traj.answer))
                traj.reward = float(traj.success)
            if progress:
                progress(len(finished))
            active = [t for t in active if not t.done]
        self._carry = None  # free the cache
        return groups

    def _append_output(self, traj: Trajectory, output: str) -> None:
        ids = self.encode(self.fmt.output_open + output + self.fmt.output_close)
        traj.token_ids += ids
        traj.action_mask += [0] * len(ids)
        traj.logprobs += [0.0] * len(ids)
        traj.entropies += [0.0] * len(ids)
        traj.turns[-1].output, traj.turns[-1].out_end = output, len(traj.token_ids)
        if len(traj.turns) >= self.max_turns or len(traj.token_ids) >= self.max_len:
            traj.truncated = traj.done = True

    @torch.no_grad()
    def _generate_turn(self, batch: list[Trajectory]) -> None:
        """Generate one assistant turn for every trajectory in ``batch`` (in place)."""
        config, stock = self.model.config, getattr(self.model.config, "_attn_implementation", None)
        if stock == "sdpa":  # see packed_sdpa
            from transformers import AttentionInterface
            AttentionInterface.register("elpo_packed_sdpa", packed_sdpa)
            config._attn_implementation = "elpo_packed_sdpa"
        try:
            self._decode_turn(batch)
        finally:
            config._attn_implementation = stock

    def _decode_turn(self, batch: list[Trajectory]) -> None:
        lengths = [len(t.token_ids) for t in batch]
        budget = min(self.max_new_tokens, self.max_len - max(lengths))
        slots, logits = self._prefill(batch, lengths, budget)  # KVSlots, [B, V]
        first_col = int(slots.col)
        token, logp, entropy = sample_tokens(logits, self.temperature, self.top_p)  # [B, 1], [B], [B]
        position = torch.tensor(lengths, device=token.device)[:, None]  # [B, 1]: where `token` goes
        step = self._decode_step(slots, token, position)
        records = [torch.stack([token[:, 0].float(), logp, entropy])]  # float32 holds ids < 2**24 exactly
        new: list[list[tuple[int, float, float]]] = [[] for _ in batch]
        stopped = [False] * len(batch)
        sync_every = 8 if token.is_cuda else 1  # fewer device->host waits; stops are seen <= 7 steps late
        for i in range(1, max(budget, 0) + 1):
            if i == budget or len(records) == sync_every:
                for tokens, logps, entropies in torch.stack(records).tolist():  # one copy per flush
                    for r, (tok, lp, h) in enumerate(zip(map(int, tokens), logps, entropies)):
                        if stopped[r]:
                            continue
                        new[r].append((tok, lp, h))
                        stopped[r] = tok in self.stop_ids or (tok in self.trigger_ids and self.fmt.turn_ends(
                            self.tokenizer.decode([s[0] for s in new[r]])))
                records = []
                if i == budget or all(stopped):
                    break
            logp, entropy = step()
            records.append(torch.stack([token[:, 0].float(), logp, entropy]))
        cached = []  # per row: how many of its ids the cache holds
        for r, (traj, sampled, stop) in enumerate(zip(batch, new, stopped)):
            # samples 0..n-2 were fed back through the cache; the last one was not (or is
            # followed by garbage): the next turn feeds it again with the tool output
            fed = max(len(sampled) - 1, 0)
            slots.valid[r, first_col + fed:] = False
            cached.append(lengths[r] + fed)
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
        self._carry = (batch, cached, slots)

    def _prefill(self, batch: list[Trajectory], lengths: list[int], budget: int) -> tuple[KVSlots, torch.Tensor]:
        """A cache holding every row's ids, and each row's last logits [B, V]. Rows carried from
        the previous turn feed only what is new (the last sampled token, the tool output); else
        each distinct context (n samples of a prompt, X_m continuations of an anchor) is
        prefilled once and its cache branched to its rows."""
        device = next(self.model.parameters()).device
        width = max(lengths) + max(budget, 0)
        if self._carry is not None:
            rows, cached, slots = self._carry
            where = {id(t): r for r, t in enumerate(rows)}
            idx = [where.get(id(t)) for t in batch]
            if None not in idx:
                pending = [t.token_ids[cached[r]:] for t, r in zip(batch, idx)]
                need = int(slots.col) + max(map(len, pending)) + max(budget, 0)
                if 2 * need <= 3 * width:  # else the holes left by short rows waste too much: start over
                    if idx != list(range(len(rows))) or need > slots.length:  # else reuse it as it is
                        slots = slots.select(torch.tensor(idx, device=device), max(-(-need // 64) * 64, slots.length))
                    return slots, self._extend(slots, pending, [cached[r] for r in idx])
        distinct: dict[tuple, int] = {}  # (ids, row if prefixes are not shared) -> index
        inverse = [distinct.setdefault((tuple(t.token_ids), 0 if self.share_prefixes else r), len(distinct))
                   for r, t in enumerate(batch)]
        slots = KVSlots(len(distinct), -(-width // 64) * 64, device)  # columns rounded up to 64
        logits = self._extend(slots, [list(ids) for ids, _ in distinct], [0] * len(distinct))  # [U, V]
        idx = torch.tensor(inverse, device=device)  # [B]
        return slots.select(idx), logits[idx]

    def _extend(self, slots: KVSlots, pending: list[list[int]], cached: list[int]) -> torch.Tensor:
        """Feed each row's ``pending`` ids (left-padded into one block of columns) after its
        ``cached`` tokens; returns the logits at each row's last id [B, V]."""
        device, n = slots.valid.device, max(map(len, pending))
        ids, real = torch.full((len(pending), n), self.pad_id), torch.zeros(len(pending), n, dtype=torch.bool)  # [B, n]
        for r, p in enumerate(pending):
            ids[r, n - len(p):], real[r, n - len(p):] = torch.tensor(p, dtype=torch.long), True
        ids, real = ids.to(device), real.to(device)
        position = (torch.tensor(cached, device=device)[:, None] + real.cumsum(-1) - 1).clamp(min=0)  # [B, n]
        col = int(slots.col)
        allowed = slots.valid[:, None, :col + n].repeat(1, n, 1)  # [B, n, end]: earlier columns of the row
        allowed[:, :, col:col + n] = torch.ones(n, n, dtype=torch.bool, device=device).tril() & real[:, None, :]
        slots.valid[:, col:col + n], slots.end = real, col + n
        out = self.model(input_ids=ids, position_ids=position, attention_mask=self._additive(allowed[:, None]),
                         use_cache=True, logits_to_keep=1, **{self.cache_kw: slots})
        slots.col += n
        return out.logits[:, -1]

    def _decode_step(self, slots: KVSlots, token: torch.Tensor, position: torch.Tensor) -> Callable:
        """``step()``: feed ``token`` [B, 1] at ``position``, sample the next one into ``token``,
        return its (log-prob, entropy). Fixed shapes and buffers, so on a GPU the step after
        the first is captured once as a CUDA graph and replayed (one launch instead of hundreds)."""
        state: dict[str, Any] = {}

        def step():
            slots.valid.index_fill_(1, slots.col, True)
            slots.end = slots.length if state.get("capturing") else slots.end + 1  # eager: skip unwritten columns
            mask = self._additive(slots.valid[:, None, None, :slots.end])  # [B, 1, 1, end]
            logits = self.model(input_ids=token, position_ids=position, attention_mask=mask, use_cache=True,
                                **{self.cache_kw: slots}).logits[:, -1]  # [B, V]
            slots.col += 1
            position.add_(1)  # in place, like every write here: a graph replays on these buffers
            sampled, logp, entropy = sample_tokens(logits, self.temperature, self.top_p)
            token.copy_(sampled)
            return logp, entropy

        if not (token.is_cuda and self.cuda_graphs):
            return step

        def replay():
            if "graph" not in state and state.get("warm"):
                try:
                    graph, state["capturing"] = torch.cuda.CUDAGraph(), True
                    with torch.cuda.graph(graph):
                        state["out"] = step()
                    state["graph"] = graph
                except Exception as e:  # an op the capture cannot hold: stay eager, say so once
                    warnings.warn(f"CUDA graph capture failed, decoding eagerly: {e}", stacklevel=2)
                    self.cuda_graphs = state["capturing"] = state["graph"] = None
            if state.get("graph") is None:  # the first step runs eagerly, on a side stream as
                state["warm"], side = True, torch.cuda.Stream()  # capture wants (lazy init outside it)
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    out = step()
                torch.cuda.current_stream().wait_stream(side)
                return out
            state["graph"].replay()
            return state["out"]

        return replay

    def _additive(self, allowed: torch.Tensor) -> torch.Tensor:
        """0 where attention is allowed, the dtype's minimum elsewhere (no NaN for empty rows)."""
        return torch.where(allowed, 0.0, torch.finfo(self.mask_dtype).min).to(self.mask_dtype)


def packed_sdpa(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' sdpa, but one query token with a mask folds the query heads that share a KV
    head into rows of that head instead of ``repeat_kv`` copying the cache once per query head
    (7x its bytes per layer for Qwen2.5-0.5B; transformers >= 5.2x does the same)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    if query.shape[2] != 1 or groups == 1 or attention_mask is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    b, heads, _, dim = query.shape
    out = torch.nn.functional.scaled_dot_product_attention(  # [B, KV heads, groups, D]
        query.reshape(b, heads // groups, groups, dim), key, value, attn_mask=attention_mask, dropout_p=dropout,
        scale=scaling)
    return out.reshape(b, heads, 1, dim).transpose(1, 2).contiguous(), None


def sample_tokens(logits: torch.Tensor, temperature: float, top_p: float = 1.0):
    """Sample one token per row from softmax(logits / T), nucleus-truncated at ``top_p``; returns
    token [B, 1], its log-prob [B] and entropy [B] under the tempered distribution before top-p."""
    log_probs = (logits.float() / temperature).log_softmax(-1)  # [B, V]
    probs = log_probs.exp()  # [B, V]
    entropy = -(probs * log_probs).sum(-1)  # [B]
    if top_p < 1.0:  # zero the tail beyond cumulative mass top_p
        sorted_p, order = probs.sort(-1, descending=True)  # [B, V]
        probs = probs.scatter(-1, order, sorted_p.masked_fill(sorted_p.cumsum(-1) - sorted_p > top_p, 0.0))
    # what torch.multinomial(probs, 1) computes (argmax of p / Exp(1) noise, same random
    # stream), without its host-side check, so that a CUDA graph can hold it
    token = (probs / torch.empty_like(probs).exponential_()).argmax(-1, keepdim=True)  # [B, 1]
    return token, log_probs.gather(-1, token).squeeze(-1), entropy


class KVSlots:
    """The engine's KV cache: per-layer [B, H, L, D] buffers, allocated once, written at column
    ``col``. Rows share one timeline of columns; ``valid[b, j]`` says whether column j holds a
    token of row b (a row that stops early leaves masked holes, not a re-prefill). Fixed shapes
    and addresses let a CUDA graph replay the decode step. ``update`` is all of
    ``transformers.Cache`` that attention layers call."""

    def __init__(self, batch: int, length: int, device):
        self.keys, self.values = [], []  # per layer [B, H, L, D], allocated at the first update
        self.length, self.valid = length, torch.zeros(batch, length, dtype=torch.bool, device=device)  # valid: [B, L]
        self.col = torch.zeros(1, dtype=torch.long, device=device)  # the next column written
        self.end = length  # columns attention reads: all (a graph), or just those written (eager)

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        if layer_idx == len(self.keys):
            self.keys.append(key.new_zeros((*key.shape[:2], self.length, key.shape[-1])))
            self.values.append(value.new_zeros((*value.shape[:2], self.length, value.shape[-1])))
        columns = self.col + torch.arange(key.shape[2], device=key.device)  # [n]
        self.keys[layer_idx].index_copy_(2, columns, key)
        self.values[layer_idx].index_copy_(2, columns, value)
        return self.keys[layer_idx][:, :, :self.end], self.values[layer_idx][:, :, :self.end]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0  # positions are always passed explicitly

    def select(self, rows: torch.Tensor, length: int | None = None) -> KVSlots:
        """This cache's ``rows`` (repeats branch a row), widened to ``length`` columns. It consumes
        ``self`` a layer at a time, so the copy never holds two whole caches."""
        length = length or self.length
        grow, new = length - self.length, KVSlots(len(rows), length, self.valid.device)
        for old, out in ((self.keys, new.keys), (self.values, new.values)):
            out += [torch.nn.functional.pad(old.pop(0)[rows], (0, 0, 0, grow)) for _ in range(len(old))]
        new.valid = torch.nn.functional.pad(self.valid[rows], (0, grow))
        new.col = self.col.clone()
        return new


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
    """Right-pad trajectories into [B, T] tensors for a teacher-forced pass: ``input_ids``,
    ``attention_mask``, ``action_mask``, ``old_logp`` (log-probs recorded at sampling time)."""
    width = max(len(t.token_ids) for t in trajs)

    def padded(rows: list[list], fill, dtype) -> torch.Tensor:  # [B, T]
        return torch.tensor([row + [fill] * (width - len(row)) for row in rows], dtype=dtype).to(device)

    return {"input_ids": padded([t.token_ids for t in trajs], pad_id, torch.long),
            "attention_mask": padded([[1] * len(t.token_ids) for t in trajs], 0, torch.long),
            "action_mask": padded([t.action_mask for t in trajs], 0, torch.float),
            "old_logp": padded([t.logprobs for t in trajs], 0.0, torch.float)}
