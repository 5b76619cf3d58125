"""Child processes the rig starts (brokers, virtual boards, tcpdump, the pytest run of `hil run`):
they die with their parent and stop cleanly; a signal that asks the rig to stop becomes the
KeyboardInterrupt its tear-downs already handle.

- `die_with_parent()`: a preexec_fn that asks Linux to signal the child when the process that
  started it dies (prctl PR_SET_PDEATHSIG), so a kill -9 of the rig never leaves a Mosquitto or
  a hil-agent running.
- `terminate()`: SIGTERM until it ends, SIGKILL after a timeout; `exit_description()` names
  how it ended.
- `interrupt_on_termination()`: SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C, so
  `finally` blocks and pytest's fixture tear-downs run on every polite way of stopping us.

Helper processes that do not die with us by themselves are noted and swept by user_tmp.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

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


def terminate(proc: subprocess.Popen[Any], timeout: float,
              wake: Callable[[], None] | None = None) -> int:
    """SIGTERM, repeated every 100 ms, then SIGKILL to its process group after `timeout`;
    always reaps it and returns its exit code. The repeat matters for Mosquitto, which can miss
    a SIGTERM that lands between its run-flag check and epoll_wait (it then sleeps until its
    next timer). `wake`, called after each SIGTERM, makes the child look at it now rather
    than at its next timer (Mosquitto: a connection to its listener ends its epoll_wait).
    Children must be started with start_new_session=True."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        if wake is not None:
            wake()
        wait_exit(proc, min(0.1, max(0.0, deadline - time.monotonic())))
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    return proc.returncode


def wait_exit(proc: subprocess.Popen[Any], timeout: float) -> bool:
    """Wait up to `timeout` s for `proc` to end; True when it has (and is reaped). Woken by
    its exit (a pidfd), not by polling: Popen.wait(timeout) sleeps in steps of up to 50 ms."""
    if proc.poll() is not None:
        return True
    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:  # a kernel without pidfds (before 5.3): Popen's own polling
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        return proc.poll() is not None
    try:
        poller = select.poll()  # not select(): a descriptor past 1023 is fine
        poller.register(fd, select.POLLIN)
        poller.poll(max(0.0, timeout) * 1000)  # readable once the process has ended
    finally:
        os.close(fd)
    return proc.poll() is not None


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


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' when gone, or another user's):
    with the pid, it names one process, never a later one that reuses the pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if Path(f"/proc/{pid}").stat().st_uid != os.getuid():
            return ""
    except OSError:
        return ""
    return fields[19]


_deferring = 0  # > 0: inside deferred_interrupts(), a termination waits for its end
_deferred: list[str] = []


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Statements a SIGTERM, SIGHUP or Ctrl-C must not cut in two (a private directory made and
    not yet recorded for its removal): the KeyboardInterrupt interrupt_on_termination makes of
    a termination, or Python's own for a SIGINT (in the main thread, while SIGINT has Python's
    handler), is raised when the block ends."""
    global _deferring
    _deferring += 1
    sigint = _defer_sigint() if _deferring == 1 else None
    try:
        yield
    finally:
        _deferring -= 1
        if sigint is not None:
            signal.signal(signal.SIGINT, sigint)
        if not _deferring and _deferred:
            why = _deferred[0]
            _deferred.clear()
            raise KeyboardInterrupt(why)


def _defer_sigint() -> Any:
    """SIGINT recorded in _deferred rather than raised; the handler it had, to give back
    (None: left alone, as in a thread or with SIGINT ignored)."""
    def record(signum: int, frame: FrameType | None) -> None:
        _deferred.append("signal SIGINT")

    try:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None
        return signal.signal(signal.SIGINT, record)
    except ValueError:  # not the main thread
        return None


def interrupt_on_termination() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread (only from there can
    signal handlers be set; elsewhere this does nothing); inside deferred_interrupts() at its
    end. A signal this process was started with ignored (`nohup` ignores SIGHUP) stays
    ignored."""
    def handler(signum: int, frame: FrameType | None) -> None:
        why = f"signal {signal.Signals(signum).name}"
        if _deferring:
            _deferred.append(why)
            return
        raise KeyboardInterrupt(why)

    with contextlib.suppress(ValueError):  # not the main thread
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) is not signal.SIG_IGN:
                signal.signal(sig, handler)
