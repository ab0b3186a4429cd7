"""The ELPO / GRPO training loop.

One step: build the rollouts of ``prompts_per_step`` problems (ELPO: BEL's trees; GRPO:
``n_total`` independent trajectories per prompt, the same budget), turn each tree into
root-to-leaf sequences with per-token A_hier and the ELC mask (:func:`training_batch`), then run
PPO-style epochs over mini-batches against the log-probs recorded at sampling time
(:func:`policy_update`). A :class:`Run` is handed in whole, so this module never loads a model or
picks a task: :func:`elpo_min.launch.build_run` does.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .advantages import Node, build_tree, hierarchical_advantages
from .bel import PromptTree, build_trees
from .config import Config
from .logprobs import LogProbs
from .loss import clip_bounds, clipped_policy_loss, k3_kl
from .rollout import RolloutEngine
from .runtime import Runtime
from .trajectory import Trajectory, collate, pad_rows

# the Config fields that parametrize BEL (Algorithm 1 and Eq. 5)
BEL_ARGS = ("n_total", "b_max", "x_min", "x_max", "beta", "entropy_window")


@dataclass
class CreditedTree:
    """One prompt's tree after credit assignment."""

    tree: PromptTree
    root: Node
    # id(trajectory) -> the nodes of its turns, its leaf last
    path: dict
    # id(trajectory) -> the first turn that ELC covers (absent: none)
    elc_from: dict

    def under_elc(self, traj: Trajectory, turn: int) -> bool:
        """Does ELC widen the lower clip on turn ``turn`` (0-based) of ``traj``?"""
        first = self.elc_from.get(id(traj))
        return first is not None and turn >= first


def credit_tree(tree: PromptTree, cfg: Config) -> CreditedTree:
    """Build the rollout tree, fill A_hier on every node, and place ELC.

    ELC covers tau*'s critical step t_crit and everything after it; with
    ``elc_scope="subtree"`` also every failed trajectory below the critical node. A search that
    got no probe has t_crit = 1 and is covered only when ``cfg.elc_unprobed``.
    """
    lambda_tree = cfg.lambda_tree if cfg.algo == "elpo" else 0.0
    root, path = build_tree(tree.trajectories, tree.parents)
    hierarchical_advantages(root, lambda_tree)
    elc_from = {}
    for tau, result in tree.searches:
        if not result.probes and not cfg.elc_unprobed:
            continue
        # steps 1..K are turns 0..K-1 (a turn without a call ends the trajectory)
        elc_from[id(tau)] = result.t_crit - 1
        if cfg.elc_scope == "subtree":
            nodes = path[id(tau)]
            critical = nodes[min(result.t_crit, len(nodes)) - 1]
            for traj in tree.trajectories:
                if traj.reward == 0 and critical in path[id(traj)]:
                    elc_from.setdefault(id(traj), result.t_crit - 1)
    return CreditedTree(tree, root, path, elc_from)


def token_advantages(traj: Trajectory, credited: CreditedTree) -> tuple[list[float], list[float]]:
    """A trajectory's per-token A_hier and ELC mask: each turn's node value on all its tokens
    (the tool output and padding get 0 later, from the action mask)."""
    advantages = [0.0] * len(traj.token_ids)
    elc = [0.0] * len(traj.token_ids)
    for i, (turn, node) in enumerate(zip(traj.turns, credited.path[id(traj)])):
        advantages[turn.start : turn.end] = [node.a_hier] * (turn.end - turn.start)
        if credited.under_elc(traj, i):
            elc[turn.start : turn.end] = [1.0] * (turn.end - turn.start)
    return advantages, elc


