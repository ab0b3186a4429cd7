"""Hostile programs against the sandbox, each under a parent process of its own.

A policy in RL finds loopholes. These are the kinds a hostile user found, several variants each.
Every case runs in a fresh parent process, in a session of its own, that calls
``run_python(hostile code)`` and then ``run_python("6 * 7")``, so a parent that was killed,
crippled or hung shows. After it, a decoy directory outside the sandbox must be byte-, mode- and
owner-identical, the parent's priority, scheduling policy, CPUs and I/O priority unchanged, no
byte may have reached the Unix sockets it listens on, no IPC object the case named may exist, no
process the case started may still run, and no sandbox directory may be left behind. Some
parents drop their capabilities first, as an ordinary user's trainer runs: the kernel then lets
a process of the same user change their priority. A case that only an OS layer stops skips,
naming the layer, where the kernel does not offer it.
"""

import ctypes
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 2.0
SLACK = 1.5
MARKER = "elpo-hostile-marker"
# The parent imports the sandbox alone: no torch, so a case costs a fraction of a second.
PARENT = textwrap.dedent(
    """
    import ctypes, json, os, platform, socket, struct, sys, time, types
    package = types.ModuleType("elpo_min")
    package.__path__ = [sys.argv[1] + "/elpo_min"]
    sys.modules["elpo_min"] = package
    from elpo_min.tools.python_sandbox import os_layers, run_python
    case = json.load(open(sys.argv[2]))
    libc = ctypes.CDLL(None, use_errno=True)
    if case["drop_capabilities"]:
        # empty effective, permitted and inheritable sets (capability header version 3)
        assert libc.capset(struct.pack("II", 0x20080522, 0), bytes(24)) == 0
    IOPRIO_GET = {"x86_64": 252, "aarch64": 31}.get(platform.machine())

    def scheduling():
        ioprio = libc.syscall(IOPRIO_GET, 1, 0) if IOPRIO_GET else None
        policy, cpus = os.sched_getscheduler(0), sorted(os.sched_getaffinity(0))
        return [os.getpriority(os.PRIO_PROCESS, 0), policy, cpus, ioprio]

    # listening outside the sandbox: a stream socket at a path and at an abstract name, and a
    # datagram socket at a path
    listeners = []
    for kind, address in ((socket.SOCK_STREAM, case["sockets"] + "/stream"),
                          (socket.SOCK_STREAM, case["abstract"]),
                          (socket.SOCK_DGRAM, case["sockets"] + "/datagram")):
        listener = socket.socket(socket.AF_UNIX, kind)
        listener.bind(address)
        if kind == socket.SOCK_STREAM:
            listener.listen()
        listener.setblocking(False)
        listeners.append(listener)
    before = scheduling()
    start = time.perf_counter()
    first = run_python(case["code"], timeout_s=TIMEOUT, history=case["history"])
    elapsed = time.perf_counter() - start
    reached = 0
    for listener in listeners:
        try:
            listener.accept() if listener.type == socket.SOCK_STREAM else listener.recv(64)
            reached += 1
        except BlockingIOError:
            pass
    second = run_python("6 * 7", timeout_s=TIMEOUT)
    print(json.dumps({"first": vars(first), "elapsed": elapsed, "second": vars(second),
                      "layers": os_layers(), "scheduling": [before, scheduling()],
                      "reached": reached}))
    """
).replace("TIMEOUT", str(TIMEOUT))
# Turns the audit hook off from pure Python, to show what the OS layers stop on their own.
HOOK_OFF = (
    "import gc\n"
    "for hook in [o for o in gc.get_objects() if getattr(o, '__name__', '') == '_hook']:\n"
    "    hook.__code__ = (lambda event, args: None).__code__\n"
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    # proof that it is off (a renamed hook would otherwise leave every such case to the hook)
    "try:\n    libc.getpid()\n"
    "except PermissionError:\n    raise AssertionError('the audit hook is still on')\n"
)

