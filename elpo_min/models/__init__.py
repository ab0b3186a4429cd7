"""Policies: the tiny toy policy, any Hugging Face causal LM, LoRA adapters and 4-bit weights.

* ``tiny``: the character-level tokenizer and the sub-1M-parameter Qwen2 model of the toy world,
  built in-process (no hub); the checkpoint the warm-up made ships in ``data/tiny_policy``.
* ``loading``: :func:`load_policy` takes ``"tiny"``, a local folder, a hub id or the packaged
  ``smollm2-135m`` (a GGUF file from the package index), and optionally wraps it in a LoRA
  adapter (peft) on nf4 base weights (bitsandbytes).

It sits outside the core because loading is plumbing: the core takes a model and a tokenizer
and never asks where they came from.
"""

from .loading import load_policy, resolve_model
from .tiny import build_tiny_policy, build_tiny_tokenizer
