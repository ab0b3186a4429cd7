"""Batched multi-turn rollouts on token ids, with tool calls in the loop.

One *round*: every active trajectory generates one assistant turn (a batched decode), then the
round's tool calls run as a batch, and each tool output is tokenized once and appended with
action mask 0, until every trajectory has answered or hit a limit. Per sampled token we record
the id, its log-prob under the sampling distribution (temperature applied, before top-p) and
that distribution's entropy (Eq. 3).

:class:`RolloutEngine` owns the turn loop (formats, tools, stops, rewards); a *decoder* samples
the tokens of one turn. :class:`PlainDecoder` is the reference: the model's own KV cache, no
tricks. :mod:`elpo_min.fast_decoder` keeps its cache across tool calls and branches shared
prefixes; both draw one sample per row per step from the same random stream, so under one seed
they sample the same tokens, and a test holds them to the same log-probs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from . import toy
from .config import Config
from .trajectory import Trajectory, Turn, TurnFormat


def token_entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """Eq. (3): H = -sum_j p_j log p_j over the vocabulary, per row of log-probs [B, V] -> [B]."""
    return -(log_probs.exp() * log_probs).sum(-1)


def sample_tokens(logits: torch.Tensor, temperature: float, top_p: float = 1.0):
    """Sample one token per row from softmax(logits / T), nucleus-truncated at ``top_p``.

    Args:
        logits: [B, V], the next-token logits.
        temperature, top_p: the sampling distribution.

    Returns:
        token [B, 1], its log-prob [B] and the entropy [B] of the tempered distribution
        (both before top-p: the distribution training recomputes).
    """
    scaled = logits.float() / temperature  # [B, V]
    # log_softmax in float32 can drop a peaked distribution's tail from the normalizer (each
    # term below 6e-8 of the top one vanishes in a vectorized running sum); logsumexp keeps it
    log_probs = scaled - scaled.logsumexp(-1, keepdim=True)  # [B, V]
    probs = log_probs.exp()  # [B, V]
    entropy = token_entropy(log_probs)  # [B]
    if top_p < 1.0:
        # zero the tail beyond cumulative mass top_p
        sorted_p, order = probs.sort(-1, descending=True)  # [B, V]
        tail = sorted_p.cumsum(-1) - sorted_p > top_p  # [B, V]
        probs = probs.scatter(-1, order, sorted_p.masked_fill(tail, 0.0))
    # What torch.multinomial(probs, 1) computes (the argmax of p / Exp(1) noise, on the same
    # random stream), without its host-side check, so that a CUDA graph can hold it.
    noise = torch.empty_like(probs).exponential_()  # [B, V]
    token = (probs / noise).argmax(-1, keepdim=True)  # [B, 1]
    return token, log_probs.gather(-1, token).squeeze(-1), entropy


def cache_keyword(model) -> str:
    """The KV-cache argument's name: ``cache`` in transformers >= 5.2x, else ``past_key_values``."""
    base = getattr(model, "get_base_model", lambda: model)()
    takes_cache = any("cache" in inspect.signature(m.forward).parameters for m in (model, base))
    return "cache" if takes_cache else "past_key_values"


def end_token_ids(model, tokenizer) -> set[int]:
    """Every id that ends a turn: the tokenizer's end-of-sequence and each of the model's
    (Qwen's generation config lists <|im_end|> and <|endoftext|>)."""
    ends = {tokenizer.eos_token_id}
    for config in (getattr(model, "generation_config", None), model.config):
        ids = getattr(config, "eos_token_id", None)
        ends.update(ids if isinstance(ids, (list, tuple)) else [ids])
    return {i for i in ends if i is not None}


def context_length(model) -> int:
    """Positions the model was built for (2048 if its config does not say)."""
    return int(getattr(model.config, "max_position_embeddings", None) or 2048)


@dataclass
class SampledTurn:
    """One row's tokens of a decoded turn; ``stopped`` False: it ran out of tokens."""

    token_ids: list[int]
    logprobs: list[float]
    entropies: list[float]
    stopped: bool


class Decoder(Protocol):
    """What the engine needs from a decoder, built as ``decoder(model, temperature, top_p,
    pad_id)``: ``sample_turn`` continues every row by up to ``budget`` tokens, a row stopping
    once ``stops(its sampled ids)`` holds; ``reset`` forgets state kept between turns."""

    def sample_turn(self, rows, budget: int, stops: Callable) -> list[SampledTurn]: ...

    def reset(self) -> None: ...


