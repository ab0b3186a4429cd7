"""The Python tool: run model-written code in a fresh, confined interpreter.

Every call starts a new ``python -I -S`` process in a throwaway directory
(:mod:`~elpo_min.tools.sandbox_child` runs inside it) and returns a
:class:`~elpo_min.tools.ToolResult`. What the project promises, whatever the code does: the
caller survives and no signal, priority change or connection of the code reaches it, nothing
outside the sandbox's directory changes, nothing the code started or made (a process, an IPC
object) outlives the call, and :func:`run_python` returns within its timeout plus
``KILL_SLACK_S + CLEANUP_S`` (2 s) and never raises. The directory goes with the call, or
within seconds after it where the code filled it with more than ``CLEANUP_S`` can remove (a
thread finishes the work). The layers that keep the promise, outermost first
(``docs/sandbox.md`` has the full table, and what a kernel without a layer gets):

* **OS confinement the code cannot undo** (Linux; see the child's docstring for the details):
  no new privileges, no capabilities, Landlock (writes only beneath the sandbox's directory,
  Linux 5.13+; signals and abstract sockets kept inside, Linux 6.12+), and a seccomp filter (no
  signals, signal owners, ``pidfd``/``prlimit``/``ptrace``, priorities or scheduling towards
  other processes, no process creation but threads, no ``exec``, ``chmod``, ``chown``,
  ``mknod``, extended attributes, sockets, System V IPC, POSIX message queues, memfds, mounts
  or namespaces; x86_64 and aarch64). Where the kernel lacks a layer, :func:`os_layers` warns
  once and the sandbox runs with the rest.
* **rlimits**: address space, CPU seconds, file size (an output bomb stops at
  ``max_output_bytes``), open files, no core files; a scrubbed environment; stdin at EOF; a
  session and process group of its own.
* **The caller holds the output files**: stdout and stderr are unnamed files the parent opened,
  so the code can neither swap them (a FIFO, a directory) nor make the parent wait on them.
* **An audit hook (PEP 578)**, the portable first line: it refuses process creation, signals,
  signal owners, sockets, foreign calls and writes outside; pure Python can get around it, so it
  is not the boundary.
* **Cleanup that the code's tree cannot break** (:mod:`~elpo_min.tools.cleanup`): no recursion,
  no path too long, links removed and never followed, folders without permissions opened; what
  cannot be removed is a warning, never the call's result.

State across calls is replay: the earlier blocks of a trajectory that succeeded run first, their
output hidden down to file descriptors 1 and 2, so a later block sees their variables; each call
keeps its own process and limits. ``math``, ``fractions``, ``itertools``, ``numpy`` and ``sympy``
import from the parent's site-packages. Not protected against: reading files the user can read,
and, where the OS layers are missing, a determined escape from the audit hook. Run untrusted
code at scale inside a container.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import sandbox_child
from .cleanup import remove_tree
from .result import ToolResult

CHILD = Path(sandbox_child.__file__)
ALL_LAYERS = tuple(sandbox_child.LAYERS)
SITE_PATHS = [p for p in sys.path if p.endswith("-packages")]
ENVIRONMENT = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1"}
# seconds granted past the timeout to kill the child and collect its output
KILL_SLACK_S = 1.0
# seconds the call waits for its directory to be removed; what is left then is removed by a
# thread that goes on after the call returns (and that the interpreter waits for at exit)
CLEANUP_S = 1.0
# open files the code may hold: this bounds the kernel memory it can keep outside its address
# space through descriptors (pipe buffers, and memfds where seccomp is missing)
FILES_LIMIT = 1024
# seconds a tool call may run, unless the caller says otherwise
TIMEOUT_S = 5.0


@functools.cache
def os_layers() -> tuple[str, ...]:
    """The OS layers this machine offers; the first call warns about those it lacks."""
    found = tuple(sandbox_child.available_layers())
    missing = [layer for layer in ALL_LAYERS if layer not in found]
    if missing:
        system = f"{platform.system()} {platform.release()} on {platform.machine()}"
        warnings.warn(
            f"sandbox: {', '.join(missing)} not available on {system}; model code runs with "
            f"{', '.join(found) or 'no OS layer'}, rlimits and the audit hook",
            stacklevel=2,
        )
    return found


def _limit_child(memory_mb: int, cpu_s: int, file_bytes: int) -> None:
    """preexec_fn: runs in the child between fork and exec."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    files = min(FILES_LIMIT, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))


def _remove(workdir: str) -> None:
    """Remove the throwaway directory, waiting at most :data:`CLEANUP_S` for it.

    The code chose how much to leave behind, so removing it can take longer than running it
    did; the call does not wait past the bound, and a thread finishes the work. What cannot be
    removed is reported once, as a warning; it never replaces the call's result.
    """
    remover = threading.Thread(target=_remove_or_warn, args=(workdir,), name="sandbox cleanup")
    remover.start()
    remover.join(CLEANUP_S)


