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

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from rig.locks import private_dir

PR_SET_PDEATHSIG = 1
_libc: Any = None


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """preexec_fn for subprocess.Popen: the child gets `sig` when this process dies. Linux
    delivers it when the *thread* that forked the child exits, so start long-lived children
    from the main thread (the rig does)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    prctl = _libc.prctl
    parent = os.getpid()

    def preexec() -> None:
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
    when it is a symlink, another user's, or open to others: rig.locks.private_dir)."""
    return private_dir(Path(tempfile.gettempdir()) / f"hil-{os.getuid()}",
                       what="secret-file directory",
                       risk="read or replace the rig's secret files (the broker's PSK) there")


def secret_dir(what: str) -> Path:
    """A new 0700 directory `<user_tmp>/<pid>-<what>-XXXX` for secret files; the caller removes
    it; if this process is killed first, the next run's sweep_private_dirs() does."""
    sweep_private_dirs()
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{what}-", dir=user_tmp()))


def sweep_private_dirs() -> list[Path]:
    """Remove private dirs whose owning process is gone (a killed run's); returns them."""
    removed: list[Path] = []
    base = user_tmp()
    for entry in base.iterdir():
        pid_text = entry.name.split("-", 1)[0]
        if not pid_text.isdigit() or pid_alive(int(pid_text)):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def interrupt_on_termination() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread (only from there can
    signal handlers be set; elsewhere this does nothing)."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    with contextlib.suppress(ValueError):  # not the main thread
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, handler)