def training_batch(
    trees: list[PromptTree],
    cfg: Config,
    pad_id: int,
    device="cpu",
    step_metrics: Callable[[list[CreditedTree], Config], dict] | None = None,
) -> tuple[dict, dict]:
    """The training sequences of a step: one per leaf, with A_hier and the ELC mask.

    Args:
        trees: BEL's trees (or GRPO's flat groups) of the step's prompts.
        cfg: the config (``algo``, ``lambda_tree``, ``elc_scope``, ``elc_unprobed``).
        pad_id, device: for the tensors.
        step_metrics: ``(credited trees, cfg) -> dict`` of extra diagnostics for the info
            (``elpo_min.diagnostics.toy_step_metrics``: the toy's oracle metrics).

    Returns:
        ``(batch, info)``. ``batch`` holds [B, T] ``input_ids``, ``attention_mask``,
        ``action_mask``, ``old_logp``, ``advantages`` and ``elc_mask``, and [B] ``prompt`` (the
        index of each row's prompt, whose rows are consecutive); ``info`` the number of
        sequences, of unprobed searches, and the probed searches' mean t_crit (or None).
    """
    sequences, advantages, elc_masks, prompts = [], [], [], []
    credited = [credit_tree(tree, cfg) for tree in trees]
    for prompt, tree in enumerate(credited):
        for traj in tree.tree.trajectories:
            adv, elc = token_advantages(traj, tree)
            sequences.append(traj)
            advantages.append(adv)
            elc_masks.append(elc)
            prompts.append(prompt)
    batch = collate(sequences, pad_id, device)
    batch["advantages"] = pad_rows(advantages, 0.0, torch.float, device)
    batch["elc_mask"] = pad_rows(elc_masks, 0.0, torch.float, device) * batch["action_mask"]
    batch["prompt"] = torch.tensor(prompts, dtype=torch.long, device=device)
    searches = [result for tree in trees for _, result in tree.searches]
    # an unprobed search's t_crit = 1 is a default, not a finding: the mean leaves it out,
    # and is None when no search probed
    found = [result.t_crit for result in searches if result.probes]
    info = {
        "sequences": len(sequences),
        "unprobed": len(searches) - len(found),
        "t_crit_mean": sum(found) / len(found) if found else None,
    }
    if step_metrics:
        info.update(step_metrics(credited, cfg))
    return batch, info


def grpo_trees(engine: RolloutEngine, problems: list, n_total: int) -> list[PromptTree]:
    """The baseline's rollouts: n_total independent trajectories per prompt, no search."""
    groups = engine.rollout([engine.start(p) for p in problems], n_total)
    return [PromptTree(p, trajectories=g, rollouts=len(g)) for p, g in zip(problems, groups)]


def minibatches(prompts: torch.Tensor, cfg: Config) -> list[torch.Tensor]:
    """One epoch's mini-batches, as row indices: ``minibatch_size`` sequences drawn at random,
    or (``minibatch_prompts`` > 0) the rows of that many prompts drawn at random, whole trees
    kept together, as verl counts them (the paper's "mini-batch 16" is 16 prompts).

    Args:
        prompts: [B], the prompt index of each row (:func:`training_batch`).
    """
    if not cfg.minibatch_prompts:
        order = torch.randperm(len(prompts))
        return [order[s : s + cfg.minibatch_size] for s in range(0, len(order), cfg.minibatch_size)]
    rows = [(prompts == p).nonzero().flatten() for p in range(int(prompts.max()) + 1)]
    order = torch.randperm(len(rows)).tolist()
    size = cfg.minibatch_prompts
    return [torch.cat([rows[p] for p in order[s : s + size]]) for s in range(0, len(order), size)]


def shared_length(paths: dict, row: list[int]) -> int:
    """How many leading tokens of ``row`` are already in ``paths``, a trie
    (``(parent path id, token) -> path id``, the root is 0)."""
    node = 0
    for n, token in enumerate(row):
        node = paths.get((node, token))
        if node is None:
            return n
    return len(row)


def micro_batches(idx: torch.Tensor, batch: dict, cfg: Config) -> list[torch.Tensor]:
    """Split a mini-batch's rows into micro-batches (gradient accumulation): ``micro_batch_size``
    sequences each (0: one micro-batch), or (``micro_batch_tokens`` > 0) consecutive rows while
    their distinct root-to-token paths fit the budget, so a micro-batch's memory follows what
    the packed update computes. A row longer than the budget is a micro-batch of its own."""
    if not cfg.micro_batch_tokens:
        micro = cfg.micro_batch_size or len(idx)
        return [idx[m : m + micro] for m in range(0, len(idx), micro)]
    lengths = batch["attention_mask"][idx].sum(-1).tolist()
    rows = [ids[:n] for ids, n in zip(batch["input_ids"][idx].tolist(), lengths)]
    parts, start, paths = [], 0, {}
    for i, row in enumerate(rows):
        new = len(row) - shared_length(paths, row)
        if i > start and len(paths) + new > cfg.micro_batch_tokens:
            # the row does not fit: it starts the next micro-batch
            parts.append(idx[start:i])
            start, paths = i, {}
        node = 0
        for token in row:
            node = paths.setdefault((node, token), len(paths) + 1)
    return parts + [idx[start:]]