def _remove_or_warn(workdir: str) -> None:
    problem = remove_tree(workdir)
    if problem:
        warnings.warn(f"sandbox: could not remove {workdir}: {problem}", stacklevel=1)


def _error(rc: int, timed_out: bool, stderr: str, timeout_s: float, file_limit: int) -> str | None:
    """The error line the model sees, from how the child ended."""
    if timed_out:
        return f"TimeoutError: the code ran longer than {timeout_s:g} s"
    if rc == -signal.SIGXFSZ:
        return f"OutputLimitError: output exceeded {file_limit} bytes"
    if rc == -signal.SIGXCPU:
        return "TimeoutError: CPU time limit exceeded"
    if rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.valid_signals() else f"signal {-rc}"
        return f"CrashError: killed by {name}"
    if rc != 0:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        return lines[-1] if lines else f"Error: exit status {rc}"
    return None


def _run(code: str, timeout_s: float, memory_mb: int, max_output_bytes: int, history) -> ToolResult:
    workdir = tempfile.mkdtemp(prefix="elpo_sandbox_")
    try:
        # a lone surrogate cannot be written as UTF-8: the child then reports a decode error
        Path(workdir, "snippet.py").write_bytes(code.encode("utf-8", "surrogatepass"))
        config = {
            "layers": list(os_layers()),
            "site_paths": SITE_PATHS,
            "history": list(history),
            "snippet": "snippet.py",
        }
        Path(workdir, "config.json").write_text(json.dumps(config))
        file_limit = max_output_bytes + 65536
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-u", str(CHILD), "config.json"],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=ENVIRONMENT,
                start_new_session=True,
                preexec_fn=lambda: _limit_child(memory_mb, int(timeout_s) + 1, file_limit),
            )
            try:
                proc.wait(timeout=timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                # the timed-out code, or anything it left behind in its process group
                for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill):
                    try:
                        kill()
                    except OSError:
                        pass
                proc.wait(timeout=KILL_SLACK_S)
            size = os.fstat(out.fileno()).st_size
            out.seek(0)
            head = out.read(max_output_bytes + 1)
            err.seek(max(0, os.fstat(err.fileno()).st_size - 4096))
            stderr = err.read().decode("utf-8", "replace")
        stdout = head[:max_output_bytes].decode("utf-8", "replace")
        truncated = size > max_output_bytes
        error = _error(proc.returncode, timed_out, stderr, timeout_s, file_limit)
        return ToolResult(stdout=stdout, error=error, timed_out=timed_out, truncated=truncated)
    finally:
        _remove(workdir)


def run_python(
    code: str,
    timeout_s: float = TIMEOUT_S,
    memory_mb: int = 512,
    max_output_bytes: int = 4096,
    history: list[str] | tuple = (),
) -> ToolResult:
    """Run ``code`` in a fresh confined interpreter.

    Args:
        code: Python source; a final bare expression is printed like a REPL.
        history: earlier blocks of the same trajectory, replayed first with their output
            hidden, so ``code`` sees their variables (the limits cover the replay too).
        timeout_s, memory_mb: wall-clock limit (then the process is killed); address space.
        max_output_bytes: stdout kept for the model (head), also the file-size limit.

    Returns:
        A :class:`ToolResult`. Whatever the code does, this returns within ``timeout_s`` plus
        ``KILL_SLACK_S + CLEANUP_S`` and never raises: a failure of the sandbox itself is a
        ``SandboxError``.
    """
    try:
        return _run(code, timeout_s, memory_mb, max_output_bytes, history)
    except Exception as e:
        return ToolResult(stdout="", error=f"SandboxError: {type(e).__name__}: {e}")


def run_many(
    codes: list[str], histories: list | None = None, max_workers: int = 2, **limits
) -> list[ToolResult]:
    """Run a batch of snippets through a bounded worker pool, results in input order.

    Args:
        codes, histories: per pending tool call, its snippet and the earlier blocks to replay.
        max_workers: concurrent sandboxes (at most the free cores).
        **limits: for :func:`run_python`.
    """
    histories = histories or [()] * len(codes)
    if len(codes) <= 1:
        return [run_python(c, history=h, **limits) for c, h in zip(codes, histories)]
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        calls = [pool.submit(run_python, c, history=h, **limits) for c, h in zip(codes, histories)]
        return [call.result() for call in calls]


class PythonTool:
    """The rollout engine's tool for real models: :func:`run_many` with fixed limits."""

    def __init__(self, max_workers: int = 2, timeout_s: float = TIMEOUT_S):
        self.max_workers = max_workers
        self.timeout_s = timeout_s

    def __call__(self, codes: list[str], histories: list) -> list[ToolResult]:
        return run_many(codes, histories, self.max_workers, timeout_s=self.timeout_s)

    def __repr__(self) -> str:
        return f"python sandbox ({self.max_workers} workers, {self.timeout_s:g} s per call)"