# (kind, name, code, the OS layer that alone stops it); {decoy} is the decoy folder
CASES = [
    # signals, pidfd, prlimit and ptrace towards the caller
    ("signals", "kill", "import os; os.kill(os.getppid(), 9)", None),
    ("signals", "kill every process", "import os; os.kill(-1, 9)", None),
    ("signals", "killpg", "import os; os.killpg(os.getpgid(os.getppid()), 9)", None),
    (
        "signals",
        "pidfd",
        "import os, signal; signal.pidfd_send_signal(os.pidfd_open(os.getppid()), 9)",
        "seccomp",
    ),
    ("signals", "libc kill", "import ctypes, os; ctypes.CDLL(None).kill(os.getppid(), 9)", None),
    (
        "signals",
        "prlimit",
        "import os, resource; resource.prlimit(os.getppid(), resource.RLIMIT_NOFILE, (3, 3))",
        "seccomp",
    ),
    (
        "signals",
        "ptrace",
        "import _ctypes, ctypes, os\n"
        "f = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long,"
        " ctypes.c_long)(_ctypes.dlsym(_ctypes.dlopen(None), 'ptrace'))\n"
        "assert f(16, os.getppid(), 0, 0) != 0, 'attached'",
        None,
    ),
    # process creation
    ("processes", "fork", "import os; os.fork()", None),
    ("processes", "system", f"import os; os.system('sleep 30 # {MARKER}')", None),
    (
        "processes",
        "re-imported fork_exec",
        "import os, sys, subprocess\nsys.modules.pop('_posixsubprocess')\n"
        "import _posixsubprocess\nr, w = os.pipe()\n"
        f"args = [b'/bin/sh', b'-c', b'sleep 30 # {MARKER}']\n"
        "_posixsubprocess.fork_exec(args, [args[0]], False, (), None, None, -1, -1, -1, -1, -1, -1,"
        " r, w, True, True, -1, None, None, None, -1, None, False)",
        None,
    ),
    (
        "processes",
        "posix_spawn",
        f"import posix; posix.posix_spawn('/bin/sleep', ['sleep', '30', '{MARKER}'], {{}})",
        None,
    ),
    ("processes", "exec", "import os; os.execv('/bin/sh', ['sh', '-c', 'touch {decoy}/x'])", None),
    # foreign calls
    (
        "foreign calls",
        "dlsym on the process handle",
        "import _ctypes, ctypes\naddr = _ctypes.dlsym(_ctypes.dlopen(None), 'system')\n"
        "ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p)(addr)(b'touch {decoy}/pwned')",
        None,
    ),
    (
        "foreign calls",
        "libc open for writing",
        "import ctypes; libc = ctypes.CDLL('libc.so.6')\n"
        "assert libc.open(b'{decoy}/keep.txt', 0o1101) < 0, 'opened'",
        None,
    ),
    # writes outside through a directory descriptor (the audit hook sees a relative path)
    (
        "dir_fd",
        "open with dir_fd",
        "import os; d = os.open('{decoy}', os.O_RDONLY)\n"
        "os.write(os.open('keep.txt', os.O_WRONLY | os.O_TRUNC, dir_fd=d), b'x')",
        "landlock",
    ),
    (
        "dir_fd",
        "create with dir_fd",
        "import os; d = os.open('{decoy}', os.O_RDONLY)\n"
        "os.close(os.open('new.txt', os.O_WRONLY | os.O_CREAT, dir_fd=d))",
        "landlock",
    ),
    (
        "dir_fd",
        "rename with dir_fd",
        "import os; d = os.open('{decoy}', os.O_RDONLY)\n"
        "os.rename('keep.txt', 'stolen.txt', src_dir_fd=d)",
        None,
    ),
    (
        "dir_fd",
        "unlink with dir_fd",
        "import os; d = os.open('{decoy}', os.O_RDONLY); os.unlink('keep.txt', dir_fd=d)",
        None,
    ),
    (
        "dir_fd",
        "rmdir with dir_fd",
        "import os; d = os.open('{decoy}', os.O_RDONLY); os.rmdir('sub', dir_fd=d)",
        None,
    ),
    (
        "dir_fd",
        "hard link into the sandbox",
        "import os; d = os.open('{decoy}', os.O_RDONLY)\n"
        "os.link('keep.txt', 'mine.txt', src_dir_fd=d); open('mine.txt', 'w').write('x')",
        None,
    ),
    (
        "dir_fd",
        "fchmod",
        "import os; os.fchmod(os.open('{decoy}/keep.txt', os.O_RDONLY), 0o777)",
        None,
    ),
    (
        "dir_fd",
        "fchown",
        "import os; os.fchown(os.open('{decoy}/keep.txt', os.O_RDONLY), 1234, 1234)",
        None,
    ),
    (
        "dir_fd",
        "utime",
        "import os; os.utime(os.open('{decoy}/keep.txt', os.O_RDONLY), (0, 0))",
        None,
    ),
    (
        "dir_fd",
        "libc fchmod",
        "import ctypes, os; fd = os.open('{decoy}/keep.txt', os.O_RDONLY)\n"
        "assert ctypes.CDLL(None).fchmod(fd, 0o777) != 0, 'chmodded'",
        None,
    ),
    # the same through other calls
    ("other calls", "mkfifo", "import os; os.mkfifo('{decoy}/fifo')", None),
    ("other calls", "mknod", "import os; os.mknod('{decoy}/node')", None),
    ("other calls", "setxattr", "import os; os.setxattr('{decoy}/keep.txt', 'user.x', b'1')", None),
    (
        "other calls",
        "symlink then write",
        "import os; os.symlink('{decoy}/keep.txt', 'l')\nopen('l', 'w').write('x')",
        None,
    ),
    (
        "other calls",
        "parent's memory",
        "import os; open(f'/proc/{os.getppid()}/mem', 'r+b')",
        None,
    ),
    ("other calls", "truncate", "import os; os.truncate('{decoy}/keep.txt', 0)", None),
    # hanging or crashing the caller
    ("caller", "closed stdio", "import os; os.close(1); os.close(2); print('gone')", None),
    (
        "caller",
        "stdout becomes a directory",
        "import os; os.dup2(os.open('.', os.O_RDONLY), 1); print(1)",
        None,
    ),
    ("caller", "lone surrogate", "x = '\ud800'\nprint(x)", None),
    (
        "caller",
        "ignores SIGTERM and sleeps",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)",
        None,
    ),
    ("caller", "huge stderr", "import os; os.write(2, b'x' * 10**8)", None),
    (
        "caller",
        "moves its process group",
        "import os, time\nos.setpgid(0, 0)\ntime.sleep(60)",
        None,
    ),
    ("caller", "non-UTF-8 output", "import os; os.write(1, b'\\xff\\xfe caf\\xe9')", None),
    # leaking the throwaway directory
    (
        "leak",
        "immutable file",
        "import fcntl, os, struct\nfd = os.open('f', os.O_CREAT | os.O_RDONLY)\n"
        "fcntl.ioctl(fd, 0x40086602, struct.pack('i', 0x10))",
        "capabilities",
    ),
    ("leak", "unwritable folder", "import os; os.makedirs('a/b'); os.chmod('a', 0)", None),
    (
        "leak",
        "folder created without permissions",
        "import os; os.mkdir('a', 0)\nopen('a/f', 'w')",
        None,
    ),
]
# (kind, name, code, the OS layer that alone stops it, whether the parent drops its
# capabilities). The parent listens at {sockets}/stream, {sockets}/datagram and at the
# abstract name "\0elpo-hostile-{key}"; {key} is also a System V key, and {queue} a POSIX
# queue's name, that no one else uses.
SIDE_DOORS = [
    # signals to the caller without kill: a file's owner gets SIGIO (or F_SETSIG's signal)
    (
        "signals",
        "F_SETOWN: SIGIO to the caller",
        "import fcntl, os\nr, w = os.pipe()\nfcntl.fcntl(r, fcntl.F_SETOWN, os.getppid())\n"
        "fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC)\nos.write(w, b'x')",
        None,
        False,
    ),
    (
        "signals",
        "F_SETOWN: SIGINT to the caller's process group",
        "import fcntl, os, signal\nr, w = os.pipe()\n"
        "fcntl.fcntl(r, fcntl.F_SETOWN, -os.getpgid(os.getppid()))\n"
        "fcntl.fcntl(r, fcntl.F_SETSIG, signal.SIGINT)\n"
        "fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC)\nos.write(w, b'x')",
        None,
        False,
    ),
    (
        "signals",
        "F_SETOWN_EX: SIGKILL to the caller",
        "import fcntl, os, struct\nr, w = os.pipe()\n"
        "fcntl.fcntl(r, 15, struct.pack('ii', 1, os.getppid()))\n"
        "fcntl.fcntl(r, fcntl.F_SETSIG, 9)\nfcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC)\n"
        "os.write(w, b'x')",
        None,
        False,
    ),
    (
        "signals",
        "FIOSETOWN on a socket pair",
        # _socket.socketpair raises no audit event: the hook's ioctl rule is what meets it
        # where seccomp (which refuses the pair itself) is missing
        "import _socket, fcntl, os, struct\n"
        "a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_DGRAM)\n"
        "fcntl.ioctl(a.fileno(), 0x8901, struct.pack('i', os.getppid()))\n"
        "fcntl.fcntl(a.fileno(), fcntl.F_SETFL, os.O_ASYNC)\n"
        "b.send(b'x')",
        None,
        False,
    ),
    (
        "signals",
        "F_SETOWN through libc",
        HOOK_OFF + "r, w = os.pipe()\nassert libc.fcntl(r, 8, os.getppid()) != 0, 'owner set'",
        "seccomp",
        False,
    ),
    # the caller's priority and scheduling, from a parent without capabilities
    (
        "priority",
        "renice the caller",
        "import os; os.setpriority(os.PRIO_PROCESS, os.getppid(), 19)",
        "seccomp",
        True,
    ),
    (
        "priority",
        "renice the caller's process group",
        "import os; os.setpriority(os.PRIO_PGRP, os.getpgid(os.getppid()), 19)",
        "seccomp",
        True,
    ),
    (
        "priority",
        "SCHED_IDLE for the caller",
        "import os; os.sched_setscheduler(os.getppid(), os.SCHED_IDLE, os.sched_param(0))",
        "seccomp",
        True,
    ),
    (
        "priority",
        "the caller's CPUs",
        "import os; os.sched_setaffinity(os.getppid(), [min(os.sched_getaffinity(0))])",
        "seccomp",
        True,
    ),
    (
        "priority",
        "the caller's I/O priority",
        HOOK_OFF + "import platform\n"
        "number = {'x86_64': 251, 'aarch64': 30}[platform.machine()]\n"
        "assert libc.syscall(number, 1, os.getppid(), 3 << 13) != 0, 'set to idle'",
        "seccomp",
        True,
    ),
    # state that outlives the call, and memory outside memory_mb
    (
        "ipc",
        "System V shared memory",
        HOOK_OFF + "segment = libc.shmget({key}, 1 << 20, 0o1600)\n"
        "assert segment < 0, 'a segment that outlives the call'",
        "seccomp",
        False,
    ),
    (
        "ipc",
        "System V message queue and semaphores",
        HOOK_OFF + "assert libc.msgget({key}, 0o1600) < 0, 'a message queue'\n"
        "assert libc.semget({key}, 1, 0o1600) < 0, 'a semaphore set'",
        "seccomp",
        False,
    ),
    (
        "ipc",
        "POSIX message queue",
        HOOK_OFF + "assert libc.mq_open(b'{queue}', os.O_CREAT | os.O_RDWR, 0o600, None) < 0,"
        " 'a queue'",
        "seccomp",
        False,
    ),
    (
        "ipc",
        "POSIX shared memory",
        # _posixshmem raises no audit event of its own: the hook refuses the import
        "import _posixshmem, os\n"
        "fd = _posixshmem.shm_open('/elpo-hostile-{key}', os.O_CREAT | os.O_RDWR, 0o600)\n"
        "os.ftruncate(fd, 1 << 20)\nassert False, 'shared memory that outlives the call'",
        None,
        False,
    ),
    (
        "ipc",
        "memfds beyond memory_mb",
        "import os\nheld = 0\nfor _ in range(64):\n"
        "    held += os.write(os.memfd_create('m'), b'x' * 65536)\n"
        "assert not held, f'{held} bytes outside the address space'",
        "seccomp",
        False,
    ),
    # Unix sockets outside the sandbox
    (
        "unix sockets",
        "datagram to a path",
        "import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "s.sendto(b'hello', '{sockets}/datagram')",
        None,
        False,
    ),
    (
        "unix sockets",
        "stream to a path",
        HOOK_OFF + "import socket\ns = socket.socket(socket.AF_UNIX)\n"
        "s.connect('{sockets}/stream')",
        "seccomp",
        False,
    ),
    (
        "unix sockets",
        "stream to an abstract name",
        HOOK_OFF + "import socket\ns = socket.socket(socket.AF_UNIX)\n"
        "s.connect('\\0elpo-hostile-{key}')",
        "seccomp",
        False,
    ),
    # the caller's environment (the kernel's ptrace check: no capabilities, in Landlock)
    (
        "caller",
        "reads the environment of a caller without capabilities",
        "import os\ntry:\n    seen = open(f'/proc/{os.getppid()}/environ', 'rb').read()\n"
        "except PermissionError:\n    seen = b''\nassert not seen, 'read it'",
        "landlock",
        True,
    ),
    # trees that a recursive cleanup cannot remove; odd modes with a caller without capabilities
    (
        "leak",
        "1,500 nested folders, deeper than PATH_MAX",
        "import os\nos.mkdir('t')\nfor _ in range(1500):\n    os.mkdir('n')\n"
        "    os.rename('t', 'n/' + 'd' * 9)\n    os.rename('n', 't')",
        None,
        False,
    ),
    (
        "leak",
        "odd modes and links, caller without capabilities",
        "import os\nos.mkdir('unlistable', 0o300)\nopen('unlistable/f', 'w').close()\n"
        "os.mkdir('unlistable/inner', 0o300)\nopen('unlistable/inner/g', 'w').close()\n"
        "os.mkdir('no-permissions', 0)\nos.mkdir('search-only', 0o100)\n"
        "os.close(os.open('no-permissions-file', os.O_CREAT | os.O_WRONLY, 0))\n"
        "os.symlink('{decoy}', 'decoy-link')\nos.symlink('loop', 'loop')\n"
        "os.symlink('missing', 'dangling')\nos.mkfifo('fifo')",
        None,
        True,
    ),
]
# replay: output of earlier blocks stays hidden, however it was written
REPLAY = [
    ("replay", "os.write to fd 1", "print('now')", ["import os; os.write(1, b'SECRET')"]),
    ("replay", "stdout buffer", "print('now')", ["import sys; sys.stdout.buffer.write(b'SECRET')"]),
    ("replay", "fd 2", "print('now')", ["import os; os.write(2, b'SECRET')"]),
    ("replay", "sys.__stdout__", "print('now')", ["import sys; sys.__stdout__.write('SECRET')"]),
]
# (kind, name, code, needs, history, whether the parent drops its capabilities)
ALL = [(*case, [], False) for case in CASES]
ALL += [(kind, name, code, needs, [], drop) for kind, name, code, needs, drop in SIDE_DOORS]
ALL += [(kind, name, code, None, h, False) for kind, name, code, h in REPLAY]


