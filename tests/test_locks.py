"""Locks on a runner shared with other users (rig/locks.py): the per-user port-lock directory in
the system temp dir is private or refused, lock files are never followed through a symlink, and
a wait for a held lock ends, naming the lock and its holder.

Real here: directories, symlinks, flock and a second process holding the lock. A directory
another user created cannot be made without root; a wrong mode and a symlink stand for it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.boards.ports import lock_dir, port_lock
from rig.locks import LockError, LockTimeout, board_lock, file_lock, private_dir
from tests.support import ROOT


@pytest.fixture
def tmpdir_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temp dir, as rig.boards.ports sees it, is tmp_path (for this test)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_port_lock_dir_is_created_private(tmpdir_is: Path) -> None:
    old = os.umask(0o077 | 0o700)  # a umask that would leave the owner nothing
    try:
        path = lock_dir()
    finally:
        os.umask(old)
    assert path == tmpdir_is / f"hil-port-locks-{os.getuid()}"
    st = path.lstat()
    assert st.st_mode & 0o7777 == 0o700 and st.st_uid == os.getuid()
    with port_lock("/dev/ttyUSB-test"):
        lock = path / "dev_ttyUSB-test.lock"
        assert lock.read_text() == f"{os.getpid()}\n"
        assert lock.stat().st_mode & 0o777 == 0o600


def test_port_lock_dir_open_to_others_is_refused(tmpdir_is: Path) -> None:
    path = tmpdir_is / f"hil-port-locks-{os.getuid()}"
    path.mkdir()
    path.chmod(0o777)  # as if created by someone else for us, or by an old umask
    with pytest.raises(LockError) as info:
        port_lock("/dev/ttyUSB-test").__enter__()
    msg = str(info.value)
    assert f"lock directory {path} has mode 0777" in msg
    assert f"uid {os.getuid()}" in msg  # its owner
    assert f"`rm -r {path}`" in msg and "TMPDIR" in msg  # what to do
    assert not any(path.iterdir())  # nothing was written there


def test_port_lock_dir_that_is_a_symlink_is_refused(tmpdir_is: Path) -> None:
    elsewhere = tmpdir_is / "someone-elses"
    elsewhere.mkdir(mode=0o700)
    path = tmpdir_is / f"hil-port-locks-{os.getuid()}"
    path.symlink_to(elsewhere)
    with pytest.raises(LockError) as info:
        lock_dir()
    assert f"lock directory {path} is a symbolic link (to {elsewhere})" in str(info.value)
    assert f"`rm -r {path}`" in str(info.value)
    assert not any(elsewhere.iterdir())


def test_private_dir_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(LockError, match="is not a directory"):
        private_dir(tmp_path / "f")


def test_symlinked_lock_file_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    locks = private_dir(tmp_path / "locks")
    (locks / "virtual-0.lock").symlink_to(victim)
    with pytest.raises(LockError) as info:
        board_lock(locks, "virtual-0").__enter__()
    assert (f"lock file {locks}/virtual-0.lock is a symbolic link (to {victim}): refusing to "
            "follow it") in str(info.value)
    (locks / ".build.lock").symlink_to(victim)
    with pytest.raises(LockError, match="is a symbolic link"):
        file_lock(locks / ".build.lock").__enter__()
    assert victim.read_text() == "precious\n"  # neither truncated nor overwritten with a pid


@contextlib.contextmanager
def file_lock_held_elsewhere(path: Path) -> Iterator[int]:
    """Another process holds rig.locks.file_lock(path) for the block; yields its pid."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, pathlib\n"
         "from rig.locks import file_lock\n"
         f"with file_lock(pathlib.Path({str(path)!r})):\n"
         "    print('held', flush=True); sys.stdin.read()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        holder.communicate("", timeout=10)


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
         "from rig.locks import file_lock\n"
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
