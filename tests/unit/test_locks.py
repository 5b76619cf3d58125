"""Locks on a runner shared with other users (rig/local/locks.py): the per-user port-lock
directory in the system temp dir is private or refused, and lock files are never followed
through a symlink. (A wait for a lock another process holds:
tests/integration/test_locks_held.py.)

Real here: directories, symlinks and flock, in this process. A directory another user created
cannot be made without root; a wrong mode and a symlink stand for it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from rig.boards.ports import lock_dir, port_lock
from rig.local.locks import LockError, board_lock, file_lock, private_dir


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
