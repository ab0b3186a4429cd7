"""The sandbox's OS layers on their own, without the audit hook in front of them.

A fresh process puts up the layers of elpo_min.tools.sandbox_child, then calls libc directly
(no audit hook sees those calls) and reports what each attempt returned. What the layers must
refuse is refused with EPERM or EACCES; what model code needs (threads, writes in its own
folder, its own priority, a file that signals itself) still works. Each layer's checks skip,
naming it, where the kernel lacks it. Unconfined, every attempt that harms nothing succeeds:
the probe can tell the difference. The attempts on the parent set what it already has (its own
nice value, policy, CPUs, I/O priority), and every IPC object made unconfined is removed.
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
    import ctypes, errno, fcntl, importlib.util, json, os, platform, signal, socket, struct, sys
    import subprocess, threading
    spec = importlib.util.spec_from_file_location("child", sys.argv[1])
    child = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(child)
    inside, outside, layers, wanted = sys.argv[2], sys.argv[3], *map(json.loads, sys.argv[4:])
    os.chdir(inside)
    libc = ctypes.CDLL(None, use_errno=True)
    # the system call numbers of ioprio_set and ioprio_get
    IOPRIO_SET, IOPRIO_GET = {"x86_64": (251, 252), "aarch64": (30, 31)}[platform.machine()]
    parent = os.getppid()
    # what the parent has, set again below: harmless where it goes through
    nice = os.getpriority(os.PRIO_PROCESS, parent)
    policy, param = os.sched_getscheduler(parent), os.sched_getparam(parent)
    cpus, ioprio = os.sched_getaffinity(parent), libc.syscall(IOPRIO_GET, 1, parent)
    # before the layers: a process outside that reports which of SIGUSR1 and SIGUSR2 it got
    # (two signals, since a second SIGUSR1 pending with the first would merge into it), and
    # Unix sockets listening outside, at a path and at an abstract name
    counter = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys; got = set()\\n"
         "for s in (signal.SIGUSR1, signal.SIGUSR2): signal.signal(s, lambda s, f: got.add(s))\\n"
         "print('ready', flush=True); sys.stdin.read(); print(len(got))"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    counter.stdout.readline()
    at_path = socket.socket(socket.AF_UNIX)
    at_path.bind(f"{outside}/listening")
    at_path.listen()
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(f"\\0elpo-probe-{os.getpid()}")
    abstract.listen()
    for layer in layers:
        child.LAYERS[layer](inside)
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

    # IPC objects, private (key 0); one that was made is removed at once (IPC_RMID is 0)
    def shared_memory():
        made = libc.shmget(0, 4096, 0o600)
        return made if made < 0 else libc.shmctl(made, 0, None)

    def semaphores():
        made = libc.semget(0, 1, 0o600)
        return made if made < 0 else libc.semctl(made, 0, 0)

    def message_queue():
        made = libc.msgget(0, 0o600)
        return made if made < 0 else libc.msgctl(made, 0, None)

    def posix_queue():
        name = f"/elpo-probe-{os.getpid()}".encode()
        made = libc.mq_open(name, os.O_CREAT | os.O_RDWR, 0o600, None)
        return made if made < 0 else libc.mq_unlink(name)

    def signal_outside():
        libc.kill(counter.pid, signal.SIGUSR1)
        r, w = os.pipe()
        libc.fcntl(r, fcntl.F_SETOWN, counter.pid)
        libc.fcntl(r, fcntl.F_SETSIG, signal.SIGUSR2)
        libc.fcntl(r, fcntl.F_SETFL, os.O_ASYNC)
        os.write(w, b"x")

    def connect(address):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(address)

    def timer_at(pid):
        # struct sigevent: sigval, signo, notify (SIGEV_THREAD_ID = 4), then the thread id
        event = struct.pack("Qiii", 0, signal.SIGUSR1, 4, pid).ljust(64, b"\\0")
        timer = ctypes.c_void_p()
        return libc.timer_create(1, event, ctypes.byref(timer))

    def ioprio_set(pid, value):
        return libc.syscall(IOPRIO_SET, 1, pid, value)

    r, w = os.pipe()
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
    attempt("unix socket", lambda: libc.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0))
    attempt("socketpair", lambda: libc.socketpair(socket.AF_UNIX, socket.SOCK_STREAM, 0, None))
    attempt("connect to a path outside", lambda: connect(f"{outside}/listening"))
    attempt("connect to an abstract name", lambda: connect(abstract.getsockname()))
    attempt("file owner: the parent", lambda: libc.fcntl(r, fcntl.F_SETOWN, parent))
    attempt("file owner: itself", lambda: libc.fcntl(r, fcntl.F_SETOWN, os.getpid()))
    owner = ctypes.c_int(parent)
    attempt("FIOSETOWN", lambda: libc.ioctl(r, 0x8901, ctypes.byref(owner)))
    leased = os.open("leased.txt", os.O_RDONLY | os.O_CREAT, 0o600)
    attempt("lease", lambda: libc.fcntl(leased, fcntl.F_SETLEASE, fcntl.F_RDLCK))
    attempt("signal timer at the parent", lambda: timer_at(parent))
    attempt("renice the parent", lambda: os.setpriority(os.PRIO_PROCESS, parent, nice))
    attempt("renice itself", lambda: os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(0, 0)))
    attempt("the parent's policy", lambda: os.sched_setscheduler(parent, policy, param))
    attempt("the parent's CPUs", lambda: os.sched_setaffinity(parent, cpus))
    attempt("the parent's I/O priority", lambda: ioprio_set(parent, ioprio))
    attempt("System V shared memory", shared_memory)
    attempt("System V semaphores", semaphores)
    attempt("System V message queue", message_queue)
    attempt("POSIX message queue", posix_queue)
    attempt("memfd", lambda: os.memfd_create("m"))
    attempt("write inside", lambda: libc.open(b"mine.txt", os.O_WRONLY | os.O_CREAT, 0o600))
    attempt("kill itself (signal 0)", lambda: libc.kill(os.getpid(), 0))
    if "signals that reach outside" in wanted:
        signal_outside()
    counter.stdin.close()
    results["signals that reach outside"] = int(counter.stdout.read())
    thread = threading.Thread(target=lambda: results.__setitem__("thread", "ok"))
    thread.start()
    thread.join()
    print(json.dumps(results))
    """
)


