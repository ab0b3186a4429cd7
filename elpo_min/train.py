"""The ELPO / GRPO training loop.

One step: pick ``prompts_per_step`` training problems; build rollouts (ELPO: BEL
trees in lockstep rounds; GRPO: ``n_total`` independent trajectories, the same
budget); turn each tree into root-to-leaf training sequences with per-token
A_hier and the ELC mask; then PPO-style epochs over mini-batches, with the old
log-probs taken at sampling time.

Everything a run makes lives in ``out_dir``: ``metrics.jsonl`` (one line per step
and per evaluation, flushed as written), ``learning_curve.png`` and
``checkpoint/`` (model or adapter, optimizer, RNG states, step). Checkpoints are
written to a temporary folder and renamed into place, so a crash mid-write never
touches the last good one; ``resume=True`` continues exactly where it stopped.
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
from .loss import clip_bounds, clipped_policy_loss, k3_kl
from .metrics import evaluate, oracle_hits
from .models import load_policy, token_logprobs
from .rollout import RolloutEngine, TurnFormat, collate
from .tasks import TIR_SYSTEM_PROMPT, load_task


def training_batch(trees: list[PromptTree], cfg: Config, pad_id: int, device="cpu") -> tuple[dict, dict]:
    """Training sequences of a step: one per leaf, with A_hier and the ELC mask.

    Returns:
        ``(batch, info)``: batch holds [B, T] ``input_ids``, ``attention_mask``,
        ``action_mask``, ``old_logp``, ``advantages``, ``elc_mask``; info holds
        t_crit statistics, how many selected trajectories got no probe, and how often
        a probed t_crit equals the toy oracle's first wrong step (``None`` if never comparable).
    """
    seqs, advs, elcs, t_crits, unprobed, hits = [], [], [], [], 0, []
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
        for traj in tree.trajectories:
            adv = torch.zeros(len(traj.token_ids))  # [T_i]
            elc = torch.zeros(len(traj.token_ids))  # [T_i]
            for i, (turn, node) in enumerate(zip(traj.turns, path[id(traj)])):
                adv[turn.start:turn.end] = node.a_hier
                if id(traj) in elc_turns and i >= elc_turns[id(traj)]:
                    elc[turn.start:turn.end] = 1.0
            seqs.append(traj)
            advs.append(adv)
            elcs.append(elc)
    batch = collate(seqs, pad_id, device)
    width = batch["input_ids"].shape[1]
    pad = torch.nn.functional.pad
    batch["advantages"] = torch.stack([pad(a, (0, width - len(a))) for a in advs]).to(device)  # [B, T]
    batch["elc_mask"] = torch.stack([pad(e, (0, width - len(e))) for e in elcs]).to(device)  # [B, T]
    batch["elc_mask"] *= batch["action_mask"]
    info = {"sequences": len(seqs), "unprobed": unprobed,
            "t_crit_mean": sum(t_crits) / len(t_crits) if t_crits else 0.0,
            "t_crit_oracle_agree": sum(hits) / len(hits) if hits else None}
    return batch, info


def make_engine(model, tokenizer, task, cfg: Config) -> RolloutEngine:
    """The rollout engine for a task: the plain toy format, or a chat model's format."""
    chat = cfg.chat if cfg.chat is not None else bool(getattr(tokenizer, "chat_template", None))
    if task.name != "toy" and not chat:
        raise ValueError(f"task {task.name!r} needs an instruct model with a chat template (the tokenizer of "
                         f"{cfg.model} has none); use --task toy, or an instruct model such as smollm2-135m")
    fmt, question = TurnFormat(), (lambda p: p.prompt)
    if chat:
        prompt = TIR_SYSTEM_PROMPT if cfg.tool_format == "fenced" else toy.CHAT_SYSTEM_PROMPT
        fmt, question = TurnFormat.for_chat(tokenizer, prompt, cfg.tool_format), task.question
    executor = cfg.executor if cfg.executor != "auto" else ("arith" if task.name == "toy" and not chat else "python")
    return RolloutEngine(model, tokenizer, fmt, question, task.check, executor=executor,
                         temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                         max_turns=cfg.max_turns, batch_size=cfg.rollout_batch_size)


