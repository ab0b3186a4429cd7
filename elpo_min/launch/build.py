"""From a :class:`~elpo_min.config.Config` to a :class:`~elpo_min.train.Run`, and a whole run.

The order of the steps matters for reproducibility: the random generators are seeded before the
model is loaded (a LoRA adapter's initialization draws from them), and nothing else draws
before training starts.
"""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path

import torch

from ..checkpoints import Session
from ..config import Config
from ..diagnostics.credit import toy_step_metrics
from ..diagnostics.metrics import held_out_success
from ..errors import ConfigError
from ..fast_decoder import FastDecoder
from ..fast_update import ChunkedLogProbs, PackedLogProbs, why_not_packable
from ..logprobs import LogProbs
from ..models import load_policy
from ..parallel import runtime
from ..rollout import PlainDecoder, RolloutEngine
from ..tasks import FencedFormat, Task, load_task
from ..tools import PythonTool, run_arith
from ..train import Run, train
from ..trajectory import TurnFormat

DECODERS = {"fast": FastDecoder, "plain": PlainDecoder}


def uses_chat_format(tokenizer, cfg: Config) -> bool:
    """The chat template and fenced tool format: as configured, else when the tokenizer has one."""
    if cfg.chat is not None:
        return cfg.chat
    return bool(getattr(tokenizer, "chat_template", None))


def executor_name(task: Task, chat: bool, cfg: Config) -> str:
    """``"arith"`` for the plain toy, ``"python"`` (the sandbox) otherwise, unless configured."""
    if cfg.executor != "auto":
        return cfg.executor
    return "arith" if task.name == "toy" and not chat else "python"


def make_engine(
    model, tokenizer, task: Task, cfg: Config, decoder: str | None = None
) -> RolloutEngine:
    """The rollout engine for a task: the plain toy format, or a chat model's fenced format.

    Args:
        model, tokenizer, task, cfg: what to roll out, on which problems, with which settings.
        decoder: ``"fast"`` or ``"plain"`` (default: ``cfg.decoder``).
    """
    chat = uses_chat_format(tokenizer, cfg)
    if task.name != "toy" and not chat:
        raise ConfigError(
            f"task {task.name!r} needs an instruct model with a chat template (the tokenizer of "
            f"{cfg.model} has none); use --task toy, or an instruct model such as smollm2-135m"
        )
    fmt, question = TurnFormat(), (lambda p: p.prompt)
    if chat:
        fmt, question = FencedFormat.for_chat(tokenizer), task.question
    tool = run_arith if executor_name(task, chat, cfg) == "arith" else PythonTool()
    return RolloutEngine(
        model,
        tokenizer,
        fmt,
        question,
        task.check,
        tool=tool,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_new_tokens=cfg.max_new_tokens,
        max_turns=cfg.max_turns,
        batch_size=cfg.rollout_batch_size,
        decoder=DECODERS[decoder or cfg.decoder],
    )


def training_device(cfg: Config, rt) -> str:
    """``cfg.device``, or for "auto" the launcher's device, else a GPU when there is one."""
    if cfg.device != "auto":
        return cfg.device
    if getattr(rt, "accelerator", None) is not None:
        return str(rt.accelerator.device)
    return "cuda" if torch.cuda.is_available() else "cpu"


def enable_gradient_checkpointing(model) -> None:
    """Recompute activations in backward; the rollout engine still decodes with a cache."""
    # transformers 5.2x renamed it; non-reentrant checkpointing works under DDP
    enable = (
        getattr(model, "activation_checkpointing_enable", None)
        or model.gradient_checkpointing_enable
    )
    enable({"use_reentrant": False})
    model.config.use_cache = True


def use_threads(threads: int) -> None:
    """Set torch's CPU threads; 0 keeps torch's default.

    torch's default is ``OMP_NUM_THREADS`` when it is set, else the machine's cores. Leaving it
    alone lets the environment decide: ``make test`` runs two test processes side by side with
    ``OMP_NUM_THREADS=1`` each, since two processes of two threads on two cores slow each other
    down many times over.
    """
    if threads > 0:
        torch.set_num_threads(threads)


def training_forward(cfg: Config):
    """``model -> training forward``: shared tokens once (``"packed"``), the memory-saving head
    on per-leaf rows (``"chunked"``), or the core's textbook full-vocabulary pass (``"plain"``).
    """
    if cfg.logprobs == "plain":
        return LogProbs
    if cfg.logprobs == "chunked":
        return partial(ChunkedLogProbs, chunk=cfg.logprob_chunk)
    return partial(PackedLogProbs, chunk=cfg.logprob_chunk, budget=cfg.pack_tokens)


def update_name(cfg: Config, model) -> str:
    """Which training forward runs, in words (packing falls back where it cannot apply)."""
    if cfg.logprobs == "packed":
        reason = why_not_packable(model)
        return f"per-leaf rows (packing off: {reason})" if reason else "packed"
    return cfg.logprobs


def build_run(cfg: Config) -> Run:
    """Everything a run needs: runtime, seeds, problems, policy, engine and diagnostics.

    Args:
        cfg: a config from :func:`~elpo_min.launch.load_config`, which checked every field.

    A world size that does not divide the prompts and bad data files fail here, before any model
    is loaded.
    """
    rt = runtime()
    if cfg.prompts_per_step % rt.world_size:
        raise ConfigError(
            f"config field prompts_per_step: {cfg.prompts_per_step} prompts cannot be split over "
            f"{rt.world_size} processes; make it a multiple of the world size (it is global)"
        )
    task = load_task(cfg.task, cfg.train_data, cfg.test_data, cfg.eval_problems)
    use_threads(cfg.threads)
    random.seed(cfg.seed)
    # the same seed on every rank: identical LoRA initialization
    torch.manual_seed(cfg.seed)
    device = training_device(cfg, rt)
    model, tokenizer = load_policy(
        cfg.model, cfg.lora_rank, cfg.lora_alpha, cfg.load_in_4bit, cfg.dtype, cfg.gguf_file, device
    )
    checkpointing = cfg.gradient_checkpointing
    if checkpointing or (checkpointing is None and device.startswith("cuda")):
        enable_gradient_checkpointing(model)
    model.eval()
    if rt.world_size > 1:
        # each rank samples its own rollouts
        torch.manual_seed(cfg.seed + rt.rank)
    engine = make_engine(model, tokenizer, task, cfg)
    evaluate = partial(held_out_success, engine, task.test, cfg.seed + 1, rt)
    return Run(
        cfg,
        model,
        tokenizer,
        engine,
        task.train,
        evaluate,
        session=Session,
        runtime=rt,
        logprobs=training_forward(cfg),
        step_metrics=toy_step_metrics if task.name == "toy" else None,
    )


def run_training(cfg: Config, resume: bool = False) -> dict:
    """Build the run, train it, and draw ``out_dir/learning_curve.png``.

    Returns:
        what :func:`elpo_min.train.train` returns, and ``"update"``: which training forward ran.
    """
    run = build_run(cfg)
    result = train(run, resume=resume)
    result["update"] = update_name(cfg, run.model)
    if run.runtime.is_main:
        from ..diagnostics.plots import plot_learning_curve

        plot_learning_curve([result["log"]], Path(cfg.out_dir) / "learning_curve.png")
    return result
