"""A wait for a rig lock (rig/local/locks.py) that another process holds ends, naming the lock and
its holder; and a holder that finishes hands the lock over. Real here: flock and a second
process holding the lock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rig.local.locks import LockTimeout, file_lock
from tests.support import ROOT, file_lock_held_elsewhere


def test_file_lock_wait_is_bounded_and_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with file_lock_held_elsewhere(path) as pid:
        t0 = time.monotonic()
        with pytest.raises(LockTimeout) as info:
            file_lock(path, timeout=0.5).__enter__()
        waited = time.monotonic() - t0
    assert 0.5 <= waited < 3
    assert str(info.value) == (f"lock {path} is still held by another process (pid {pid}) "
                               "after 0.5 s: wait for it to finish, or stop it if it hangs")
    # released by the holder's exit: taken at once, and it now names this process
    with file_lock(path, timeout=0.5):
        assert path.read_text() == f"{os.getpid()}\n"


def test_file_lock_waits_for_a_holder_that_finishes(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time, pathlib\n"
         "from rig.local.locks import file_lock\n"
         f"with file_lock(pathlib.Path({str(path)!r})):\n"
         "    print('held', flush=True); time.sleep(0.5)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        t0 = time.monotonic()
        with file_lock(path, timeout=10):
            waited = time.monotonic() - t0
            assert path.read_text() == f"{os.getpid()}\n"
    finally:
        holder.communicate(timeout=10)
    assert 0.2 < waited < 5  # it waited for the holder, then took the lock
