"""A :class:`~elpo_min.config.Config` from YAML and the command line, every field checked.

Defaults (or, on ``--resume``, the config the checkpoint was saved with), then the YAML file,
then ``--key value`` overrides. Unknown keys get a suggestion, and :func:`validate_config`
checks every field's type and range before any model is loaded or any rollout is spent; each
message names the field and the values it accepts.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from pathlib import Path

from ..config import Config
from ..errors import ConfigError, MissingFile
from ..loss import AGGREGATIONS

CHOICES = {
    "algo": ("elpo", "grpo"),
    "decoder": ("fast", "plain"),
    "logprobs": ("packed", "chunked", "plain"),
    "dtype": ("float32", "bfloat16", "float16"),
    "executor": ("auto", "arith", "python"),
    "elc_scope": ("trajectory", "subtree"),
    "aggregation": AGGREGATIONS,
}
# the ranges of the numeric fields
AT_LEAST_ONE = ("b_max", "x_min", "x_max", "entropy_window", "prompts_per_step", "ppo_epochs")
AT_LEAST_ONE += ("minibatch_size", "logprob_chunk", "eval_every", "eval_problems", "save_every")
AT_LEAST_ONE += ("max_new_tokens", "max_turns", "rollout_batch_size", "lora_alpha", "pack_tokens")
AT_LEAST_ZERO = ("lora_rank", "micro_batch_size", "steps", "seed", "beta", "kl_coef")
AT_LEAST_ZERO += ("weight_decay", "time_limit_s", "eps_low", "eps_high", "eps_elc")
AT_LEAST_ZERO += ("threads", "minibatch_prompts", "micro_batch_tokens")
POSITIVE = ("lr", "temperature", "max_grad_norm", "top_p")
AT_MOST_ONE = ("lambda_tree", "top_p", "eps_low", "eps_elc")
# fields that cannot change when a run is resumed: they decide what the checkpoint holds
FROZEN_ON_RESUME = ("algo", "model", "gguf_file", "lora_rank", "lora_alpha", "load_in_4bit")
FROZEN_ON_RESUME += ("dtype", "task", "train_data", "seed")
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def read_yaml(path: str) -> dict:
    """The mapping in a YAML file; a malformed one names the file and the line."""
    import yaml

    if not Path(path).is_file():
        raise MissingFile(f"config file {path} not found")
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config file {path}{where}: not valid YAML ({problem})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        shape = type_name(values)
        raise ConfigError(f"config file {path}: expected 'key: value' lines, got a {shape}")
    return values


def load_config(
    path: str | None = None, overrides: dict | None = None, base: dict | None = None
) -> Config:
    """Defaults (or ``base``, a saved config), then the YAML file at ``path``, then
    ``overrides``; validated. Unknown keys raise, with a suggestion."""
    values = {**(base or {}), **(read_yaml(path) if path else {}), **(overrides or {})}
    names = {f.name: f for f in dataclasses.fields(Config)}
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown config key {key!r}{hint}")
    config = Config(**{k: coerce(names[k], v) for k, v in values.items()})
    validate_config(config)
    return config


def load_resumed_config(path: str | None, overrides: dict, out_dir: str) -> Config:
    """The config to resume ``out_dir`` with: what its checkpoint was saved with, then the
    YAML file and the overrides, which may change anything but :data:`FROZEN_ON_RESUME`."""
    from ..checkpoints.store import nothing_to_resume, saved_config

    saved = saved_config(out_dir)
    if saved is None:
        raise nothing_to_resume(out_dir)
    known = {f.name for f in dataclasses.fields(Config)}
    # the run goes on where its checkpoint is, also when the folder was moved since
    base = {**{k: v for k, v in saved.items() if k in known}, "out_dir": out_dir}
    config = load_config(path, overrides, base)
    changed = [k for k in FROZEN_ON_RESUME if k in saved and getattr(config, k) != saved[k]]
    if changed:
        was = ", ".join(f"{k}={saved[k]!r} (asked {getattr(config, k)!r})" for k in changed)
        raise ConfigError(
            f"config field {'/'.join(changed)} cannot change on --resume: the checkpoint in "
            f"{out_dir} was trained with {was}; start a new run in another --out_dir instead"
        )
    return config


def resume_changes(cfg: Config, out_dir: str) -> str | None:
    """The settings that differ from those ``out_dir``'s checkpoint was saved with, as one line
    for the console (``resume: prompts_per_step 8 -> 4, lr 0.0001 -> 3e-05``), or None."""
    from ..checkpoints.store import saved_config

    saved = saved_config(out_dir) or {}
    changes = [
        f"{f.name} {saved[f.name]} -> {getattr(cfg, f.name)}"
        for f in dataclasses.fields(Config)
        # out_dir is where the checkpoint is, not a setting of the training
        if f.name in saved and f.name != "out_dir" and saved[f.name] != getattr(cfg, f.name)
    ]
    return "resume: " + ", ".join(changes) if changes else None


def type_name(value) -> str:
    names = {list: "list", dict: "mapping", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def check_type(field: dataclasses.Field, value):
    """``value`` as the field's type, or a ConfigError; an int is a fine float."""
    annotation = str(field.type)
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise ConfigError(f"config field {field.name}: needs a value, got null")
    base = annotation.split("|")[0].strip()
    if base == "bool" and isinstance(value, bool):
        return value
    if base == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base == "str" and isinstance(value, str):
        return value
    expected = {"bool": "true or false", "int": "an integer", "float": "a number"}
    raise ConfigError(
        f"config field {field.name}: expected {expected.get(base, 'text')}, got "
        f"{value!r} (a {type_name(value)})"
    )