class PlainDecoder:
    """The reference decoder: the model's own KV cache, one sampled token per row per step.

    Each turn starts afresh. The rows' contexts are left-padded into one [B, T] block and
    prefilled, then every step feeds the B tokens just sampled. A row that has stopped keeps
    decoding, and its samples are dropped, until every row has stopped. So each step draws one
    sample per row and the random stream is consumed as the fast decoder consumes it. It is
    exact and simple, and slower: every turn re-reads every context from the start.
    """

    def __init__(self, model, temperature: float = 1.0, top_p: float = 1.0, pad_id: int = 0):
        self.model = model
        self.temperature = temperature
        self.top_p = top_p
        self.pad_id = pad_id
        self.cache_kw = cache_keyword(model)

    def reset(self) -> None:
        pass

    @torch.no_grad()
    def sample_turn(
        self, rows: list[Trajectory], budget: int, stops: Callable[[list[int]], bool]
    ) -> list[SampledTurn]:
        from transformers import DynamicCache

        device = next(self.model.parameters()).device
        width = max(len(row.token_ids) for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)  # [B, T]
        mask = torch.zeros(len(rows), width, dtype=torch.long)  # [B, T]
        for r, row in enumerate(rows):
            ids[r, width - len(row.token_ids) :] = torch.tensor(row.token_ids)
            mask[r, width - len(row.token_ids) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        position = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, T]
        cache = DynamicCache(config=self.model.config)
        logits = self._forward(ids, mask, position, cache)  # [B, V]
        turns = [SampledTurn([], [], [], False) for _ in rows]
        for step in range(budget):
            token, logp, entropy = sample_tokens(logits, self.temperature, self.top_p)
            for turn, tok, lp, h in zip(
                turns, token[:, 0].tolist(), logp.tolist(), entropy.tolist()
            ):
                if not turn.stopped:
                    turn.token_ids.append(tok)
                    turn.logprobs.append(lp)
                    turn.entropies.append(h)
                    turn.stopped = stops(turn.token_ids)
            if step == budget - 1 or all(turn.stopped for turn in turns):
                break
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)  # [B, T + step + 1]
            position = position[:, -1:] + 1  # [B, 1]
            logits = self._forward(token, mask, position, cache)  # [B, V]
        return turns

    def _forward(self, ids, mask, position, cache) -> torch.Tensor:
        """Logits [B, V] at each row's last position; ``cache`` grows in place."""
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=position,
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_kw: cache},
        )
        return out.logits[:, -1]


