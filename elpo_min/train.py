"""The ELPO / GRPO training loop.

One step: pick ``prompts_per_step`` problems; build rollouts (ELPO: BEL trees in lockstep
rounds; GRPO: ``n_total`` independent trajectories, the same budget); turn each tree into
root-to-leaf training sequences with per-token A_hier and the ELC mask; then PPO-style
epochs over mini-batches, the old log-probs taken at sampling time.

A run's files live in ``out_dir``: ``metrics.jsonl`` (a line per step and evaluation, flushed),
``learning_curve.png`` and ``checkpoint/`` (model or adapter, optimizer, RNG states, step),
written aside and renamed into place, so a crash mid-write never touches the last good one.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import time
from pathlib import Path

import torch

from . import toy
from .advantages import build_tree, hierarchical_advantages
from .bel import PromptTree, build_trees
from .config import Config
from .distributed import LogProbs, Runtime, runtime
from .loss import clip_bounds, clipped_policy_loss, k3_kl
from .metrics import credit_metrics, oracle_hits, turn_labels
from .models import load_policy, token_logprobs
from .rollout import RolloutEngine, TurnFormat, collate
from .tasks import TIR_SYSTEM_PROMPT, load_task


def training_batch(trees: list[PromptTree], cfg: Config, pad_id: int, device="cpu") -> tuple[dict, dict]:
    """Training sequences of a step: one per leaf, with A_hier and the ELC mask.

    Returns:
        ``(batch, info)``: [B, T] ``input_ids``, ``attention_mask``, ``action_mask``, ``old_logp``,
        ``advantages``, ``elc_mask``; t_crit statistics, unprobed searches, how often a probed
        t_crit equals the toy oracle's fatal step (None if never comparable), and the step-level
        :func:`~elpo_min.metrics.credit_metrics` (for ELPO also lambda_tree = 0's, ``*_lambda0``).
    """
    seqs, advs, elcs, t_crits, unprobed, hits = [], [], [], [], 0, []
    credit = {"": [], "_lambda0": []}  # rule -> per prompt, per trajectory: labelled turns
    lambda_tree = cfg.lambda_tree if cfg.algo == "elpo" else 0.0
    for tree in trees:
        hits += oracle_hits(tree.searches)
        root, path = build_tree(tree.trajectories, tree.parents)
        hierarchical_advantages(root, lambda_tree)
        elc_turns = {}  # id(traj) -> first turn index under ELC
        for tau, result in tree.searches:
            unprobed += not result.probes
            if not result.probes and not cfg.elc_unprobed:
                continue
            t_crits.append(result.t_crit)
            elc_turns[id(tau)] = result.t_crit - 1
            if cfg.elc_scope == "subtree":
                critical = path[id(tau)][min(result.t_crit, len(path[id(tau)])) - 1]
                for traj in tree.trajectories:
                    if traj.reward == 0 and critical in path[id(traj)]:
                        elc_turns.setdefault(id(traj), result.t_crit - 1)
        toy_tree = isinstance(tree.problem, toy.Problem)  # the step-level oracle exists for the toy only
        for rule in credit:
            credit[rule].append([])
        for traj in tree.trajectories:
            adv = torch.zeros(len(traj.token_ids))  # [T_i]
            elc = torch.zeros(len(traj.token_ids))  # [T_i]
            for i, (turn, node) in enumerate(zip(traj.turns, path[id(traj)])):
                adv[turn.start:turn.end] = node.a_hier
                if id(traj) in elc_turns and i >= elc_turns[id(traj)]:
                    elc[turn.start:turn.end] = 1.0
            if toy_tree:
                labelled = list(zip(turn_labels(traj), traj.turns, path[id(traj)]))  # labels once, two rules
                for rule, key in (("", "a_hier"), ("_lambda0", "a_traj")):
                    turns = [(label, getattr(node, key), turn.end - turn.start, int(elc[turn.start:turn.end].sum()))
                             for label, turn, node in labelled]
                    credit[rule][-1].append({"success": traj.success, "turns": turns})
            seqs, advs, elcs = seqs + [traj], advs + [adv], elcs + [elc]
    batch = collate(seqs, pad_id, device)
    width = batch["input_ids"].shape[1]
    pad = torch.nn.functional.pad
    batch["advantages"] = torch.stack([pad(a, (0, width - len(a))) for a in advs]).to(device)  # [B, T]
    batch["elc_mask"] = torch.stack([pad(e, (0, width - len(e))) for e in elcs]).to(device)  # [B, T]
    batch["elc_mask"] *= batch["action_mask"]
    info = {"sequences": len(seqs), "unprobed": unprobed,
            "t_crit_mean": sum(t_crits) / len(t_crits) if t_crits else 0.0,
            "t_crit_oracle_agree": sum(hits) / len(hits) if hits else None}
    for rule in credit if cfg.algo == "elpo" else [""]:  # GRPO's own rule is lambda_tree = 0
        info.update({k + rule: v for k, v in credit_metrics(credit[rule]).items()
                     if not (rule and k.startswith("elc"))})
    return batch, info


def make_engine(model, tokenizer, task, cfg: Config) -> RolloutEngine:
    """The rollout engine for a task: the plain toy format, or a chat model's format."""
    chat = cfg.chat if cfg.chat is not None else bool(getattr(tokenizer, "chat_template", None))
    if task.name != "toy" and not chat:
        raise ValueError(f"task {task.name!r} needs an instruct model with a chat template (the tokenizer of "
                         f"{cfg.model} has none); use --task toy, or an instruct model such as smollm2-135m")
    fmt, question = TurnFormat(), (lambda p: p.prompt)
    if chat:
        fmt, question = TurnFormat.for_chat(tokenizer, TIR_SYSTEM_PROMPT), task.question
    executor = cfg.executor if cfg.executor != "auto" else ("arith" if task.name == "toy" and not chat else "python")
    return RolloutEngine(model, tokenizer, fmt, question, task.check, executor=executor,
                         temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                         max_turns=cfg.max_turns, batch_size=cfg.rollout_batch_size)


def grpo_trees(engine: RolloutEngine, problems: list, n_total: int) -> list[PromptTree]:
    """The baseline's rollouts: n_total independent trajectories per prompt, no search."""
    groups = engine.rollout([engine.start(p) for p in problems], n_total)
    return [PromptTree(p, trajectories=g, rollouts=len(g)) for p, g in zip(problems, groups)]


def policy_update(forward, optimizer, batch: dict, cfg: Config, rt: Runtime | None = None) -> dict:
    """PPO-style epochs over shuffled mini-batches of sequences; returns mean stats.

    Each mini-batch is one optimizer step, split into micro-batches of ``cfg.micro_batch_size``
    sequences whose losses are divided by the whole mini-batch's count (summed over ranks):
    the accumulated gradient is exactly the one-pass gradient.

    Args:
        forward: the policy, or :class:`~elpo_min.distributed.LogProbs` around it (DDP-wrapped
            when distributed, see :meth:`Runtime.prepare`); optimizer: over trainable parameters.
        batch, cfg, rt: from :func:`training_batch`; the config; the runtime (one process if None).
    """
    rt = rt or Runtime()
    if not isinstance(getattr(forward, "module", forward), LogProbs):  # a bare model is fine too
        forward = LogProbs(forward)
    model = getattr(forward, "module", forward).model
    params = [p for p in model.parameters() if p.requires_grad]
    eps_low = clip_bounds(batch["elc_mask"], cfg.eps_low, cfg.eps_elc if cfg.algo == "elpo" else 0.0)
    token_mean = cfg.aggregation == "token-mean"
    totals, count = {}, 0
    model.train()
    for _ in range(cfg.ppo_epochs):
        order = torch.randperm(batch["input_ids"].shape[0])
        for start in range(0, len(order), cfg.minibatch_size):
            idx = order[start:start + cfg.minibatch_size]
            tokens = batch["action_mask"][idx].sum(-1)  # [b]
            all_tokens, all_seqs = rt.all_sum([tokens.sum().item(), (tokens > 0).sum().item()])
            normalizer = max(all_tokens if token_mean else all_seqs, 1.0)
            micro = cfg.micro_batch_size or len(idx)
            optimizer.zero_grad(set_to_none=True)
            stats, n_micro = {"loss": 0.0}, -(-len(idx) // micro)
            for m in range(0, len(idx), micro):
                rows = idx[m:m + micro]
                mb = {k: v[rows] for k, v in batch.items()}
                width = int(mb["attention_mask"].sum(-1).max())  # drop common right padding
                mb = {k: v[:, :width] for k, v in mb.items()}
                with rt.no_sync(forward, sync=m + micro >= len(idx)):
                    logp = forward(mb["input_ids"], mb["attention_mask"], mb["action_mask"], cfg.temperature,
                                   cfg.logprob_chunk)  # [b, T]
                    loss, part = clipped_policy_loss(logp, mb["old_logp"], mb["advantages"], mb["action_mask"],
                                                     eps_low[rows][:, :width], cfg.eps_high, cfg.aggregation,
                                                     region=mb["elc_mask"], normalizer=normalizer)
                    if cfg.kl_coef > 0:
                        with torch.no_grad(), model.disable_adapter():
                            ref = token_logprobs(model, mb["input_ids"], mb["attention_mask"], cfg.temperature,
                                                 cfg.logprob_chunk, target_mask=mb["action_mask"])
                        kl = k3_kl(logp, ref, mb["action_mask"]) * mb["action_mask"].sum() / max(all_tokens, 1.0)
                        loss = loss + cfg.kl_coef * kl
                        part["kl_ref"] = kl.item()
                    rt.backward(loss * rt.world_size)  # DDP averages over ranks; the global loss is their sum
                part["loss"] = loss.item()
                for k, v in part.items():
                    stats[k] = stats.get(k, 0.0) + (v if k in ("loss", "kl_ref") else v / n_micro)
            stats["grad_norm"] = rt.clip_grad_norm(params, cfg.max_grad_norm)
            optimizer.step()
            totals, count = {k: totals.get(k, 0.0) + v for k, v in stats.items()}, count + 1
    model.eval()
    return {k: v / count for k, v in totals.items()}


def _rng_state() -> dict:
    cuda = {"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}
    return {"python": random.getstate(), "torch": torch.get_rng_state(), **cuda}


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(out_dir: Path, model, tokenizer, optimizer, step: int, cfg: Config,
                    rng_states: list | None = None) -> None:
    """Write ``out_dir/checkpoint`` atomically (built aside, then swapped in); ``rng_states``:
    one per data-parallel rank (default: this process's)."""
    tmp = out_dir / f".checkpoint-{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp / "model")  # full model, or the LoRA adapter only
    tokenizer.save_pretrained(tmp / "model")
    trainable = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
    torch.save({"step": step, "trainable": trainable, "optimizer": optimizer.state_dict(),
                "rng": rng_states or [_rng_state()]}, tmp / "trainer_state.pt")
    (tmp / "config.json").write_text(json.dumps(vars(cfg), indent=2))
    final, old = out_dir / "checkpoint", out_dir / f".checkpoint-old-{step}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(out_dir: Path, model, optimizer, rt: Runtime | None = None) -> int:
    """Restore weights, optimizer and this rank's RNG state; returns the step to continue from."""
    rt = rt or Runtime()
    path = out_dir / "checkpoint" / "trainer_state.pt"
    if not path.is_file():
        raise FileNotFoundError(f"nothing to resume: {path} does not exist (start without --resume)")
    state, params = torch.load(path, weights_only=False), dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["trainable"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
    if len(rngs) == rt.world_size:
        _set_rng_state(rngs[rt.rank])
    else:
        print(f"warning: the checkpoint holds RNG states for {len(rngs)} process(es), this run has "
              f"{rt.world_size}: it resumes with fresh seeds, so rollouts differ from an uninterrupted run")
        torch.manual_seed(1_000_003 * state["step"] + rt.rank)
    return state["step"]


def held_out_success(engine, problems, seed: int, rt: Runtime | None = None) -> dict:
    """Held-out pass@1 with its own RNG stream, so evaluating never perturbs training;
    sharded over data-parallel ranks and summed."""
    rt = rt or Runtime()
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if torch.cuda.is_available() else []):
        torch.manual_seed(seed + rt.rank)
        trajs = [t for g in engine.rollout([engine.start(p) for p in rt.shard(problems)], 1) for t in g]
    solved = [t for t in trajs if t.success]
    n, n_solved, calls, solved_calls, truncated = rt.all_sum(
        [len(trajs), len(solved), sum(t.num_steps for t in trajs), sum(t.num_steps for t in solved),
         sum(t.truncated for t in trajs)])
    return {"success_rate": n_solved / n, "tool_calls_per_problem": calls / n,
            "tool_calls_per_solved": solved_calls / max(n_solved, 1), "truncated_rate": truncated / n}


def train(cfg: Config, resume: bool = False) -> dict:
    """Train with ELPO or GRPO; returns ``{"before": ..., "after": ..., "log": path}``.

    Runs as one process, or as one rank of a data-parallel launch (``torchrun`` /
    ``accelerate launch``; see :mod:`elpo_min.distributed`).
    """
    from tqdm import tqdm

    from .plots import plot_learning_curve

    cfg.validate()
    rt = runtime()
    if cfg.prompts_per_step % rt.world_size:
        raise ValueError(f"config field prompts_per_step: {cfg.prompts_per_step} prompts cannot be split over "
                         f"{rt.world_size} processes; make it a multiple of the world size (it is global)")
    torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # the same on every rank: identical LoRA initialization
    device = cfg.device if cfg.device != "auto" else (
        str(rt.accelerator.device) if rt.accelerator else "cuda" if torch.cuda.is_available() else "cpu")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_policy(cfg.model, cfg.lora_rank, cfg.lora_alpha, cfg.load_in_4bit, cfg.dtype,
                                   cfg.gguf_file, device)
    if cfg.gradient_checkpointing or (cfg.gradient_checkpointing is None and device.startswith("cuda")):
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable({"use_reentrant": False})  # renamed in transformers 5.2x; non-reentrant works under DDP
        model.config.use_cache = True  # the rollout engine still decodes with a cache
    model.eval()
    if rt.world_size > 1:
        torch.manual_seed(cfg.seed + rt.rank)  # each rank samples its own rollouts
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    forward, optimizer = rt.prepare(model, optimizer)
    task = load_task(cfg.task, cfg.train_data, cfg.test_data, cfg.eval_problems)
    train_set, test_set = task.train, task.test
    engine = make_engine(model, tokenizer, task, cfg)
    bel_args = {k: getattr(cfg, k) for k in ("n_total", "b_max", "x_min", "x_max", "beta", "entropy_window")}
    order = random.Random(cfg.seed).sample(range(len(train_set)), len(train_set))
    log_path = out_dir / "metrics.jsonl"
    start_step = load_checkpoint(out_dir, model, optimizer, rt) if resume else 0
    log = None
    if rt.is_main:
        kept = [line for line in (log_path.read_text().splitlines() if resume and log_path.exists() else [])
                if json.loads(line)["step"] <= start_step]  # steps after the checkpoint are redone
        log_path.write_text("".join(line + "\n" for line in kept))
        log = open(log_path, "a", buffering=1)

    def write(record: dict) -> None:
        log and log.write(json.dumps(record) + "\n")

    def evaluate_now() -> dict:
        with rt.full_weights(forward):
            return held_out_success(engine, test_set, cfg.seed + 1, rt)

    def checkpoint(step: int) -> None:
        rngs = rt.gather(_rng_state())
        with rt.full_weights(forward):
            if rt.is_main:
                save_checkpoint(out_dir, model, tokenizer, optimizer, step, cfg, rngs)
        rt.barrier()

    before, last = None, {}
    if start_step == 0:
        before = evaluate_now()
        write({"step": 0, "eval": before, "rollouts": 0, "time_s": 0.0, "world_size": rt.world_size})
    step, started = start_step, time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=start_step, desc=f"train {cfg.algo}", disable=not (cfg.progress and rt.is_main))
    try:
        while step < cfg.steps:
            if cfg.time_limit_s and rt.all_sum([time.perf_counter() - started > cfg.time_limit_s])[0]:
                break
            tick = time.perf_counter()
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            problems = rt.shard([train_set[order[(step * cfg.prompts_per_step + i) % len(order)]]
                                 for i in range(cfg.prompts_per_step)])
            with rt.full_weights(forward):
                trees = (build_trees(engine, problems, **bel_args) if cfg.algo == "elpo"
                         else grpo_trees(engine, problems, cfg.n_total))
            rollout_s = time.perf_counter() - tick
            batch, info = training_batch(trees, cfg, tokenizer.pad_token_id, device)
            saved_step, step = step, None  # weights are mid-update until the step completes
            stats = policy_update(forward, optimizer, batch, cfg, rt)
            step = saved_step + 1
            full = [t for tree in trees for t in tree.trajectories if id(t) not in tree.parents]
            last = rt.reduce_record({
                "step": step, "algo": cfg.algo, **info, **stats,
                "train_success": sum(t.success for t in full) / len(full),
                "rollouts_per_prompt": sum(tr.rollouts for tr in trees) / len(trees),
                "rollout_s": rollout_s, "step_s": time.perf_counter() - tick,
                "time_s": time.perf_counter() - started, "peak_mem_mb": _peak_memory_mb()})
            if step % cfg.eval_every == 0 or step == cfg.steps:
                last["eval"] = evaluate_now()
            write(last)
            if step % cfg.save_every == 0:
                checkpoint(step)
            bar.update(1)
            bar.set_postfix(success=f"{last['train_success']:.2f}", clip=f"{stats.get('clip_frac', 0):.3f}")
    except BaseException:
        if step is not None and rt.is_main:  # interrupted between steps: keep what was learned
            save_checkpoint(out_dir, model, tokenizer, optimizer, step, cfg)
        raise
    finally:
        bar.close()
    after = last.get("eval") or (before if step == 0 else None) or evaluate_now()
    if "eval" not in last:
        write({"step": step, "eval": after, "time_s": time.perf_counter() - started, "world_size": rt.world_size})
    if not (step > start_step and step % cfg.save_every == 0) and not (resume and step == start_step):
        checkpoint(step)  # else the loop saved this step, or it is the checkpoint we resumed from
    if log:
        log.close()
        plot_learning_curve([log_path], out_dir / "learning_curve.png")
    return {"before": before, "after": after, "log": str(log_path), "steps": step}


def _peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