def validate_config(cfg: Config) -> None:
    """Raise a :class:`~elpo_min.errors.ConfigError` naming the first bad field."""
    for field in dataclasses.fields(Config):
        setattr(cfg, field.name, check_type(field, getattr(cfg, field.name)))
    for name, allowed in CHOICES.items():
        if getattr(cfg, name) not in allowed:
            bad(cfg, name, "must be one of " + ", ".join(repr(a) for a in allowed))
    for name in (f.name for f in dataclasses.fields(Config)):
        value = getattr(cfg, name)
        if isinstance(value, float) and not math.isfinite(value):
            bad(cfg, name, "must be a finite number")
    limits = [(AT_LEAST_ONE, lambda v: v >= 1, ">= 1"), (AT_LEAST_ZERO, lambda v: v >= 0, ">= 0")]
    limits += [(POSITIVE, lambda v: v > 0, "> 0"), (AT_MOST_ONE, lambda v: v <= 1, "<= 1")]
    for names, holds, text in limits:
        for name in names:
            if not holds(getattr(cfg, name)):
                bad(cfg, name, f"must be {text}")
    checks = [
        (cfg.n_total >= 2, "n_total", "must be >= 2 rollouts per prompt"),
        (cfg.x_min <= cfg.x_max, "x_min", "needs x_min <= x_max"),
        (cfg.eps_low + cfg.eps_elc < 1, "eps_elc", "needs eps_low + eps_elc < 1"),
        (bool(DEVICE.fullmatch(cfg.device)), "device", "must be auto, cpu, mps, cuda or cuda:N"),
        (bool(cfg.model.strip()), "model", "must name a model: tiny, a folder or a hub id"),
        (bool(cfg.out_dir.strip()), "out_dir", "must name a folder"),
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
            cfg.kl_coef == 0 or cfg.lora_rank > 0,
            "kl_coef",
            "the KL reference is the model with its LoRA adapter disabled: set lora_rank > 0",
        ),
    ]
    for ok, name, message in checks:
        if not ok:
            bad(cfg, name, message)
    for name in ("train_data", "test_data"):
        path = getattr(cfg, name)
        if path is not None and not Path(path).is_file():
            bad(cfg, name, "names no file")


def bad(cfg: Config, name: str, message: str):
    raise ConfigError(f"config field {name}: {message} (got {getattr(cfg, name)!r})")


def coerce(field: dataclasses.Field, value):
    """Turn a command-line string into the field's type (bools accept true/false/1/0)."""
    if not isinstance(value, str):
        return value
    annotation = str(field.type)
    if value.lower() in ("none", "null") and "None" in annotation:
        return None
    if annotation.startswith("bool"):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"config field {field.name}: expected true or false, got {value!r}")
        return value.lower() in ("true", "1", "yes")
    try:
        if annotation.startswith("int"):
            return int(value)
        if annotation.startswith("float"):
            return float(value)
    except ValueError:
        expected = "an integer" if annotation.startswith("int") else "a number"
        raise ConfigError(
            f"config field {field.name}: expected {expected}, got {value!r}"
        ) from None
    return value


def parse_overrides(args: list[str]) -> dict:
    """``["--lr", "3e-4", "--algo", "grpo"]`` -> ``{"lr": "3e-4", "algo": "grpo"}``."""
    out, i = {}, 0
    while i < len(args):
        key = args[i]
        if not key.startswith("--"):
            raise ConfigError(f"expected --key value, got {key!r}")
        key = key[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            value, i = args[i + 1], i + 2
        else:
            value, i = "true", i + 1
        # --max-turns and --max_turns name the same field; the value is kept as written
        out[key.replace("-", "_")] = value
    return out
