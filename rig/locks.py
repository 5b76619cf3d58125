"""Advisory locks between processes of one machine (pytest-xdist workers, two `hil` runs): the
PKI is generated, and the host agent built, by one process at a time (`file_lock`, waits); a
board is driven by one process at a time (`board_lock`, fails at once)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Holds an exclusive flock on `path` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class BoardBusy(Exception):
    """Another process holds the board (or port)."""


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
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise BoardBusy(
                f"{what or 'board ' + name} is in use by another process (pid {holder}; lock "
                f"{path}): two runs or two pytest-xdist workers must not share a board"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
    finally:
        os.close(fd)
