"""The run around the trainer's loop: which steps run, and what happens between them.

:func:`elpo_min.train.train` is the algorithm's loop. :class:`Session` is everything else a
training run must do, in one context:

* ``steps()``: evaluate the starting policy (not on resume), then yield each step still to
  run, stopping early at the time limit (at the same step on every rank);
* ``rollouts()``: the weights are whole for generation; a crash inside saves the step's start;
* ``update()``: an interrupt waits until the update is done and the step counted;
* ``end_step(record)``: the step's timings and peak memory are added, the ranks' records
  reduced, the scheduled evaluation run, the record logged and the scheduled checkpoint saved;
  an interrupt that arrived during the step stops the run after that save. An interrupt during
  the evaluation stops it too: the record is logged without it (``"eval_interrupted": true``)
  and saved, and ``--resume`` redoes the evaluation (it draws from its own random stream);
* on exit: the final evaluation and checkpoint, or, after an exception, the save from which
  ``--resume`` continues exactly; then the lock on the folder is released.

On resume the evaluations already logged are reused: a finished run resumed logs nothing new.

The files themselves (lock, log, checkpoint versions, interrupt handling) are
:class:`~elpo_min.checkpoints.RunFiles`'.
"""

from __future__ import annotations

import contextlib
import time

from ..diagnostics.memory import peak_memory_mb, reset_peak_memory
from .run_files import RunFiles


class Session:
    """One training run's lifecycle, as a context manager around the trainer's loop.

    Args:
        run: the :class:`~elpo_min.train.Run`.
        forward, optimizer: the prepared training forward and optimizer.
        resume: continue from the checkpoint in ``run.cfg.out_dir``.
    """

    def __init__(self, run, forward, optimizer, resume: bool):
        self.run = run
        self.cfg = run.cfg
        self.rt = run.runtime
        self.forward = forward
        self.optimizer = optimizer
        self.resume = resume
        self.files = RunFiles(self.cfg.out_dir, vars(self.cfg), self.rt)
        # steps done
        self.step = 0
        # the step-0 evaluation, and the last step's record
        self.before = None
        self.last = {}
        # what train() returns, set once the run has finished
        self.result = None
        self.bar = None

    def __enter__(self) -> Session:
        from tqdm import tqdm

        self.step = self.files.open(self.run.model, self.optimizer, self.resume)
        # what the log held before a resume (only the main process reads it): the evaluations
        # by step, and the steps whose evaluation an interrupt cut short
        records = self.files.records
        logged = {
            "evals": {r["step"]: r["eval"] for r in records if "eval" in r},
            "cut_short": [r["step"] for r in records if r.get("eval_interrupted")],
        }
        logged = self.rt.gather(logged)[0]
        self.evals, self.cut_short = logged["evals"], logged["cut_short"]
        self.started = time.perf_counter()
        show = self.cfg.progress and self.rt.is_main
        desc = f"train {self.cfg.algo}"
        self.bar = tqdm(total=self.cfg.steps, initial=self.step, desc=desc, disable=not show)
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if error is None:
                self.finish()
        except BaseException as late:
            # the final evaluation or save failed: handled below as any other exception
            error = late
            raise
        finally:
            if error is not None:
                # keep what was learned, as a state from which --resume continues exactly
                self.files.save_after(error, self.step, self.save)
            self.bar.close()
            self.files.close()

    def steps(self):
        """The 0-based index of each step still to run."""
        if self.step == 0:
            if 0 not in self.evals:
                start = {"step": 0, "eval": self.evaluate(), "rollouts": 0, "time_s": 0.0}
                self.log_eval(start)
            self.before = self.evals[0]
        elif self.eval_was_interrupted():
            # an interrupt cut this step's evaluation short: redo it
            self.log_eval({"step": self.step, "eval": self.evaluate(), "time_s": 0.0})
        while self.step < self.cfg.steps and not self.out_of_time():
            # from here until the update, a crash saves the step's start (see RunFiles)
            self.files.step_begins()
            reset_peak_memory()
            self.tick = time.perf_counter()
            yield self.step

    def eval_was_interrupted(self) -> bool:
        """Was the resumed checkpoint's step logged without its evaluation, cut short?"""
        return self.step in self.cut_short and self.step not in self.evals

    def log_eval(self, record: dict) -> None:
        """Log an evaluation of its own (the start's, a redone one, the final one)."""
        self.files.log({**record, "world_size": self.rt.world_size})
        self.evals[record["step"]] = record["eval"]

    def out_of_time(self) -> bool:
        """Past ``time_limit_s``? One rank over the limit stops every rank at the same step."""
        if not self.cfg.time_limit_s:
            return False
        over = time.perf_counter() - self.started > self.cfg.time_limit_s
        return bool(self.rt.all_sum([over])[0])

    @contextlib.contextmanager
    def rollouts(self):
        """Generation needs every weight: sharded ones are gathered inside."""
        with self.rt.full_weights(self.forward):
            yield
        self.rollout_s = time.perf_counter() - self.tick

    def update(self):
        """The weights change inside: an interrupt waits until the update is done and the step
        counted (in :meth:`end_step`)."""
        return self.files.updating()

    def end_step(self, record: dict) -> None:
        """Log the step's record (evaluated when due), save when due, stop when interrupted."""
        self.step += 1
        self.files.step_counted()
        now = time.perf_counter()
        record = {
            "step": self.step,
            **record,
            "rollout_s": self.rollout_s,
            "step_s": now - self.tick,
            "time_s": now - self.started,
            "peak_mem_mb": peak_memory_mb(),
        }
        self.last = self.rt.reduce_record(record)
        if self.step % self.cfg.eval_every == 0 or self.step == self.cfg.steps:
            try:
                self.last["eval"] = self.evaluate()
                self.evals[self.step] = self.last["eval"]
            except KeyboardInterrupt:
                # log and save the step without its evaluation, then stop; --resume redoes it
                self.last["eval_interrupted"] = True
                self.files.interrupted = True
        self.files.log(self.last)
        if self.step % self.cfg.save_every == 0 or self.files.interrupted:
            self.save(self.step)
        if self.files.interrupted:
            raise KeyboardInterrupt(f"interrupted: the checkpoint of step {self.step} is saved")
        self.bar.update(1)
        clip = f"{record.get('clip_frac', 0):.3f}"
        self.bar.set_postfix(success=f"{self.last['train_success']:.2f}", clip=clip)

    def finish(self) -> None:
        """The final evaluation and checkpoint, unless the last step made them."""
        if self.step in self.evals:
            # made by the last step, logged at the start, or logged before a resume
            after = self.evals[self.step]
        else:
            elapsed = time.perf_counter() - self.started
            self.log_eval({"step": self.step, "eval": self.evaluate(), "time_s": elapsed})
            after = self.evals[self.step]
        if self.files.saved_step != self.step:
            # not saved by the last step, nor the checkpoint this run resumed from
            self.save(self.step)
        log = str(self.files.log_path)
        self.result = {"before": self.before, "after": after, "log": log, "steps": self.step}

    def evaluate(self) -> dict:
        with self.rt.full_weights(self.forward):
            return self.run.evaluate()

    def save(self, step: int, rngs: list | None = None) -> None:
        with self.rt.full_weights(self.forward):
            self.files.save(step, self.run.model, self.run.tokenizer, self.optimizer, rngs)