# harmless when unconfined: the parent is given what it has, IPC objects are removed at once
SAFE = ["kill the parent", "network socket", "write inside", "unix socket"]
SAFE += ["connect to a path outside", "connect to an abstract name", "file owner: the parent"]
SAFE += ["renice the parent", "the parent's policy", "the parent's CPUs"]
SAFE += ["the parent's I/O priority", "System V shared memory", "System V semaphores"]
SAFE += ["System V message queue", "POSIX message queue", "memfd", "signals that reach outside"]
FILES = ["write outside", "create outside", "rename outside", "write inside"]
PROCESSES = SAFE + ["kill itself (signal 0)", "prlimit of the parent", "fork", "execve"]
PROCESSES += ["fchmod", "setxattr", "socketpair", "file owner: itself", "FIOSETOWN", "lease"]
PROCESSES += ["signal timer at the parent", "renice itself"]
# refused by the seccomp filter, wherever it is
SECCOMP_REFUSES = ["kill the parent", "prlimit of the parent", "fork", "execve", "fchmod"]
SECCOMP_REFUSES += ["setxattr", "network socket", "unix socket", "socketpair"]
SECCOMP_REFUSES += ["connect to a path outside", "connect to an abstract name"]
SECCOMP_REFUSES += ["file owner: the parent", "FIOSETOWN", "lease", "renice the parent"]
SECCOMP_REFUSES += ["the parent's policy", "the parent's CPUs", "the parent's I/O priority"]
SECCOMP_REFUSES += ["System V shared memory", "System V semaphores", "System V message queue"]
SECCOMP_REFUSES += ["POSIX message queue", "memfd"]


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
def child():
    """The child's module, imported as the sandbox runs it (a script beside its helpers)."""
    sys.path.insert(0, str(CHILD.parent))
    import sandbox_child

    return sandbox_child


@pytest.fixture(scope="module")
def available(child):
    return set(child.available_layers())


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
    for refused in SECCOMP_REFUSES:
        assert results[refused] == "EPERM", (refused, results[refused])
    assert results["signals that reach outside"] == 0
    # the kernel itself lets a timer signal only a thread of its own process
    assert results["signal timer at the parent"] == "EINVAL"
    for allowed in ("kill itself (signal 0)", "file owner: itself", "renice itself", "thread"):
        assert results[allowed] == "ok", (allowed, results[allowed])


def test_landlock_keeps_signals_and_abstract_sockets_inside(child, tmp_path):
    if child.landlock_abi() < 6:
        pytest.skip("this kernel's Landlock has no scopes (ABI 6, Linux 6.12 or later)")
    wanted = ["kill the parent", "connect to an abstract name", "signals that reach outside"]
    results = probe(["no_new_privs", "landlock"], tmp_path, wanted)
    assert results["kill the parent"] == results["connect to an abstract name"] == "EPERM"
    assert results["signals that reach outside"] == 0


def test_without_any_layer_the_probe_would_succeed(tmp_path):
    """The probe can see the difference: unconfined, the same calls go through (only those that
    harm nothing are tried)."""
    results = probe([], tmp_path, SAFE)
    # one kill and one SIGIO through a file's owner
    assert results.pop("signals that reach outside") == 2
    assert set(results.values()) == {"ok"}, results
