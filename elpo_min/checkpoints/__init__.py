"""A run's files in ``out_dir``: the metrics log and the checkpoints.

* ``metrics.jsonl``: one JSON line per step and per evaluation, flushed as it is written.
* ``checkpoint/``: the model (or only its LoRA adapter) with the tokenizer, the trainable weights
  and the optimizer, every rank's random-number state, the step and the config.

It sits outside the core because the trainer only needs three verbs (open, log, save), which
:class:`RunFiles` provides; how a checkpoint is written so that no crash can lose it is
engineering, not ELPO.
"""

from .run_files import RunFiles
from .store import load_checkpoint, rng_state, save_checkpoint, set_rng_state
