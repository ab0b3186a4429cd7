"""A :class:`~elpo_min.config.Config` from YAML and the command line, every field checked.

Defaults, then the YAML file, then ``--key value`` overrides. Unknown keys are errors with a
suggestion, and :func:`validate_config` rejects bad values, naming the field, before any model is
loaded or any rollout is spent.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path

from ..config import Config
from ..errors import ConfigError, MissingFile


def load_config(path: str | None = None, overrides: dict | None = None) -> Config:
    """Defaults, then the YAML file at ``path``, then ``overrides``; validated."""
    import yaml

    if path and not Path(path).is_file():
        raise MissingFile(f"config file {path} not found")
    from_file = (yaml.safe_load(Path(path).read_text()) or {}) if path else {}
    values = {**from_file, **(overrides or {})}
    names = {f.name: f for f in dataclasses.fields(Config)}
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown config key {key!r}{hint}")
    config = Config(**{k: coerce(names[k], v) for k, v in values.items()})
    validate_config(config)
    return config


def validate_config(cfg: Config) -> None:
    """Raise :class:`~elpo_min.errors.ConfigError` naming the first bad field."""
    checks = [
        (cfg.algo in ("elpo", "grpo"), "algo", "must be 'elpo' or 'grpo'"),
        (cfg.n_total >= 2, "n_total", "must be >= 2 rollouts per prompt"),
        (cfg.b_max >= 1, "b_max", "must be >= 1"),
        (1 <= cfg.x_min <= cfg.x_max, "x_min", "needs 1 <= x_min <= x_max"),
        (cfg.eps_low >= 0, "eps_low", "must be >= 0"),
        (cfg.eps_high >= 0, "eps_high", "must be >= 0"),
        (cfg.eps_elc >= 0, "eps_elc", "must be >= 0"),
        (cfg.eps_low + cfg.eps_elc < 1, "eps_elc", "needs eps_low + eps_elc < 1"),
        (0.0 <= cfg.lambda_tree <= 1.0, "lambda_tree", "must be in [0, 1]"),
        (
            cfg.elc_scope in ("trajectory", "subtree"),
            "elc_scope",
            "must be 'trajectory' or 'subtree'",
        ),
        (
            cfg.aggregation in ("seq-mean-token-mean", "token-mean"),
            "aggregation",
            "must be 'seq-mean-token-mean' or 'token-mean'",
        ),
        (cfg.decoder in ("fast", "plain"), "decoder", "must be 'fast' or 'plain'"),
        (
            cfg.executor in ("auto", "arith", "python"),
            "executor",
            "must be 'auto', 'arith' or 'python'",
        ),
        (
            cfg.task in ("toy", "gsm") or cfg.task.startswith("hf:"),
            "task",
            "must be 'toy', 'gsm' or 'hf:<dataset name>' (e.g. hf:openai/gsm8k)",
        ),
        (
            cfg.task == "toy" or cfg.executor != "arith",
            "executor",
            "word problems need the Python tool: set --executor python",
        ),
        (
            cfg.task == "toy" or cfg.chat is not False,
            "chat",
            "word problems need an instruct model's chat format: drop --chat false",
        ),
        (
            cfg.temperature > 0 and 0 < cfg.top_p <= 1,
            "temperature/top_p",
            "need T > 0, 0 < top_p <= 1",
        ),
        (
            cfg.prompts_per_step >= 1 and cfg.minibatch_size >= 1 and cfg.ppo_epochs >= 1,
            "prompts_per_step/minibatch_size/ppo_epochs",
            "must be >= 1",
        ),
        (
            cfg.micro_batch_size >= 0 and cfg.logprob_chunk >= 1,
            "micro_batch_size/logprob_chunk",
            "need micro_batch_size >= 0 (0: whole mini-batch) and logprob_chunk >= 1",
        ),
        (cfg.lr > 0 and cfg.kl_coef >= 0, "lr/kl_coef", "need lr > 0 and kl_coef >= 0"),
        (
            cfg.kl_coef == 0 or cfg.lora_rank > 0,
            "kl_coef",
            "the KL reference is the model with its LoRA adapter disabled: set lora_rank > 0",
        ),
    ]
    for ok, field, message in checks:
        if not ok:
            got = ", ".join(f"{f}={getattr(cfg, f)!r}" for f in field.split("/"))
            raise ConfigError(f"config field {field}: {message} (got {got})")


def coerce(field: dataclasses.Field, value):
    """Turn a command-line string into the field's type (bools accept true/false/1/0)."""
    if not isinstance(value, str):
        return value
    kind = str(field.type)
    if kind.startswith("bool"):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"config field {field.name}: expected true/false, got {value!r}")
        return value.lower() in ("true", "1", "yes")
    try:
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
    except ValueError:
        raise ConfigError(f"config field {field.name}: expected {kind}, got {value!r}") from None
    return None if value.lower() == "none" and "None" in kind else value


def parse_overrides(args: list[str]) -> dict:
    """``["--lr", "3e-4", "--algo", "grpo"]`` -> ``{"lr": "3e-4", "algo": "grpo"}``."""
    out, i = {}, 0
    while i < len(args):
        key = args[i]
        if not key.startswith("--"):
            raise ConfigError(f"expected --key value, got {key!r}")
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
