"""The sandbox's OS layers on their own, without the audit hook in front of them.

A fresh process puts up the layers of elpo_min.tools.sandbox_child, then calls libc directly
(no audit hook sees those calls) and reports what each attempt returned. What the layers must
refuse is refused with EPERM or EACCES; what model code needs (threads, writes in its own
folder, Unix sockets) still works. Each layer's checks skip, naming it, where the kernel lacks it.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = Path(__file__).resolve().parent.parent / "elpo_min" / "tools" / "sandbox_child.py"
PROBE = textwrap.dedent(
    """
    import ctypes, errno, importlib.util, json, os, socket, sys, threading
    spec = importlib.util.spec_from_file_location("child", sys.argv[1])
    child = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(child)
    inside, outside, layers, wanted = sys.argv[2], sys.argv[3], *map(json.loads, sys.argv[4:])
    os.chdir(inside)
    for layer in layers:
        child.LAYERS[layer](inside)
    libc = ctypes.CDLL(None, use_errno=True)
    results = {}

    def attempt(name, call):
        if name not in wanted:
            return
        ctypes.set_errno(0)
        try:
            value = call()
            ok = value is None or value >= 0
            results[name] = "ok" if ok else errno.errorcode[ctypes.get_errno()]
        except OSError as e:
            results[name] = errno.errorcode.get(e.errno, str(e))

    def out(name):
        return f"{outside}/{name}".encode()

    parent = os.getppid()
    attempt("write outside", lambda: libc.open(out("keep.txt"), os.O_WRONLY))
    attempt("create outside", lambda: libc.open(out("new"), os.O_WRONLY | os.O_CREAT, 0o600))
    attempt("rename outside", lambda: libc.rename(out("keep.txt"), out("x")))
    attempt("kill the parent", lambda: libc.kill(parent, 0))
    attempt("prlimit of the parent", lambda: libc.prlimit(parent, 7, None, None))
    attempt("fork", lambda: libc.fork())
    attempt("execve", lambda: libc.execve(b"/bin/true", None, None))
    attempt("fchmod", lambda: libc.fchmod(os.open(out("keep.txt"), os.O_RDONLY), 0o777))
    attempt("setxattr", lambda: libc.setxattr(out("keep.txt"), b"user.x", b"1", 1, 0))
    attempt("network socket", lambda: libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0))
    attempt("write inside", lambda: libc.open(b"mine.txt", os.O_WRONLY | os.O_CREAT, 0o600))
    attempt("unix socket", lambda: libc.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0))
    attempt("kill itself (signal 0)", lambda: libc.kill(os.getpid(), 0))
    thread = threading.Thread(target=lambda: results.__setitem__("thread", "ok"))
    thread.start()
    thread.join()
    print(json.dumps(results))
    """
)


# harmless when unconfined
SAFE = ["kill the parent", "network socket", "write inside", "unix socket"]
FILES = ["write outside", "create outside", "rename outside", "write inside"]
PROCESSES = SAFE + ["kill itself (signal 0)", "prlimit of the parent", "fork", "execve"]
PROCESSES += ["fchmod", "setxattr"]


def probe(layers: list[str], tmp_path: Path, wanted: list[str]) -> dict:
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    args = [sys.executable, "-c", PROBE, str(CHILD), str(inside), str(outside)]
    args += [json.dumps(layers), json.dumps(wanted)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (outside / "keep.txt").read_text() == "precious"
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def available():
    sys.path.insert(0, str(CHILD.parent))
    import sandbox_child

    return set(sandbox_child.available_layers())


def test_landlock_confines_writes_to_the_sandbox_folder(available, tmp_path):
    if "landlock" not in available:
        pytest.skip("this kernel has no Landlock (Linux 5.13 or later, enabled as an LSM)")
    results = probe(["no_new_privs", "landlock"], tmp_path, FILES)
    assert results["write outside"] == results["create outside"] == "EACCES"
    assert results["rename outside"] in ("EACCES", "EXDEV")
    assert results["write inside"] == "ok" and results["thread"] == "ok"


def test_seccomp_refuses_other_processes_and_process_creation(available, tmp_path):
    if "seccomp" not in available:
        pytest.skip("no seccomp filter here (Linux on x86_64 or aarch64 only)")
    results = probe(["no_new_privs", "seccomp"], tmp_path, PROCESSES)
    for refused in ("kill the parent", "prlimit of the parent", "fork", "execve", "fchmod"):
        assert results[refused] == "EPERM", (refused, results[refused])
    assert results["setxattr"] == "EPERM" and results["network socket"] == "EPERM"
    assert results["kill itself (signal 0)"] == "ok" and results["unix socket"] == "ok"
    assert results["thread"] == "ok"


def test_without_any_layer_the_probe_would_succeed(tmp_path):
    """The probe can see the difference: unconfined, the same calls go through (only those that
    harm nothing are tried)."""
    results = probe([], tmp_path, SAFE)
    assert results["kill the parent"] == "ok" and results["unix socket"] == "ok"
    assert results["network socket"] == "ok" and results["write inside"] == "ok"
