"""Hostile programs against the sandbox, each under a parent process of its own.

A policy in RL finds loopholes. These are the kinds a hostile user found, several variants each.
Every case runs in a fresh parent process that calls ``run_python(hostile code)`` and then
``run_python("6 * 7")``, so a parent that was killed, crippled or hung shows. After it, a decoy
directory outside the sandbox must be byte-, mode- and owner-identical, no process the case
started may still run, and no sandbox directory may be left behind. A case that only an OS layer
stops skips, naming the layer, where the kernel does not offer it.
"""

import json
import os
import signal
import subprocess
import sys
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
    import json, sys, time, types
    package = types.ModuleType("elpo_min")
    package.__path__ = [sys.argv[1] + "/elpo_min"]
    sys.modules["elpo_min"] = package
    from elpo_min.tools.python_sandbox import os_layers, run_python
    case = json.load(open(sys.argv[2]))
    start = time.perf_counter()
    first = run_python(case["code"], timeout_s=TIMEOUT, history=case["history"])
    elapsed = time.perf_counter() - start
    second = run_python("6 * 7", timeout_s=TIMEOUT)
    print(json.dumps({"first": vars(first), "elapsed": elapsed, "second": vars(second),
                      "layers": os_layers()}))
    """
).replace("TIMEOUT", str(TIMEOUT))

# (kind, name, code, the OS layer that alone stops it, history); {decoy} is the decoy folder
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
# replay: output of earlier blocks stays hidden, however it was written
REPLAY = [
    ("replay", "os.write to fd 1", "print('now')", ["import os; os.write(1, b'SECRET')"]),
    ("replay", "stdout buffer", "print('now')", ["import sys; sys.stdout.buffer.write(b'SECRET')"]),
    ("replay", "fd 2", "print('now')", ["import os; os.write(2, b'SECRET')"]),
    ("replay", "sys.__stdout__", "print('now')", ["import sys; sys.__stdout__.write('SECRET')"]),
]
ALL = [(*case, []) for case in CASES] + [
    (kind, name, code, None, h) for kind, name, code, h in REPLAY
]


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


@pytest.fixture(scope="module")
def layers():
    from elpo_min.tools.python_sandbox import os_layers

    return set(os_layers())


@pytest.mark.parametrize(
    "kind, name, code, needs, history", ALL, ids=[f"{c[0]}: {c[1]}" for c in ALL]
)
def test_hostile_code_leaves_the_caller_and_the_world_intact(
    kind, name, code, needs, history, layers, tmp_path
):
    if needs and needs not in layers:
        pytest.skip(f"only the {needs} layer stops this, and this kernel does not offer it")
    decoy = tmp_path / "decoy"
    (decoy / "sub").mkdir(parents=True)
    (decoy / "keep.txt").write_text("precious")
    (decoy / "sub" / "deep.txt").write_text("also precious")
    before = snapshot(decoy)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"code": code.replace("{decoy}", str(decoy)), "history": history}))
    env = {**os.environ, "TMPDIR": str(scratch)}
    done = subprocess.run(
        [sys.executable, "-c", PARENT, str(ROOT), str(case)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 0, f"the caller died ({done.returncode}): {done.stderr[-1500:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["elapsed"] < TIMEOUT + SLACK, f"run_python took {report['elapsed']:.1f} s"
    assert report["second"]["stdout"] == "42\n" and report["second"]["error"] is None
    assert snapshot(decoy) == before, "something outside the sandbox changed"
    assert not list(scratch.iterdir()), "a sandbox directory was left behind"
    leftovers = marked_processes()
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert not leftovers, "a process the case started outlived it"
    # a case asserts what a successful attack would see ('attached', 'opened', ...)
    assert "AssertionError" not in (report["first"]["error"] or ""), report["first"]["error"]
    if kind == "replay":
        assert "SECRET" not in report["first"]["stdout"] + (report["first"]["error"] or "")
        assert report["first"]["stdout"] == "now\n"
