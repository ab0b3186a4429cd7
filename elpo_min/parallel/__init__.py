"""Data parallelism on torch.distributed, launched by ``accelerate launch`` or ``torchrun``.

* The step's ``prompts_per_step`` prompts are split over the ranks; a BEL tree never spans
  ranks, so trees, advantages and ELC masks are built locally.
* The loss is the *global* one: each rank divides by the global action-token count
  (``token-mean``) or the global count of sequences with action tokens
  (``seq-mean-token-mean``), one all-reduce per mini-batch, and scales by the world size
  because DDP averages gradients: N ranks take the update one process would take on the
  union of their batches (tests/test_distributed.py).
* Evaluation is sharded and its counts summed; step records are gathered to rank 0, which
  alone writes ``metrics.jsonl`` and checkpoints (with every rank's RNG state, so resume is
  exact at the same world size). A plain run never imports accelerate.
* Sharded weights (FSDP, DeepSpeed ZeRO-3) are gathered for rollouts (``full_weights``):
  generation needs every weight, and a LoRA policy's fit one GPU. DDP and ZeRO-2 replicate them.
  FSDP is FSDP2, which :mod:`.fsdp` applies itself (accelerate enables FSDP only on GPUs).

It sits outside the core because the trainer only calls the few collectives of
:class:`elpo_min.runtime.Runtime`; this subclass makes them real across processes.
"""

from .accelerated import AcceleratedRuntime, runtime
