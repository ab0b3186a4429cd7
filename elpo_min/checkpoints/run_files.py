"""The trainer's view of ``out_dir``: open it, log to it, checkpoint into it, close it.

Only the main process writes, and only one run at a time: a lock on ``out_dir/.lock`` makes a
second run into the same folder fail at once. An interrupt (Ctrl-C, SIGTERM) at any point
leaves a checkpoint that resumes exactly: during rollouts nothing has changed the weights, so
the state of the step's start is saved, with the random-number states recorded then; during an
update the interrupt waits until the update is done and the step is counted, logged and saved.
A save is never interrupted either: it completes, then the interrupt stops the run, and what
the run says it saved is what the checkpoint holds.

On resume the log is cut back to the checkpoint's step and rewritten aside, then renamed over
``metrics.jsonl``: a crash during the rewrite leaves the old log, and a torn line (a crash
mid-write) is dropped with one line on the console.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import threading
from pathlib import Path

from ..errors import UserError, WriteFailed
from ..runtime import Runtime
from .store import free_space, full_state, human, load_checkpoint, rng_state, save_checkpoint

INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


class RunFiles:
    """``metrics.jsonl``, ``checkpoint/`` and the lock of one run.

    Args:
        out_dir: the run's folder (made if missing).
        config: the run's config as a dict, saved with every checkpoint; ``lr`` and
            ``weight_decay`` also override what a resumed optimizer state holds.
        runtime: who this process is.
    """

    def __init__(self, out_dir: str | Path, config: dict, runtime: Runtime | None = None):
        self.out_dir = Path(out_dir)
        self.config = config
        self.runtime = runtime or Runtime()
        self.log_path = self.out_dir / "metrics.jsonl"
        self.file = None
        self.lock = None
        # every rank's RNG state when the current step began
        self.step_rngs = None
        # where the training loop is: "rollouts", "update" (until the updated step is counted)
        # or "between" two steps
        self.phase = "between"
        self.interrupted = False
        self.previous_sigterm = None
        # the signal handlers that deferring interrupts replaced, while it does
        self.held = None
        # the step the published checkpoint holds, as far as this run knows (None: none yet)
        self.saved_step = None
        # on resume, the log's records up to the checkpoint's step
        self.records = []

    def open(self, model, optimizer, resume: bool) -> int:
        """Take the lock, restore the checkpoint when resuming, start the log; returns the
        first step. Log lines of steps after the checkpoint are dropped: they are redone."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            return self._open(model, optimizer, resume)
        except BaseException:
            # e.g. a checkpoint that fails its digests: the lock and the signals go back
            self.close()
            raise

    def _open(self, model, optimizer, resume: bool) -> int:
        if self.runtime.is_main:
            self._take_lock()
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (a scheduler's preemption) becomes an interrupt the trainer can save on
            self.previous_sigterm = signal.signal(signal.SIGTERM, self._raise_interrupt)
        start_step = load_checkpoint(self.out_dir, model, optimizer, self.runtime) if resume else 0
        self.saved_step = start_step if resume else None
        for group in optimizer.param_groups:
            # the config given on resume wins over what the optimizer state recorded
            group["lr"] = self.config.get("lr", group["lr"])
            group["weight_decay"] = self.config.get("weight_decay", group["weight_decay"])
        if self.runtime.is_main:
            kept = self._read_log(start_step) if resume else []
            self._rewrite_log([line for line, _ in kept])
            self.records = [record for _, record in kept]
            self.file = open(self.log_path, "a", buffering=1)
        return start_step

    def _read_log(self, last_step: int) -> list[tuple[bytes, dict]]:
        """The log's lines up to step ``last_step``, each with its record. A line that is not a
        JSON record with a step (torn by a crash while it was written) is dropped, and the
        console says so."""
        if not self.log_path.exists():
            return []
        kept, torn = [], []
        for number, line in enumerate(self.log_path.read_bytes().split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                step = record["step"]
            except (ValueError, TypeError, KeyError, IndexError):
                torn.append(number)
                continue
            if not isinstance(step, int):
                torn.append(number)
            elif step <= last_step:
                kept.append((line, record))
        if torn:
            lines = ("line " if len(torn) == 1 else "lines ") + ", ".join(map(str, torn))
            print(
                f"resume: dropped {lines} of {self.log_path}: not a JSON record (torn by a crash "
                "while it was written, or edited)",
                file=sys.stderr,
            )
        return kept

    def _rewrite_log(self, lines: list[bytes]) -> None:
        """``metrics.jsonl`` holding ``lines``: written aside, then renamed over the log, so that
        a crash leaves the old log or the new one."""
        aside = self.out_dir / ".metrics.jsonl.partial"
        try:
            with open(aside, "wb") as file:
                file.write(b"".join(line + b"\n" for line in lines))
                file.flush()
                os.fsync(file.fileno())
            os.replace(aside, self.log_path)
        except OSError as e:
            aside.unlink(missing_ok=True)
            room = human(free_space(self.out_dir))
            raise WriteFailed(
                f"could not write {self.log_path}: {e.strerror or e} ({room} free there); it is "
                "unchanged: make room, then run again"
            ) from None

    def _take_lock(self) -> None:
        self.lock = open(self.out_dir / ".lock", "a+")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock.seek(0)
            holder = self.lock.read().strip() or "another process"
            self.lock.close()
            self.lock = None
            raise UserError(
                f"another run ({holder}) is writing to {self.out_dir}; wait for it to finish "
                "or choose another --out_dir"
            ) from None
        self.lock.truncate(0)
        self.lock.write(f"pid {os.getpid()}\n")
        self.lock.flush()

    def log(self, record: dict) -> None:
        if not self.file:
            return
        try:
            self.file.write(json.dumps(record) + "\n")
        except OSError as e:
            room = human(free_space(self.out_dir))
            raise WriteFailed(
                f"could not log step {record['step']} to {self.log_path}: {e.strerror or e} "
                f"({room} free there); {self.still_saved()}"
            ) from None

    def step_begins(self) -> None:
        """A step's rollouts begin: remember every rank's RNG state, so that a crash before the
        update saves this step's start, from which the resumed run redoes the step exactly."""
        self.step_rngs = self.runtime.gather(rng_state())
        self.phase = "rollouts"

    @contextlib.contextmanager
    def updating(self):
        """The weights change inside: an interrupt waits until the update is done and the step
        is counted (:meth:`step_counted`), and a crash inside saves nothing (the weights are
        half updated)."""
        self.phase = "update"
        self.hold_interrupts()
        try:
            yield
        except BaseException:
            self.release_interrupts()
            raise
        # still held, and still "update": the weights are updated, the step not yet counted

    def step_counted(self) -> None:
        """The updated weights are the state after the counted step: interrupts act again."""
        self.phase = "between"
        self.release_interrupts()

    def save_after(self, error: BaseException, step: int, checkpoint) -> None:
        """After an exception in the training loop, save what resumes exactly, and say so.

        During rollouts the weights are still the step's start: save them with the random
        states recorded then. Between steps save the state now, unless that step is already
        saved. During an update (or before its step is counted) nothing can be saved. After a
        failed write nothing is tried on top of it.

        Args:
            error: what stopped the loop.
            step: steps done.
            checkpoint: ``checkpoint(step, rngs)`` saves.
        """
        if isinstance(error, WriteFailed):
            # its message says what is still saved
            return
        try:
            if self.phase == "rollouts":
                checkpoint(step, self.step_rngs)
            elif self.phase == "between" and self.saved_step != step:
                checkpoint(step, self.own_rngs())
        except WriteFailed as failed:
            if self.runtime.is_main:
                print(f"error: {failed}", file=sys.stderr)
        if isinstance(error, KeyboardInterrupt) and self.runtime.is_main:
            print(f"interrupted: {self.still_saved()}", file=sys.stderr)

    def still_saved(self) -> str:
        """Which step the checkpoint holds, in words."""
        if self.saved_step is None:
            return "no checkpoint is saved yet; start again without --resume"
        return f"step {self.saved_step} is saved; --resume continues it"

    @contextlib.contextmanager
    def interrupts_deferred(self):
        """Within it, Ctrl-C and SIGTERM are held back and noted in ``interrupted``."""
        held_before = self.held is not None
        self.hold_interrupts()
        try:
            yield
        finally:
            if not held_before:
                self.release_interrupts()

    def hold_interrupts(self) -> None:
        """From now on Ctrl-C and SIGTERM are only noted in ``interrupted``."""
        if self.held is not None or threading.current_thread() is not threading.main_thread():
            return
        self.held = {number: signal.signal(number, self._note_interrupt) for number in INTERRUPTS}

    def release_interrupts(self) -> None:
        """Ctrl-C and SIGTERM act again, as before :meth:`hold_interrupts`."""
        if self.held is None:
            return
        for number, handler in self.held.items():
            signal.signal(number, handler)
        self.held = None

    def _note_interrupt(self, number, frame) -> None:
        self.interrupted = True

    @staticmethod
    def _raise_interrupt(number, frame):
        raise KeyboardInterrupt(f"signal {number}")

    def own_rngs(self) -> list[dict]:
        """This process's RNG state now, for a save that cannot wait for the other ranks."""
        return [rng_state()]

    def save(self, step: int, model, tokenizer, optimizer, rngs: list | None = None) -> None:
        """Checkpoint the state after ``step`` steps; an interrupt waits until it is done.

        By default every rank's RNG state is gathered, a collective. After an exception there
        is no collective to rely on: the caller passes the states to save (``step_rngs`` when
        the weights have not changed since the step began, else ``own_rngs()``), and only the
        main process writes.

        Raises:
            WriteFailed: the write failed; the checkpoint published before is untouched.
        """
        with self.interrupts_deferred():
            collective = rngs is None
            if collective:
                rngs = self.runtime.gather(rng_state())
            # whole tensors: under FSDP every rank takes part in gathering them
            state = full_state(model, optimizer)
            if self.runtime.is_main:
                save_checkpoint(
                    self.out_dir, model, tokenizer, optimizer, step, self.config, rngs, state
                )
            if collective:
                self.runtime.barrier()
            self.saved_step = step

    def close(self) -> None:
        self.release_interrupts()
        if self.file:
            with contextlib.suppress(OSError):
                # every line was flushed as it was written
                self.file.close()
            self.file = None
        if self.lock:
            # closing the file releases the lock
            self.lock.close()
            self.lock = None
        if self.previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self.previous_sigterm)
            self.previous_sigterm = None