def grpo_trees(engine: RolloutEngine, problems: list, n_total: int) -> list[PromptTree]:
    """The baseline's rollouts: n_total independent trajectories per prompt, no search."""
    groups = engine.rollout([engine.start(p) for p in problems], n_total)
    return [PromptTree(p, trajectories=g, rollouts=len(g)) for p, g in zip(problems, groups)]


def policy_update(model, optimizer, batch: dict, cfg: Config) -> dict:
    """PPO-style epochs over shuffled mini-batches of sequences; returns mean stats."""
    eps_low = clip_bounds(batch["elc_mask"], cfg.eps_low, cfg.eps_elc if cfg.algo == "elpo" else 0.0)
    totals, count = {}, 0
    model.train()
    for _ in range(cfg.ppo_epochs):
        order = torch.randperm(batch["input_ids"].shape[0])
        for start in range(0, len(order), cfg.minibatch_size):
            idx = order[start:start + cfg.minibatch_size]
            mb = {k: v[idx] for k, v in batch.items()}
            width = int(mb["attention_mask"].sum(-1).max())  # drop common right padding
            mb = {k: v[:, :width] for k, v in mb.items()}
            logp = token_logprobs(model, mb["input_ids"], mb["attention_mask"], cfg.temperature,
                                  cfg.logprob_chunk)  # [b, T]
            loss, stats = clipped_policy_loss(logp, mb["old_logp"], mb["advantages"], mb["action_mask"],
                                              eps_low[idx][:, :width], cfg.eps_high, cfg.aggregation,
                                              region=mb["elc_mask"])
            if cfg.kl_coef > 0:
                with torch.no_grad(), model.disable_adapter():
                    ref = token_logprobs(model, mb["input_ids"], mb["attention_mask"], cfg.temperature,
                                         cfg.logprob_chunk)
                kl = k3_kl(logp, ref, mb["action_mask"])
                loss = loss + cfg.kl_coef * kl
                stats["kl_ref"] = kl.item()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(
                [p for p in model.parameters() if p.requires_grad], cfg.max_grad_norm))
            optimizer.step()
            stats["loss"] = loss.item()
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v
            count += 1
    model.eval()
    return {k: v / count for k, v in totals.items()}


def _rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(out_dir: Path, model, tokenizer, optimizer, step: int, cfg: Config) -> None:
    """Write ``out_dir/checkpoint`` atomically: build it aside, then swap it in."""
    tmp = out_dir / f".checkpoint-{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp / "model")  # full model, or the LoRA adapter only
    tokenizer.save_pretrained(tmp / "model")
    trainable = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
    torch.save({"step": step, "trainable": trainable, "optimizer": optimizer.state_dict(),
                "rng": _rng_state()}, tmp / "trainer_state.pt")
    (tmp / "config.json").write_text(json.dumps(vars(cfg), indent=2))
    final, old = out_dir / "checkpoint", out_dir / f".checkpoint-old-{step}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(out_dir: Path, model, optimizer) -> int:
    """Restore weights, optimizer and RNG states; returns the step to continue from."""
    path = out_dir / "checkpoint" / "trainer_state.pt"
    if not path.is_file():
        raise FileNotFoundError(f"nothing to resume: {path} does not exist (start without --resume)")
    state = torch.load(path, weights_only=False)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["trainable"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    _set_rng_state(state["rng"])
    return state["step"]


def held_out_success(engine, problems, seed: int) -> dict:
    """Held-out pass@1 with its own RNG stream, so evaluating never perturbs training."""
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if torch.cuda.is_available() else []):
        torch.manual_seed(seed)
        summary = evaluate(engine, problems, k=1, progress=False)
    return {k: summary[k] for k in ("success_rate", "tool_calls_per_problem", "tool_calls_per_solved",
                                    "truncated_rate")}


