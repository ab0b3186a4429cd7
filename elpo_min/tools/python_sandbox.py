"""The Python tool: run model-written code in a fresh, limited interpreter.

Every call starts a new ``python -I -S`` subprocess in a throwaway directory and returns a
:class:`~elpo_min.tool.ToolResult`. Design choices, and what they buy:

* **Fresh process, new session.** Nothing leaks between calls; output is unbuffered, so what was
  printed before a timeout survives it; the process group gets SIGKILL after.
* **rlimits.** Address space, CPU seconds, file size (an output bomb stops at
  ``max_output_bytes``), no core files. **Scrubbed environment**, stdin at EOF.
* **Audit hook (PEP 578).** A hook refuses process creation, signals to other processes, ctypes'
  library loading, symbol lookups and foreign calls (importing ctypes is allowed: sympy needs its
  types), and any write, delete, rename or chmod outside the directory.
* **Notebook semantics.** A final bare expression is printed, like a REPL (``2**100``).
* **State across calls, by replay.** The earlier blocks of a trajectory that succeeded are
  replayed first, output hidden, so a later block sees their variables; each call keeps its own
  process and limits, and a failed call cannot poison the next.
* **The usual imports.** ``math``, ``fractions``, ``itertools``, ``numpy``, ``sympy`` come from
  the parent's site-packages; a refused import raises ImportError, which libraries probing for
  optional modules handle.

Not protected against: a way around an audit hook from pure Python (a guard rail, not a
security boundary), reading files the user can read, network access. Model output in RL is
buggy rather than hostile; run untrusted code at scale inside a container.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .result import ToolResult

# Runs inside the child: install the audit hook, then exec the snippet REPL-style.
_RUNNER = r"""
import ast, os, sys
_root = os.path.realpath(os.getcwd())
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_DENY = {"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
         "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill", "ctypes.dlopen",
         "ctypes.dlsym", "ctypes.call_function", "pty.spawn", "os.setuid", "socket.connect",
         "socket.bind"}
_PATHS = {"os.remove", "os.rmdir", "os.rename", "os.truncate", "os.chmod", "os.chown",
          "os.link", "os.symlink", "os.mkdir", "os.utime", "shutil.rmtree", "shutil.move"}
_BANNED_IMPORTS = {"multiprocessing", "_multiprocessing"}
import _posixsubprocess  # sympy imports subprocess; its fork_exec raises no audit event
def _no_processes(*args, **kwargs):
    raise PermissionError("sandbox: starting processes is not allowed")
_posixsubprocess.fork_exec = _no_processes
def _inside(p):
    if isinstance(p, int):
        return True
    return os.path.realpath(os.fsdecode(p)).startswith(_root + os.sep)
def _hook(event, args):
    if event == "ctypes.dlopen" and args[0] is None:  # `import ctypes` opens the process itself
        return
    if event in _DENY:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args[0].split(".")[0] in _BANNED_IMPORTS:  # ImportError: numpy copes
        raise ImportError(f"sandbox: importing {args[0]} is not allowed")
    if event == "open" and args[2] & _WRITE and not _inside(args[0]):
        raise PermissionError(f"sandbox: writing {args[0]} is outside the sandbox")
    if event in _PATHS and not all(_inside(a) for a in args[:2] if isinstance(a, (str, bytes))):
        raise PermissionError(f"sandbox: {event} outside the sandbox")
sys.path += SITE_PATHS  # math, numpy, sympy: what TIR models import
sys.addaudithook(_hook)
del _hook
import contextlib, io, json
_ns = {"__name__": "__main__"}
for _block in json.load(open("history.json")):  # earlier calls of this trajectory, output hidden
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(_block, "<history>", "exec"), _ns)
    except BaseException:
        pass
_tree = ast.parse(open("snippet.py").read())
_last = _tree.body.pop() if _tree.body and isinstance(_tree.body[-1], ast.Expr) else None
exec(compile(_tree, "<tool>", "exec"), _ns)
if _last is not None:
    _value = eval(compile(ast.Expression(_last.value), "<tool>", "eval"), _ns)
    if _value is not None:
        print(repr(_value))
"""
_RUNNER = _RUNNER.replace("SITE_PATHS", repr([p for p in sys.path if p.endswith("-packages")]))


def _limit_child(memory_mb: int, cpu_s: int, file_bytes: int) -> None:
    """preexec_fn: runs in the child between fork and exec."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_python(
    code: str,
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_output_bytes: int = 4096,
    history: list[str] | tuple = (),
) -> ToolResult:
    """Run ``code`` in a fresh sandboxed interpreter.

    Args:
        code: Python source; a final bare expression is printed like a REPL.
        history: earlier blocks of the same trajectory, replayed first with their output
            hidden, so ``code`` sees their variables (the limits cover the replay too).
        timeout_s, memory_mb: wall-clock limit (then the process group is killed); address space.
        max_output_bytes: stdout kept for the model (head), also the file-size limit.

    Returns:
        A :class:`ToolResult`; this function never raises for anything the code does.
    """
    workdir = tempfile.mkdtemp(prefix="elpo_sandbox_")
    try:
        Path(workdir, "snippet.py").write_text(code)
        Path(workdir, "history.json").write_text(json.dumps(list(history)))
        out_path, err_path = os.path.join(workdir, ".stdout"), os.path.join(workdir, ".stderr")
        file_limit = max_output_bytes + 65536
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-u", "-c", _RUNNER],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env={
                    "PATH": "/usr/bin:/bin",
                    "LANG": "C.UTF-8",
                    "OPENBLAS_NUM_THREADS": "1",
                    "OMP_NUM_THREADS": "1",
                },
                start_new_session=True,
                preexec_fn=lambda: _limit_child(memory_mb, int(timeout_s) + 1, file_limit),
            )
            try:
                # False: wait returns the exit code
                timed_out = proc.wait(timeout=timeout_s) is None
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:  # kill the group: the timed-out code, or anything it left behind
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        with open(out_path, "rb") as f:
            head = f.read(max_output_bytes + 1)
        with open(err_path, "rb") as f:
            f.seek(max(0, os.path.getsize(err_path) - 4096))
            stderr = f.read().decode("utf-8", "replace")
        truncated = len(head) > max_output_bytes or os.path.getsize(out_path) > max_output_bytes
        stdout = head[:max_output_bytes].decode("utf-8", "replace")
        rc = proc.returncode
        if timed_out:
            error = f"TimeoutError: the code ran longer than {timeout_s:g} s"
        elif rc == -signal.SIGXFSZ:
            error = f"OutputLimitError: output exceeded {file_limit} bytes"
        elif rc == -signal.SIGXCPU:
            error = "TimeoutError: CPU time limit exceeded"
        elif rc < 0:
            error = f"CrashError: killed by {signal.Signals(-rc).name}"
        elif rc != 0:
            error = next(
                (ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()),
                f"Error: exit status {rc}",
            )
        else:
            error = None
        return ToolResult(stdout=stdout, error=error, timed_out=timed_out, truncated=truncated)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


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

    def __init__(self, max_workers: int = 2, timeout_s: float = 5.0):
        self.max_workers = max_workers
        self.timeout_s = timeout_s

    def __call__(self, codes: list[str], histories: list) -> list[ToolResult]:
        return run_many(codes, histories, self.max_workers, timeout_s=self.timeout_s)

    def __repr__(self) -> str:
        return f"python sandbox ({self.max_workers} workers, {self.timeout_s:g} s per call)"
