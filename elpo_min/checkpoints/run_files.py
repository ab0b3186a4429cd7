"""The trainer's view of ``out_dir``: open (fresh or resumed), log a record, save a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from ..runtime import Runtime
from .store import load_checkpoint, rng_state, save_checkpoint


class RunFiles:
    """``metrics.jsonl`` and ``checkpoint/`` of one run; only the main process writes.

    Args:
        out_dir: the run's folder (made if missing).
        config: the run's config as a dict, saved with every checkpoint.
        runtime: who this process is.
    """

    def __init__(self, out_dir: str | Path, config: dict, runtime: Runtime | None = None):
        self.out_dir = Path(out_dir)
        self.config = config
        self.runtime = runtime or Runtime()
        self.log_path = self.out_dir / "metrics.jsonl"
        self.file = None

    def open(self, model, optimizer, resume: bool) -> int:
        """Start the log, restoring the checkpoint first when resuming; returns the first step.

        On resume, log lines of steps after the checkpoint are dropped: those steps are redone.
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        start_step = load_checkpoint(self.out_dir, model, optimizer, self.runtime) if resume else 0
        if self.runtime.is_main:
            kept = []
            if resume and self.log_path.exists():
                lines = self.log_path.read_text().splitlines()
                kept = [line for line in lines if json.loads(line)["step"] <= start_step]
            self.log_path.write_text("".join(line + "\n" for line in kept))
            self.file = open(self.log_path, "a", buffering=1)
        return start_step

    def log(self, record: dict) -> None:
        if self.file:
            self.file.write(json.dumps(record) + "\n")

    def save(self, step: int, model, tokenizer, optimizer, interrupted: bool = False) -> None:
        """Checkpoint the state after ``step`` steps.

        Every rank's RNG state is gathered, a collective; after an interrupt there is no
        collective to rely on, so only the main process saves, with its own state.
        """
        if interrupted:
            if self.runtime.is_main:
                save_checkpoint(self.out_dir, model, tokenizer, optimizer, step, self.config)
            return
        rngs = self.runtime.gather(rng_state())
        if self.runtime.is_main:
            save_checkpoint(self.out_dir, model, tokenizer, optimizer, step, self.config, rngs)
        self.runtime.barrier()

    def close(self) -> None:
        if self.file:
            self.file.close()
            self.file = None