def policy_update(forward, optimizer, batch: dict, cfg: Config, rt: Runtime | None = None) -> dict:
    """PPO-style epochs over shuffled mini-batches (:func:`minibatches`); returns the mean stats.

    Each mini-batch is one optimizer step, split into micro-batches (:func:`micro_batches`)
    whose losses are divided by the whole mini-batch's count (summed over ranks): the
    accumulated gradient is exactly the one-pass gradient.

    Args:
        forward: a :class:`~elpo_min.logprobs.LogProbs` module around the policy (DDP-wrapped
            when distributed, see ``Runtime.prepare``), or a bare policy, which gets the
            textbook one.
        optimizer: over the trainable parameters.
        batch: from :func:`training_batch`.
        cfg: the config.
        rt: the runtime (one process if None).
    """
    rt = rt or Runtime()
    # a bare model is fine too
    if not isinstance(getattr(forward, "module", forward), LogProbs):
        forward = LogProbs(forward)
    model = getattr(forward, "module", forward).model
    params = [p for p in model.parameters() if p.requires_grad]
    eps_elc = cfg.eps_elc if cfg.algo == "elpo" else 0.0
    # a batch made by hand may have no prompt indices: each row is then a prompt of its own
    prompts = batch.get("prompt", torch.arange(len(batch["input_ids"])))  # [B]
    # Eq. (11): the per-token lower clip width, sliced with the rest of the batch
    rows_of = {k: v for k, v in batch.items() if k != "prompt"}
    rows_of["eps_low"] = clip_bounds(batch["elc_mask"], cfg.eps_low, eps_elc)  # [B, T]
    token_mean = cfg.aggregation == "token-mean"
    totals, count = {}, 0
    model.train()
    for _ in range(cfg.ppo_epochs):
        for idx in minibatches(prompts, cfg):
            tokens = batch["action_mask"][idx].sum(-1)  # [b]
            all_tokens, all_seqs = rt.all_sum([tokens.sum().item(), (tokens > 0).sum().item()])
            normalizer = max(all_tokens if token_mean else all_seqs, 1.0)
            optimizer.zero_grad(set_to_none=True)
            stats = {"loss": 0.0}
            parts = micro_batches(idx, batch, cfg)
            for i, rows in enumerate(parts):
                mb = {k: v[rows] for k, v in rows_of.items()}
                # drop the right padding the rows share
                width = int(mb["attention_mask"].sum(-1).max())
                mb = {k: v[:, :width] for k, v in mb.items()}
                with rt.no_sync(forward, sync=i == len(parts) - 1):
                    part = _micro_batch_loss(forward, model, mb, normalizer, all_tokens, cfg, rt)
                for k, v in part.items():
                    share = v if k in ("loss", "kl_ref") else v / len(parts)
                    stats[k] = stats.get(k, 0.0) + share
            stats["grad_norm"] = rt.clip_grad_norm(params, cfg.max_grad_norm)
            optimizer.step()
            totals = {k: totals.get(k, 0.0) + v for k, v in stats.items()}
            count += 1
    model.eval()
    return {k: v / count for k, v in totals.items()}


def _micro_batch_loss(forward, model, mb, normalizer, all_tokens, cfg, rt) -> dict:
    """Forward and backward of one micro-batch; returns its share of the stats."""
    inputs = (mb["input_ids"], mb["attention_mask"], mb["action_mask"], cfg.temperature)
    logp = forward(*inputs)  # [b, T]
    loss, part = clipped_policy_loss(
        logp,
        mb["old_logp"],
        mb["advantages"],
        mb["action_mask"],
        mb["eps_low"],
        cfg.eps_high,
        cfg.aggregation,
        region=mb["elc_mask"],
        normalizer=normalizer,
    )
    if cfg.kl_coef > 0:
        # the reference policy is the same model with its LoRA adapter switched off
        with torch.no_grad(), model.disable_adapter():
            ref = forward(*inputs)  # [b, T]
        share = mb["action_mask"].sum() / max(all_tokens, 1.0)
        kl = k3_kl(logp, ref, mb["action_mask"]) * share
        loss = loss + cfg.kl_coef * kl
        part["kl_ref"] = kl.item()
    # DDP averages gradients over ranks; the global loss is their sum
    rt.backward(loss * rt.world_size)
    part["loss"] = loss.item()
    return part


