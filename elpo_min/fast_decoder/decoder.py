"""The fast decoder: a KV cache carried across tool calls, shared prefixes prefilled once,
and on a GPU a decode step that is one CUDA-graph replay.

It samples exactly what :class:`~elpo_min.rollout.PlainDecoder` samples (the same draws from
the same random stream, the same log-probs within float rounding; tests/test_fast_decoder.py
holds it to that), and differs only in how much work it repeats:

* **Carry.** After a turn, the rows' cache is kept. When the engine asks for the next turn of
  the same rows, only what is new is fed: the last sampled token and the tool output.
* **Branching.** The n samples of a prompt and the X_m continuations of a BEL anchor share
  their context: each distinct context is prefilled once and its cache rows are copied.
* **Fixed shapes.** Rows share one timeline of columns (:class:`KVSlots`); finished rows stay in
  the batch until the turn ends. On a GPU the decode step, model plus sampling plus cache write,
  is captured once as a CUDA graph and replayed: one launch instead of hundreds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from ..rollout import SampledTurn, cache_keyword, sample_tokens
from ..trajectory import Trajectory
from .attention import packed_attention
from .kv_slots import KVSlots

# columns of the cache are allocated in multiples of this
COLUMN_BLOCK = 64


def _round_up(n: int) -> int:
    return -(-n // COLUMN_BLOCK) * COLUMN_BLOCK


class FastDecoder:
    """Decoder with its own KV cache (see the module docstring).

    Args:
        model, temperature, top_p, pad_id: as for :class:`~elpo_min.rollout.PlainDecoder`.
        cuda_graphs: capture the decode step as a CUDA graph (on a GPU).
        share_prefixes: prefill each distinct context once and branch it (else once per row).
    """

    def __init__(
        self,
        model,
        temperature: float = 1.0,
        top_p: float = 1.0,
        pad_id: int = 0,
        cuda_graphs: bool = True,
        share_prefixes: bool = True,
    ):
        self.model = model
        self.temperature = temperature
        self.top_p = top_p
        self.pad_id = pad_id
        self.cuda_graphs = cuda_graphs
        self.share_prefixes = share_prefixes
        self.cache_kw = cache_keyword(model)
        # attention masks are additive, in the dtype of the weights
        self.mask_dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
        # (rows, tokens of each row in the cache, cache) after the last turn
        self.carry: tuple[list[Trajectory], list[int], KVSlots] | None = None

    def reset(self) -> None:
        self.carry = None

    @torch.no_grad()
    def sample_turn(
        self, rows: list[Trajectory], budget: int, stops: Callable[[list[int]], bool]
    ) -> list[SampledTurn]:
        with packed_attention(self.model):
            return self._sample_turn(rows, budget, stops)

    def _sample_turn(self, rows, budget, stops) -> list[SampledTurn]:
        lengths = [len(row.token_ids) for row in rows]
        slots, logits = self._prefill(rows, lengths, budget)  # KVSlots, [B, V]
        first_col = int(slots.col)
        # [B, 1], [B], [B]
        token, logp, entropy = sample_tokens(logits, self.temperature, self.top_p)
        # [B, 1]: the position `token` is fed at
        position = torch.tensor(lengths, device=token.device)[:, None]
        step = self._decode_step(slots, token, position)
        # ids ride along as floats: float32 holds ids below 2**24 exactly
        records = [torch.stack([token[:, 0].float(), logp, entropy])]
        turns = [SampledTurn([], [], [], False) for _ in rows]
        # on a GPU, read the samples back every 8 steps (fewer waits); stops are seen late
        sync_every = 8 if token.is_cuda else 1
        for i in range(1, max(budget, 0) + 1):
            if i == budget or len(records) == sync_every:
                self._read_back(records, turns, stops)
                records = []
                if i == budget or all(turn.stopped for turn in turns):
                    break
            logp, entropy = step()
            records.append(torch.stack([token[:, 0].float(), logp, entropy]))
        cached = []
        for r, turn in enumerate(turns):
            # Samples 0..n-2 were fed back through the cache; the last one was not (or is
            # followed by garbage), so the next turn feeds it again with the tool output.
            fed = max(len(turn.token_ids) - 1, 0)
            slots.valid[r, first_col + fed :] = False
            cached.append(lengths[r] + fed)
        self.carry = (rows, cached, slots)
        return turns

    @staticmethod
    def _read_back(records, turns: list[SampledTurn], stops) -> None:
        """Append the recorded samples to the rows that have not stopped yet."""
        for tokens, logps, entropies in torch.stack(records).tolist():
            for turn, tok, lp, h in zip(turns, map(int, tokens), logps, entropies):
                if turn.stopped:
                    continue
                turn.token_ids.append(tok)
                turn.logprobs.append(lp)
                turn.entropies.append(h)
                turn.stopped = stops(turn.token_ids)

    def _prefill(self, rows, lengths: list[int], budget: int) -> tuple[KVSlots, torch.Tensor]:
        """A cache holding every row's ids, and each row's last logits [B, V].

        Rows carried from the previous turn feed only what is new. Otherwise each distinct
        context is prefilled once and its cache branched to its rows.
        """
        device = next(self.model.parameters()).device
        width = max(lengths) + max(budget, 0)
        carried = self._continue_carry(rows, width, budget, device)
        if carried is not None:
            return carried
        distinct: dict[tuple, int] = {}
        inverse = []
        for r, row in enumerate(rows):
            # with share_prefixes off every row is its own context
            key = (tuple(row.token_ids), 0 if self.share_prefixes else r)
            inverse.append(distinct.setdefault(key, len(distinct)))
        slots = KVSlots(len(distinct), _round_up(width), device)
        contexts = [list(ids) for ids, _ in distinct]
        logits = self._extend(slots, contexts, [0] * len(distinct))  # [U, V]
        branch = torch.tensor(inverse, device=device)  # [B]
        return slots.select(branch), logits[branch]

    def _continue_carry(self, rows, width: int, budget: int, device):
        """Reuse the last turn's cache when it holds these rows and is not mostly holes."""
        if self.carry is None:
            return None
        old_rows, cached, slots = self.carry
        where = {id(row): r for r, row in enumerate(old_rows)}
        index = [where.get(id(row)) for row in rows]
        if None in index:
            return None
        pending = [row.token_ids[cached[r] :] for row, r in zip(rows, index)]
        need = int(slots.col) + max(map(len, pending)) + max(budget, 0)
        # Rows that stopped early leave holes in the shared timeline; once the carried cache
        # would be more than 1.5x as wide as a fresh one, start over.
        if 2 * need > 3 * width:
            return None
        if index != list(range(len(old_rows))) or need > slots.length:
            rows_kept = torch.tensor(index, device=device)
            slots = slots.select(rows_kept, max(_round_up(need), slots.length))
        return slots, self._extend(slots, pending, [cached[r] for r in index])

    def _extend(self, slots: KVSlots, pending: list[list[int]], cached: list[int]) -> torch.Tensor:
        """Feed each row's ``pending`` ids after its ``cached`` tokens.

        The pending ids are left-padded into one block of columns. Returns the logits at each
        row's last id [B, V].
        """
        device = slots.valid.device
        n = max(map(len, pending))
        ids = torch.full((len(pending), n), self.pad_id)  # [B, n]
        real = torch.zeros(len(pending), n, dtype=torch.bool)  # [B, n]
        for r, row in enumerate(pending):
            ids[r, n - len(row) :] = torch.tensor(row, dtype=torch.long)
            real[r, n - len(row) :] = True
        ids, real = ids.to(device), real.to(device)
        offset = torch.tensor(cached, device=device)[:, None]  # [B, 1]
        position = (offset + real.cumsum(-1) - 1).clamp(min=0)  # [B, n]
        col = int(slots.col)
        # [B, n, end]: each new token sees its row's earlier columns and the new ones before it
        allowed = slots.valid[:, None, : col + n].repeat(1, n, 1)
        causal = torch.ones(n, n, dtype=torch.bool, device=device).tril()  # [n, n]
        allowed[:, :, col : col + n] = causal & real[:, None, :]
        slots.valid[:, col : col + n] = real
        slots.end = col + n
        out = self.model(
            input_ids=ids,
            position_ids=position,
            attention_mask=self._additive(allowed[:, None]),
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_kw: slots},
        )
        slots.col += n
        return out.logits[:, -1]

    def _decode_step(self, slots: KVSlots, token: torch.Tensor, position: torch.Tensor) -> Callable:
        """``step()``: feed ``token`` [B, 1] at ``position``, sample the next one into ``token``
        and return its (log-prob, entropy). On a GPU the step is replayed as a CUDA graph."""
        graph = _GraphedStep()

        def step():
            slots.valid.index_fill_(1, slots.col, True)
            # eager: read only the columns written so far; a graph reads them all
            slots.end = slots.length if graph.capturing else slots.end + 1
            mask = self._additive(slots.valid[:, None, None, : slots.end])  # [B, 1, 1, end]
            out = self.model(
                input_ids=token,
                position_ids=position,
                attention_mask=mask,
                use_cache=True,
                **{self.cache_kw: slots},
            )
            logits = out.logits[:, -1]  # [B, V]
            slots.col += 1
            # in place, like every write here: a graph replays on these very buffers
            position.add_(1)
            sampled, logp, entropy = sample_tokens(logits, self.temperature, self.top_p)
            token.copy_(sampled)
            return logp, entropy

        if not (token.is_cuda and self.cuda_graphs):
            return step
        return lambda: graph.run(step, self)

    def _additive(self, allowed: torch.Tensor) -> torch.Tensor:
        """0 where attention is allowed, the dtype's minimum elsewhere (no NaN for empty rows)."""
        blocked = torch.finfo(self.mask_dtype).min
        return torch.where(allowed, 0.0, blocked).to(self.mask_dtype)


class _GraphedStep:
    """Runs a decode step eagerly once (on a side stream, as capture wants), then captures it
    as a CUDA graph and replays that graph for every later step."""

    def __init__(self):
        self.warm = False
        self.capturing = False
        self.graph = None
        self.out = None

    def run(self, step: Callable, decoder: FastDecoder):
        if self.graph is None and self.warm and decoder.cuda_graphs:
            self._capture(step, decoder)
        if self.graph is None:
            # the first step runs eagerly so that lazy initialization happens outside capture
            self.warm = True
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = step()
            torch.cuda.current_stream().wait_stream(side)
            return out
        self.graph.replay()
        return self.out

    def _capture(self, step: Callable, decoder: FastDecoder) -> None:
        try:
            graph = torch.cuda.CUDAGraph()
            self.capturing = True
            with torch.cuda.graph(graph):
                self.out = step()
            self.graph = graph
        except Exception as e:
            # an op the capture cannot hold: decode eagerly from now on, and say so once
            warnings.warn(f"CUDA graph capture failed, decoding eagerly: {e}", stacklevel=3)
            decoder.cuda_graphs = False
            self.capturing = False