def snapshot(folder: Path) -> dict:
    """Every entry below ``folder``: its bytes (files), mode, owner and group."""
    state = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        state[str(path.relative_to(folder))] = (content, info.st_mode, info.st_uid, info.st_gid)
    return state


def marked_processes() -> list[int]:
    """Processes whose command line carries this suite's marker."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and MARKER.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return [pid for pid in found if pid != os.getpid()]


def leftover_ipc(key: int, queue: str) -> list[str]:
    """The System V objects with ``key``, the POSIX queue ``queue`` and the POSIX shared memory
    named after ``key`` that exist; each found is removed, so a failing case leaves nothing
    behind either."""
    libc = ctypes.CDLL(None, use_errno=True)
    IPC_RMID = 0
    remove = {
        "shm": lambda i: libc.shmctl(i, IPC_RMID, None),
        "msg": lambda i: libc.msgctl(i, IPC_RMID, None),
        "sem": lambda i: libc.semctl(i, 0, IPC_RMID),
    }
    found = []
    for kind, remover in remove.items():
        table = Path("/proc/sysvipc") / kind
        rows = table.read_text().splitlines()[1:] if table.exists() else []
        for row in rows:
            row_key, identifier = (int(field) for field in row.split()[:2])
            if row_key == key:
                remover(identifier)
                found.append(f"System V {kind} {identifier}")
    if libc.mq_unlink(queue.encode()) == 0:
        found.append(f"POSIX message queue {queue}")
    shared = Path(f"/dev/shm/elpo-hostile-{key}")
    if shared.exists():
        shared.unlink()
        found.append(f"POSIX shared memory {shared}")
    return found


@pytest.fixture
def scratch(tmp_path):
    """The parent's TMPDIR, where its sandboxes live: on a tmpfs where there is one, since on a
    disk mounted with online discard each rmdir of a 1,500-level tree costs milliseconds."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else tmp_path, prefix="elpo-hostile-"))
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture(scope="module")
def layers():
    from elpo_min.tools.python_sandbox import os_layers

    return set(os_layers())


