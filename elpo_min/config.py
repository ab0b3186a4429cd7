"""Training configuration: one dataclass, loadable from YAML, overridable from the CLI.

Defaults are the paper's (Table 2) for the algorithm and a CPU-sized run of the
toy world for everything else. Unknown keys are errors (with a suggestion), and
:meth:`Config.validate` rejects bad values before any rollout is spent.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass
class Config:
    algo: str = "elpo"  # "elpo" or "grpo"
    model: str = str(DATA / "tiny_policy")
    gguf_file: str | None = None
    lora_rank: int = 0  # 0 = full fine-tuning (the tiny policy); > 0 = LoRA adapter
    lora_alpha: int = 32
    load_in_4bit: bool = False
    dtype: str = "float32"
    gradient_checkpointing: bool | None = None  # None: on when training on a GPU
    device: str = "auto"
    task: str = "toy"  # "toy", "gsm" (shipped offline) or "hf:<dataset>" (GSM8K or MATH layout)
    train_data: str | None = None  # None: the task's shipped split
    test_data: str | None = None
    executor: str = "auto"  # "arith" (toy, in-process), "python" (sandbox); auto: arith for the plain toy
    chat: bool | None = None  # chat template and fenced tool format; None: when the tokenizer has a chat template
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 48
    max_turns: int = 10
    rollout_batch_size: int = 256
    # ELPO, paper Table 2
    n_total: int = 16
    b_max: int = 3
    x_min: int = 1
    x_max: int = 3
    beta: float = 5.0
    entropy_window: int = 32
    lambda_tree: float = 0.5
    eps_low: float = 0.2
    eps_high: float = 0.315
    eps_elc: float = 0.115
    elc_scope: str = "trajectory"  # or "subtree"
    elc_unprobed: bool = True  # literal pseudo-code: an unprobed tau* gets t_crit = 1
    kl_coef: float = 0.0
    aggregation: str = "seq-mean-token-mean"  # or "token-mean"
    steps: int = 30
    prompts_per_step: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    ppo_epochs: int = 1
    minibatch_size: int = 64
    micro_batch_size: int = 0  # sequences per forward/backward (gradient accumulation); 0: the mini-batch
    logprob_chunk: int = 256  # tokens per output-head chunk (each recomputed in backward)
    time_limit_s: float = 0.0  # > 0: stop training after this many seconds
    eval_every: int = 15
    eval_problems: int = 800
    save_every: int = 10
    out_dir: str = "runs/elpo"
    seed: int = 0
    threads: int = 2
    progress: bool = True

    @classmethod
    def load(cls, path: str | None = None, overrides: dict | None = None) -> Config:
        """Defaults, then the YAML file, then ``overrides``; unknown keys raise."""
        import yaml

        if path and not Path(path).is_file():
            raise FileNotFoundError(f"config file {path} not found")
        values = {**((yaml.safe_load(Path(path).read_text()) or {}) if path else {}), **(overrides or {})}
        names = {f.name: f for f in dataclasses.fields(cls)}
        for key in (k for k in values if k not in names):
            close = difflib.get_close_matches(key, names, n=1)
            raise ValueError(f"unknown config key {key!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
        config = cls(**{k: _coerce(names[k], v) for k, v in values.items()})
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        checks = [
            (self.algo in ("elpo", "grpo"), "algo", "must be 'elpo' or 'grpo'"),
            (self.n_total >= 2, "n_total", "must be >= 2 rollouts per prompt"),
            (self.b_max >= 1, "b_max", "must be >= 1"),
            (1 <= self.x_min <= self.x_max, "x_min", "needs 1 <= x_min <= x_max"),
            (self.eps_low >= 0, "eps_low", "must be >= 0"),
            (self.eps_high >= 0, "eps_high", "must be >= 0"),
            (self.eps_elc >= 0, "eps_elc", "must be >= 0"),
            (self.eps_low + self.eps_elc < 1, "eps_elc", "needs eps_low + eps_elc < 1"),
            (0.0 <= self.lambda_tree <= 1.0, "lambda_tree", "must be in [0, 1]"),
            (self.elc_scope in ("trajectory", "subtree"), "elc_scope", "must be 'trajectory' or 'subtree'"),
            (self.aggregation in ("seq-mean-token-mean", "token-mean"), "aggregation",
             "must be 'seq-mean-token-mean' or 'token-mean'"),
            (self.executor in ("auto", "arith", "python"), "executor", "must be 'auto', 'arith' or 'python'"),
            (self.task in ("toy", "gsm") or self.task.startswith("hf:"), "task",
             "must be 'toy', 'gsm' or 'hf:<dataset name>' (e.g. hf:openai/gsm8k)"),
            (self.task == "toy" or self.executor != "arith", "executor",
             "word problems need the Python tool: set --executor python"),
            (self.task == "toy" or self.chat is not False, "chat", "word problems need an instruct model's chat "
             "format: drop --chat false"),
            (self.temperature > 0 and 0 < self.top_p <= 1, "temperature/top_p", "need T > 0, 0 < top_p <= 1"),
            (self.prompts_per_step >= 1 and self.minibatch_size >= 1 and self.ppo_epochs >= 1,
             "prompts_per_step/minibatch_size/ppo_epochs", "must be >= 1"),
            (self.micro_batch_size >= 0 and self.logprob_chunk >= 1, "micro_batch_size/logprob_chunk",
             "need micro_batch_size >= 0 (0: whole mini-batch) and logprob_chunk >= 1"),
            (self.lr > 0 and self.kl_coef >= 0, "lr/kl_coef", "need lr > 0 and kl_coef >= 0"),
            (self.kl_coef == 0 or self.lora_rank > 0, "kl_coef",
             "the KL reference is the model with its LoRA adapter disabled: set lora_rank > 0"),
        ]
        for ok, field, message in checks:
            if not ok:
                got = ", ".join(f"{f}={getattr(self, f)!r}" for f in field.split("/"))
                raise ValueError(f"config field {field}: {message} (got {got})")


def _coerce(field: dataclasses.Field, value):
    """Turn a CLI string into the field's type (bools accept true/false/1/0)."""
    if not isinstance(value, str):
        return value
    kind = str(field.type)
    if kind.startswith("bool"):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"config field {field.name}: expected true/false, got {value!r}")
        return value.lower() in ("true", "1", "yes")
    try:
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
    except ValueError:
        raise ValueError(f"config field {field.name}: expected {kind}, got {value!r}") from None
    return None if value.lower() == "none" and "None" in kind else value


def parse_overrides(args: list[str]) -> dict:
    """``["--lr", "3e-4", "--algo", "grpo"]`` -> ``{"lr": "3e-4", "algo": "grpo"}``."""
    out, i = {}, 0
    while i < len(args):
        key = args[i]
        if not key.startswith("--"):
            raise ValueError(f"expected --key value, got {key!r}")
        key = key[2:].replace("-", "_")
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            value, i = args[i + 1], i + 2
        else:
            value, i = "true", i + 1
        out[key] = value
    return out
