"""Advisory locks between processes of one machine (pytest-xdist workers, two `hil` runs): the
PKI is generated, and the host agent built, by one process at a time (`file_lock`, waits a
bounded time); a board is driven by one process at a time (`board_lock`, fails at once).

Safe on a runner shared with other users: lock files are opened without following symlinks
(O_NOFOLLOW) and must be regular files, and a directory shared through the system temp dir
(the per-user port locks) goes through `private_dir`: created 0700, and refused unless it is
a real directory of ours with mode 0700. Every lock file holds its holder's pid, for the
message of whoever has to wait or give up.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pwd
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from rig.errors import RigError

# The longest a process waits for a file_lock. The holders: PKI generation (seconds), the MAC
# scan of serial ports (esptool, up to 20 s a port) and the host agent's build
# (rig/boards/host_build.py, which waits longer itself; a from-scratch build takes well under a
# minute).
DEFAULT_WAIT = 300.0
_POLL = 0.05  # seconds between two attempts at a held file_lock


class LockError(RigError):
    """A lock directory or lock file is not safe to use (a symlink, another user's, open to
    others); the message names it and says what to do."""


class LockTimeout(RigError, TimeoutError):
    """file_lock waited its whole timeout; the message names the lock file and its holder."""


class BoardBusy(RigError):
    """Another process holds the board (or port)."""


def _owner(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def private_dir(path: Path, what: str = "lock directory",
                risk: str = "tamper with the rig's locks there") -> Path:
    """`path` as a private directory: created with mode 0700 when missing; then, whoever
    created it, refused (LockError) unless lstat shows a directory (not a symlink) owned by
    this process's uid with mode exactly 0700. Returns `path`. `what` and `risk` name the
    directory and what others could do with it in the error."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    else:
        os.chmod(path, 0o700)  # our own new directory: undo a umask that took bits away
    st = os.lstat(path)
    problem = ""
    if stat.S_ISLNK(st.st_mode):
        problem = f"is a symbolic link (to {os.readlink(path)}), not a directory"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "is not a directory"
    elif st.st_uid != os.getuid():
        problem = f"belongs to {_owner(st.st_uid)}, not to you ({_owner(os.getuid())})"
    elif stat.S_IMODE(st.st_mode) != 0o700:
        problem = (f"has mode {stat.S_IMODE(st.st_mode):04o} (owner {_owner(st.st_uid)}), "
                   "not 0700")
    if problem:
        raise LockError(
            f"{what} {path} {problem}: other users could {risk}. If it is yours, remove it "
            f"(`rm -r {path}`) and run again, the rig recreates it 0700; otherwise point "
            "TMPDIR at a directory of your own")
    return path


def _open_lock_file(path: Path) -> int:
    """A descriptor on the lock file `path` (created 0600 if missing), never through a
    symlink, never anything but a regular file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            target = os.readlink(path) if path.is_symlink() else "?"
            raise LockError(
                f"lock file {path} is a symbolic link (to {target}): refusing to follow it, "
                f"someone may be trying to make the rig write elsewhere. Remove it "
                f"(`rm {path}`) and run again") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LockError(f"lock file {path} is not a regular file: remove it and run again")
    return fd


def _holder(fd: int) -> str:
    return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"


def _claim(fd: int) -> None:
    """Record this process as the lock's holder (after taking it)."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float = DEFAULT_WAIT) -> Iterator[None]:
    """Holds an exclusive flock on `path` (created if missing) for the block, waiting up to
    `timeout` seconds for another process to release it; LockTimeout (naming the file and
    the holder's pid) when it does not."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_lock_file(path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LockTimeout(
                        f"lock {path} is still held by another process (pid {_holder(fd)}) "
                        f"after {timeout:g} s: wait for it to finish, or stop it if it hangs"
                    ) from None
                # flock has no timeout and no event to wait on: poll it (a bounded wait)
                time.sleep(min(_POLL, left))
        _claim(fd)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


_held: dict[Path, int] = {}  # locks this process holds -> how many holders inside it


def held_here(lock_dir: Path, name: str) -> bool:
    """Whether this process holds board_lock(lock_dir, name)."""
    return lock_dir / f"{name}.lock" in _held


@contextlib.contextmanager
def board_lock(lock_dir: Path, name: str, *, what: str = "") -> Iterator[None]:
    """Holds `<lock_dir>/<name>.lock` for the block; BoardBusy when another process has it
    (nested holders in this process share it). The file keeps the holder's pid for the
    message; `what` names the thing (default: board <name>)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{name}.lock"
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    fd = _open_lock_file(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BoardBusy(
                f"{what or 'board ' + name} is in use by another process (pid {_holder(fd)}; "
                f"lock {path}): two runs or two pytest-xdist workers must not share a board"
            ) from None
        _claim(fd)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
    finally:
        os.close(fd)