@pytest.mark.parametrize(
    "kind, name, code, needs, history, drop_capabilities", ALL, ids=[f"{c[0]}: {c[1]}" for c in ALL]
)
def test_hostile_code_leaves_the_caller_and_the_world_intact(
    kind, name, code, needs, history, drop_capabilities, layers, tmp_path, scratch
):
    if needs and needs not in layers:
        pytest.skip(f"only the {needs} layer stops this, and this kernel does not offer it")
    decoy = tmp_path / "decoy"
    (decoy / "sub").mkdir(parents=True)
    (decoy / "keep.txt").write_text("precious")
    (decoy / "sub" / "deep.txt").write_text("also precious")
    before = snapshot(decoy)
    sockets = tmp_path / "s"
    sockets.mkdir()
    key = random.randrange(1, 2**31)
    queue = f"/elpo-hostile-{key}"
    names = {"decoy": str(decoy), "sockets": str(sockets), "key": str(key), "queue": queue}
    for placeholder, value in names.items():
        code = code.replace("{" + placeholder + "}", value)
    case = tmp_path / "case.json"
    case.write_text(
        json.dumps(
            {
                "code": code,
                "history": history,
                "drop_capabilities": drop_capabilities,
                "sockets": str(sockets),
                "abstract": f"\0elpo-hostile-{key}",
            }
        )
    )
    env = {**os.environ, "TMPDIR": str(scratch)}
    # a session of its own: a signal aimed at the parent's process group stays in it
    done = subprocess.run(
        [sys.executable, "-c", PARENT, str(ROOT), str(case)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        start_new_session=True,
    )
    leftovers = leftover_ipc(key, queue)
    left_behind = list(scratch.iterdir())
    # removed whatever the verdict: a tree the sandbox left would break pytest's own cleanup
    subprocess.run(["rm", "-rf", *map(str, left_behind)], check=False)
    assert done.returncode == 0, f"the caller died ({done.returncode}): {done.stderr[-1500:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["elapsed"] < TIMEOUT + SLACK, f"run_python took {report['elapsed']:.1f} s"
    assert report["second"]["stdout"] == "42\n" and report["second"]["error"] is None
    assert snapshot(decoy) == before, "something outside the sandbox changed"
    assert not left_behind, "a sandbox directory was left behind"
    assert not leftovers, f"outlived the call: {leftovers}"
    scheduling_before, scheduling_after = report["scheduling"]
    assert scheduling_after == scheduling_before, "the caller's priority or scheduling changed"
    assert report["reached"] == 0, "a Unix socket outside the sandbox was reached"
    processes = marked_processes()
    for pid in processes:
        os.kill(pid, signal.SIGKILL)
    assert not processes, "a process the case started outlived it"
    # a case asserts what a successful attack would see ('attached', 'opened', ...)
    error = report["first"]["error"] or ""
    assert "AssertionError" not in error and "SandboxError" not in error, error
    if kind == "replay":
        assert "SECRET" not in report["first"]["stdout"] + (report["first"]["error"] or "")
        assert report["first"]["stdout"] == "now\n"
