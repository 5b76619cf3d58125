"""Child processes the rig starts (brokers, virtual boards, the pytest run of `hil run`): they
die with their parent, stop cleanly, and what a killed run left behind is swept at the next start.

- `die_with_parent()`: a preexec_fn that asks Linux to signal the child when the process that
  started it dies (prctl PR_SET_PDEATHSIG), so a kill -9 of the rig never leaves a Mosquitto or
  a hil-agent running.
- `secret_dir()`: a per-process private directory (0700) under the user's own rig directory in
  the system temp dir, for files holding secrets (the broker's PSK file). Its name carries the
  owner's pid; `sweep_private_dirs()` removes those whose owner is dead, never a live one's.
- `interrupt_on_termination()`: SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C, so
  `finally` blocks and pytest's fixture tear-downs run on every polite way of stopping us.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from rig.boards.locks import private_dir

PR_SET_PDEATHSIG = 1
_libc: Any = None


def die_with_parent(sig: int = signal.SIGKILL, *,
                    interruptible: bool = False) -> Callable[[], None]:
    """preexec_fn for subprocess.Popen: the child gets `sig` when this process dies. Linux
    delivers it when the *thread* that forked the child exits, so start long-lived children
    from the main thread (the rig does). `interruptible`: the child starts with SIGINT at its
    default even if we were started with it ignored (a background job of a script), so that
    the SIGINT we forward to it stops it."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    prctl = _libc.prctl
    parent = os.getpid()

    def preexec() -> None:
        if interruptible:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


def terminate(proc: subprocess.Popen[Any], timeout: float) -> int:
    """SIGTERM, repeated every 100 ms, then SIGKILL to its process group after `timeout`;
    always reaps it and returns its exit code. The repeat matters for Mosquitto, which can miss
    a SIGTERM that lands between its run-flag check and epoll_wait (it then sleeps until its
    next timer). Children must be started with start_new_session=True."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    return proc.returncode


def exit_description(code: int) -> str:
    """'signal 9' / 'code 1' for a Popen return code."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "?"
        return f"signal {-code} ({name})"
    return f"code {code}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    return True


def user_tmp() -> Path:
    """`<system temp>/hil-<uid>`: the user's private rig directory (created 0700; refused
    when it is a symlink, another user's, or open to others: rig.boards.locks.private_dir)."""
    return private_dir(Path(tempfile.gettempdir()) / f"hil-{os.getuid()}",
                       what="secret-file directory",
                       risk="read or replace the rig's secret files (the broker's PSK) there")


def secret_dir(what: str) -> Path:
    """A new 0700 directory `<user_tmp>/<pid>-<what>-XXXX` for secret files. This process holds
    an exclusive flock on its `.owner` file until remove_secret_dir(); if the process is
    killed first, the lock goes with it and the next sweep_private_dirs() removes the
    directory. The lock, not the pid, decides: a pid reused since, or a live run in another
    PID namespace sharing /tmp, is never mistaken."""
    sweep_private_dirs()
    if not _owned:
        atexit.register(_remove_owned)  # whatever an interrupted owner did not remove
    path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{what}-", dir=user_tmp()))
    _owned[path] = -1
    fd = os.open(path / OWNER_FILE, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                 os.O_CLOEXEC, 0o600)
    _owned[path] = fd
    fcntl.flock(fd, fcntl.LOCK_EX)
    return path


def _remove_owned() -> None:
    for path in list(_owned):
        remove_secret_dir(path)


def remove_secret_dir(path: Path) -> None:
    """Remove a secret_dir() and give up its lock."""
    shutil.rmtree(path, ignore_errors=True)
    fd = _owned.pop(path, None)
    if fd is not None and fd >= 0:
        os.close(fd)


OWNER_FILE = ".owner"
_owned: dict[Path, int] = {}
_UNLOCKED_GRACE_S = 60.0  # a dir without its lock yet may be one being created right now


def _abandoned(entry: Path) -> bool:
    """Whether a secret dir's owner is gone: nobody holds its .owner lock (or, without one,
    its pid is dead and it is old enough not to be in the middle of its creation)."""
    if entry in _owned:
        return False
    try:
        fd = os.open(entry / OWNER_FILE, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        pid_text = entry.name.split("-", 1)[0]
        try:
            age = time.time() - entry.lstat().st_mtime
        except FileNotFoundError:
            return False
        return (pid_text.isdigit() and not pid_alive(int(pid_text)) and
                age > _UNLOCKED_GRACE_S)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the lock we may have taken
    return True


def sweep_private_dirs() -> list[Path]:
    """Remove what processes that are gone (a killed run's) left in user_tmp(): their secret
    dirs, and the helper processes they noted (`note_children`) that still run; returns the
    entries removed."""
    removed: list[Path] = []
    base = user_tmp()
    for entry in base.iterdir():
        pid_text = entry.name.split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        if entry.is_dir() and not entry.is_symlink():
            if _abandoned(entry):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
            continue
        if pid_alive(int(pid_text)):
            continue
        if entry.name.endswith(CHILDREN_SUFFIX) and entry.is_file():
            _kill_noted(entry)
        entry.unlink(missing_ok=True)  # a note, or a half-written one (.tmp)
        removed.append(entry)
    return removed


CHILDREN_SUFFIX = "-children"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' when gone): with the pid, it
    names one process, never a later one that reuses the pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if Path(f"/proc/{pid}").stat().st_uid != os.getuid():
            return ""
    except OSError:
        return ""
    return fields[19]


def note_children(pids: Iterable[int]) -> None:
    """Note helper processes that do not die with us by themselves (pytest-embedded's spawned
    log listener, multiprocessing's resource tracker): if this process is killed, the next
    run's sweep_private_dirs() stops them. The note goes when this process ends normally.
    Notes add up: every call writes all the noted processes still alive."""
    _noted_pids.update(pids)
    lines = [f"{pid} {start}" for pid in sorted(_noted_pids) if (start := _start_time(pid))]
    path = user_tmp() / f"{os.getpid()}{CHILDREN_SUFFIX}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    tmp.replace(path)
    if not _noted:
        _noted.append(path)
        atexit.register(path.unlink, missing_ok=True)


_noted: list[Path] = []
_noted_pids: set[int] = set()


def _kill_noted(note: Path) -> None:
    for line in note.read_text().splitlines():
        pid_text, _, start = line.partition(" ")
        if pid_text.isdigit() and start and _start_time(int(pid_text)) == start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid_text), signal.SIGKILL)


def interrupt_on_termination() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread (only from there can
    signal handlers be set; elsewhere this does nothing). A signal this process was started
    with ignored (`nohup` ignores SIGHUP) stays ignored."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    with contextlib.suppress(ValueError):  # not the main thread
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) is not signal.SIG_IGN:
                signal.signal(sig, handler)
