"""A run's folder and its lifecycle: the metrics log, the checkpoints, and what happens around
the trainer's loop.

* ``session``: :class:`Session`, the context :func:`elpo_min.train.train` runs its loop in:
  which steps run, the time limit, evaluations and checkpoints when due, the progress bar, and
  the save that a crash or an interrupt leaves behind.
* ``run_files``: :class:`RunFiles`, ``out_dir`` itself: the lock that keeps a second run out,
  ``metrics.jsonl`` (one JSON line per step and per evaluation), interrupts deferred during an
  update, and which state a crash saves.
* ``store``: checkpoint versions behind one atomic link, with a digest of every file; the model
  (or only its LoRA adapter) with the tokenizer, the trainable weights and the optimizer, every
  rank's random-number state, the step and the config.

It sits outside the core because none of it is ELPO: the trainer's loop calls a session's five
methods, and how a checkpoint is written so that no crash can lose it is engineering.
"""

from .run_files import RunFiles
from .session import Session
from .store import load_checkpoint, rng_state, save_checkpoint, set_rng_state
