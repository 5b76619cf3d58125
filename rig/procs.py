"""Stopping child processes the rig started (brokers, virtual boards)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from typing import Any


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