def train(cfg: Config, resume: bool = False) -> dict:
    """Train with ELPO or GRPO; returns ``{"before": ..., "after": ..., "log": path}``."""
    from tqdm import tqdm

    from .plots import plot_learning_curve

    cfg.validate()
    torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_policy(cfg.model, cfg.lora_rank, cfg.lora_alpha, cfg.load_in_4bit, cfg.dtype,
                                   cfg.gguf_file, device)
    if cfg.gradient_checkpointing:
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable()  # renamed in transformers 5.2x
        model.config.use_cache = True  # the rollout engine still decodes with a cache
    model.eval()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    task = load_task(cfg.task, cfg.train_data, cfg.test_data, cfg.eval_problems)
    train_set, test_set = task.train, task.test
    engine = make_engine(model, tokenizer, task, cfg)
    bel_args = {k: getattr(cfg, k) for k in ("n_total", "b_max", "x_min", "x_max", "beta", "entropy_window")}
    order = random.Random(cfg.seed).sample(range(len(train_set)), len(train_set))
    log_path = out_dir / "metrics.jsonl"
    start_step = load_checkpoint(out_dir, model, optimizer) if resume else 0
    kept = [line for line in (log_path.read_text().splitlines() if resume and log_path.exists() else [])
            if json.loads(line)["step"] <= start_step]  # steps after the checkpoint are redone
    log_path.write_text("".join(line + "\n" for line in kept))
    log = open(log_path, "a", buffering=1)

    def write(record: dict) -> None:
        log.write(json.dumps(record) + "\n")

    before = None
    if start_step == 0:
        before = held_out_success(engine, test_set, cfg.seed + 1)
        write({"step": 0, "eval": before, "rollouts": 0, "time_s": 0.0})
    step, started = start_step, time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=start_step, desc=f"train {cfg.algo}", disable=not cfg.progress)
    try:
        while step < cfg.steps:
            if cfg.time_limit_s and time.perf_counter() - started > cfg.time_limit_s:
                break
            tick = time.perf_counter()
            problems = [train_set[order[(step * cfg.prompts_per_step + i) % len(order)]]
                        for i in range(cfg.prompts_per_step)]
            if cfg.algo == "elpo":
                trees = build_trees(engine, problems, **bel_args)
            else:
                trees = grpo_trees(engine, problems, cfg.n_total)
            rollout_s = time.perf_counter() - tick
            batch, info = training_batch(trees, cfg, tokenizer.pad_token_id, device)
            saved_step, step = step, None  # weights are mid-update until the step completes
            stats = policy_update(model, optimizer, batch, cfg)
            step = saved_step + 1
            full = [t for tree in trees for t in tree.trajectories if id(t) not in tree.parents]
            record = {"step": step, "algo": cfg.algo, **info, **stats,
                      "train_success": sum(t.success for t in full) / len(full),
                      "rollouts_per_prompt": sum(tr.rollouts for tr in trees) / len(trees),
                      "rollout_s": rollout_s, "step_s": time.perf_counter() - tick,
                      "time_s": time.perf_counter() - started, "peak_mem_mb": _peak_memory_mb()}
            if step % cfg.eval_every == 0 or step == cfg.steps:
                record["eval"] = held_out_success(engine, test_set, cfg.seed + 1)
            write(record)
            if step % cfg.save_every == 0:
                save_checkpoint(out_dir, model, tokenizer, optimizer, step, cfg)
            bar.update(1)
            bar.set_postfix(success=f"{record['train_success']:.2f}", clip=f"{stats.get('clip_frac', 0):.3f}")
    except BaseException:
        if step is not None:  # interrupted between steps: keep what was learned
            save_checkpoint(out_dir, model, tokenizer, optimizer, step, cfg)
        raise
    finally:
        bar.close()
    last = json.loads(log_path.read_text().strip().splitlines()[-1])
    after = last.get("eval") or held_out_success(engine, test_set, cfg.seed + 1)
    if "eval" not in last:
        write({"step": step, "eval": after, "time_s": time.perf_counter() - started})
    if step % cfg.save_every or not (out_dir / "checkpoint").exists():  # else the loop saved this step
        save_checkpoint(out_dir, model, tokenizer, optimizer, step, cfg)
    log.close()
    plot_learning_curve([log_path], out_dir / "learning_curve.png")
    return {"before": before, "after": after, "log": str(log_path), "steps": step}


def _peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