@dataclass
class Run:
    """Everything a training run is made of. :func:`elpo_min.launch.build_run` makes one from a
    :class:`~elpo_min.config.Config`, after seeding the random generators."""

    cfg: Config
    model: Any
    tokenizer: Any
    engine: RolloutEngine
    train_problems: list
    # () -> held-out metrics with "success_rate", drawn from its own random stream so that
    # evaluating never changes what training samples (elpo_min.diagnostics.held_out_success)
    evaluate: Callable[[], dict]
    # (run, forward, optimizer, resume) -> the context around the loop that owns the run's
    # folder: lock, log, checkpoints, interrupts, time limit, evaluations, progress
    # (elpo_min.checkpoints.Session)
    session: Callable
    runtime: Runtime = field(default_factory=Runtime)
    # model -> the training forward: the textbook LogProbs, or the engine room's
    # (elpo_min.launch builds the one Config.logprobs names)
    logprobs: Callable[[Any], LogProbs] = LogProbs
    # extra per-step diagnostics (the toy's oracle metrics), see training_batch
    step_metrics: Callable | None = None


def step_prompts(problems: list, step: int, cfg: Config, rt: Runtime) -> list:
    """The problems of step ``step`` (0-based), this rank's share of them.

    The training problems are shuffled once (by ``cfg.seed``) and walked in that order,
    ``prompts_per_step`` at a time, wrapping around at the end.
    """
    order = random.Random(cfg.seed).sample(range(len(problems)), len(problems))
    first = step * cfg.prompts_per_step
    chosen = [order[(first + i) % len(order)] for i in range(cfg.prompts_per_step)]
    return rt.shard([problems[i] for i in chosen])


def collect_rollouts(engine: RolloutEngine, problems: list, cfg: Config) -> list[PromptTree]:
    """The step's rollouts: BEL's trees (ELPO) or ``n_total`` independent samples (GRPO)."""
    if cfg.algo == "elpo":
        return build_trees(engine, problems, **{name: getattr(cfg, name) for name in BEL_ARGS})
    return grpo_trees(engine, problems, cfg.n_total)


def step_record(trees: list[PromptTree], info: dict, stats: dict, cfg: Config) -> dict:
    """What the log keeps of one step: the batch's info, the update's statistics, and how the
    rollouts went."""
    # Training success from each prompt's first collection, sampled before any outcome was
    # seen: BEL's later collections stop once b_max failures are in, which biases their success
    # rate low, and its continuations start mid-way.
    first_collection = cfg.b_max if cfg.algo == "elpo" else cfg.n_total
    sampled = [t for tree in trees for t in tree.trajectories[:first_collection]]
    return {
        "algo": cfg.algo,
        **info,
        **stats,
        "train_success": sum(t.success for t in sampled) / len(sampled),
        "rollouts_per_prompt": sum(tree.rollouts for tree in trees) / len(trees),
    }


def train(run: Run, resume: bool = False) -> dict:
    """Train with ELPO or GRPO.

    Each step chooses its prompts, rolls them out (BEL's trees, or GRPO's groups at the same
    budget), credits every token (A_hier and the ELC mask), and updates the policy with the
    clipped objective. Everything around the step, from the lock on the run's folder to
    checkpoints, interrupts, the time limit, evaluations and the progress bar, is
    ``run.session``'s: it decides which steps run, and saves what a crash would lose.

    Runs as one process, or as one rank of a data-parallel launch (``torchrun`` /
    ``accelerate launch``; see :mod:`elpo_min.parallel`).

    Returns:
        ``{"before": eval at step 0 (None on resume), "after": the final eval, "log": the path
        of metrics.jsonl, "steps": steps done}``.
    """
    cfg, rt = run.cfg, run.runtime
    trainable = [p for p in run.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    forward, optimizer = rt.prepare(run.logprobs(run.model), optimizer)
    device = str(next(run.model.parameters()).device)
    pad_id = run.tokenizer.pad_token_id
    with run.session(run, forward, optimizer, resume) as session:
        for step in session.steps():
            problems = step_prompts(run.train_problems, step, cfg, rt)
            # the weights are whole for generation; a crash in here saves the step's start
            with session.rollouts():
                trees = collect_rollouts(run.engine, problems, cfg)
            batch, info = training_batch(trees, cfg, pad_id, device, run.step_metrics)
            # an interrupt in here waits until the update is done
            with session.update():
                stats = policy_update(forward, optimizer, batch, cfg, rt)
            session.end_step(step_record(trees, info, stats, cfg))
    return session.result