class RolloutEngine:
    """Samples multi-turn tool-using trajectories for a batch of prompts or prefixes.

    Args:
        model, tokenizer: any HF causal LM and its tokenizer.
        fmt: the :class:`~elpo_min.trajectory.TurnFormat` (default: the toy's tags).
        question: ``problem -> str``, the user text; check: ``(problem, answer) -> bool``.
        tool: ``(codes, histories) -> results`` runs a round's calls; each result has an
            ``error`` (None on success) and ``render()``, the text the policy reads next
            (``elpo_min.tools.run_arith`` for the toy, ``PythonTool`` for real models).
        temperature, top_p: the sampling distribution.
        max_new_tokens, max_turns: per turn (running out truncates), per trajectory.
        batch_size: rows per decode batch.
        decoder: the decoder class, :class:`PlainDecoder` or ``elpo_min.fast_decoder.FastDecoder``.
    """

    def __init__(
        self,
        model,
        tokenizer,
        fmt: TurnFormat | None = None,
        question: Callable = lambda p: p.prompt,
        check: Callable = toy.check_answer,
        *,
        tool: Callable[[list[str], list], list],
        temperature: float = Config.temperature,
        top_p: float = Config.top_p,
        max_new_tokens: int = Config.max_new_tokens,
        max_turns: int = Config.max_turns,
        batch_size: int = Config.rollout_batch_size,
        decoder: Callable[..., Decoder] = PlainDecoder,
    ):
        if temperature <= 0 or not 0 < top_p <= 1:
            raise ValueError(f"need temperature > 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
        self.model = model
        self.tokenizer = tokenizer
        self.fmt = fmt or TurnFormat()
        self.question = question
        self.check = check
        self.tool = tool
        self.max_new_tokens = max_new_tokens
        self.max_turns = max_turns
        self.batch_size = batch_size
        self.max_len = context_length(model)
        pad_id = tokenizer.pad_token_id
        self.pad_id = pad_id if pad_id is not None else tokenizer.eos_token_id
        self.decoder = decoder(model, temperature=temperature, top_p=top_p, pad_id=self.pad_id)
        # stops(sampled ids of a turn) -> does the turn end at its last token?
        self.stops = self.fmt.stop_rule(tokenizer, end_token_ids(model, tokenizer))

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def start(self, problem) -> Trajectory:
        """A prompt-only trajectory for ``problem`` (= prefix(0))."""
        ids = self.encode(self.fmt.prompt_text(self.tokenizer, self.question(problem)))
        if len(ids) >= self.max_len:
            name = getattr(problem, "id", problem)
            raise ValueError(
                f"prompt of problem {name!r} is {len(ids)} tokens, longer than the model's "
                f"context of {self.max_len}; shorten it or use a model with a longer context"
            )
        n = len(ids)
        return Trajectory(problem, ids, [0] * n, [0.0] * n, [0.0] * n, n)

    @torch.no_grad()
    def rollout(
        self,
        seeds: list[Trajectory],
        n: int | list[int] = 1,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[Trajectory]]:
        """Continue every seed ``n`` times (or ``n[i]`` times) until done.

        Args:
            seeds: prompts (:meth:`start`) or prefixes (``Trajectory.prefix``) to continue.
            n: continuations per seed, one number or one per seed.
            progress: called with the number of trajectories finished in each round.

        Returns:
            one list of finished trajectories per seed, in order.
        """
        counts = [n] * len(seeds) if isinstance(n, int) else list(n)
        groups = [[seed.prefix(seed.num_steps) for _ in range(c)] for seed, c in zip(seeds, counts)]
        active = [t for group in groups for t in group]
        self.decoder.reset()
        while active:
            for i in range(0, len(active), self.batch_size):
                self._take_turn(active[i : i + self.batch_size])
            calls = [t for t in active if not t.done and t.turns[-1].code is not None]
            results = self.tool([t.turns[-1].code for t in calls], [t.history for t in calls])
            for traj, result in zip(calls, results):
                traj.turns[-1].failed = result.error is not None
                self._append_output(traj, result.render())
            finished = [t for t in active if t.done]
            for traj in finished:
                correct = traj.answer is not None and bool(self.check(traj.problem, traj.answer))
                traj.success = correct
                traj.reward = float(correct)
            if progress:
                progress(len(finished))
            active = [t for t in active if not t.done]
        # the decoder may hold a KV cache: free it
        self.decoder.reset()
        return groups

    def _take_turn(self, batch: list[Trajectory]) -> None:
        """Sample one assistant turn for every trajectory in ``batch`` and append it."""
        longest = max(len(t.token_ids) for t in batch)
        budget = min(self.max_new_tokens, self.max_len - longest)
        sampled = self.decoder.sample_turn(batch, budget, self.stops)
        for traj, turn in zip(batch, sampled):
            start = len(traj.token_ids)
            traj.token_ids += turn.token_ids
            traj.action_mask += [1] * len(turn.token_ids)
            traj.logprobs += turn.logprobs
            traj.entropies += turn.entropies
            code, answer = self.fmt.parse(self.tokenizer.decode(turn.token_ids))
            end = len(traj.token_ids)
            traj.turns.append(Turn(start, end, end, code, None, answer))
            # an answer, a turn with neither, or a turn out of tokens ends the trajectory
            if code is None or not turn.stopped:
                traj.answer = answer
                traj.done = True
                traj.truncated = answer is None or (not turn.stopped and code is not None)

    def _append_output(self, traj: Trajectory, output: str) -> None:
        """Append a tool output as context (mask 0), tokenized once, framed to read on from
        the text of the turn that called the tool; it cannot forge the format's markers or a
        chat token (:meth:`TurnFormat.output_ids`)."""
        turn = traj.turns[-1]
        turn_text = self.tokenizer.decode(traj.token_ids[turn.start : turn.end])
        ids = self.fmt.output_ids(self.tokenizer, output, turn_text)
        traj.token_ids += ids
        traj.action_mask += [0] * len(ids)
        traj.logprobs += [0.0] * len(ids)
        traj.entropies += [0.0] * len(ids)
        traj.turns[-1].output = output
        traj.turns[-1].out_end = len(traj.token_ids)
        if len(traj.turns) >= self.max_turns or len(traj.token_ids) >= self.max_len:
            traj.truncated = True
            traj.done = True
