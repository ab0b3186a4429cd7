"""Training configuration: one dataclass of every setting, with its default.

Defaults are the paper's (Table 2) for the algorithm and a CPU-sized run of the toy world for
everything else. Each default has one home: the functions that need one (BEL, the advantages,
the loss, the rollout engine, the log-prob head, the model loader) read it from here. A decoder's
temperature and top_p of 1.0 (and the head's temperature) mean the model's own distribution.
Reading a config from YAML and the command line, and checking every field's type and range, is
:func:`elpo_min.launch.load_config`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    """Every setting of a run; see the comments for what each field means."""

    # "elpo" or "grpo"
    algo: str = "elpo"
    # "tiny" (the policy shipped in data/), a directory, a hub id, or "smollm2-135m"
    model: str = "tiny"
    gguf_file: str | None = None
    # 0: full fine-tuning (the tiny policy); > 0: a LoRA adapter of this rank
    lora_rank: int = 0
    lora_alpha: int = 32
    load_in_4bit: bool = False
    dtype: str = "float32"
    # None: on when training on a GPU
    gradient_checkpointing: bool | None = None
    device: str = "auto"
    # "fast" (elpo_min.fast_decoder) or "plain" (the reference loop of elpo_min.rollout)
    decoder: str = "fast"
    # "toy", "gsm" (shipped offline) or "hf:<dataset>" (GSM8K or MATH layout)
    task: str = "toy"
    # None: the task's shipped split
    train_data: str | None = None
    test_data: str | None = None
    # "arith" (toy, in-process), "python" (sandbox); auto: arith for the plain toy
    executor: str = "auto"
    # chat template and fenced tool format; None: when the tokenizer has a chat template
    chat: bool | None = None
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
    # "trajectory" or "subtree": which failed branches ELC covers
    elc_scope: str = "trajectory"
    # the literal pseudo-code: an unprobed tau* gets t_crit = 1 and ELC on all of it
    elc_unprobed: bool = True
    kl_coef: float = 0.0
    # "seq-mean-token-mean" (paper Eq. 1) or "token-mean" (DAPO)
    aggregation: str = "seq-mean-token-mean"
    steps: int = 30
    prompts_per_step: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    ppo_epochs: int = 1
    # mini-batches (one optimizer step each) of this many prompts' whole trees, drawn at random:
    # verl's convention (the paper's "mini-batch 16" counts prompts), and the packed update
    # shares most within a tree; 0: mini-batches of minibatch_size sequences drawn at random
    # (both count one process's rows: N data-parallel ranks update on N times as many)
    minibatch_prompts: int = 4
    minibatch_size: int = 64
    # sequences per forward/backward (gradient accumulation); 0: the whole mini-batch
    micro_batch_size: int = 0
    # > 0: micro-batches bounded by their distinct tokens instead (what "packed" forwards)
    micro_batch_tokens: int = 0
    # how the update computes the action tokens' log-probs: "packed" (elpo_min.fast_update:
    # each micro-batch's shared tokens forwarded once, through the memory-saving head),
    # "chunked" (the memory-saving head on per-leaf rows) or "plain" (elpo_min.logprobs, the
    # textbook full-vocabulary pass on per-leaf rows); all three compute the same numbers
    logprobs: str = "packed"
    # tokens per chunk of the memory-saving output head ("packed", "chunked"), each recomputed
    # in backward
    logprob_chunk: int = 256
    # the longest packed row of "packed", in tokens: attention over a row costs its length
    # squared, so on CPU rows about as long as one of the demo's trees (docs/results.md)
    pack_tokens: int = 768
    # > 0: stop training after this many seconds
    time_limit_s: float = 0.0
    eval_every: int = 15
    eval_problems: int = 800
    save_every: int = 10
    out_dir: str = "runs/elpo"
    seed: int = 0
    # torch CPU threads; 0: torch's default (OMP_NUM_THREADS if set, else the machine's cores)
    threads: int = 0
    progress: bool = True
