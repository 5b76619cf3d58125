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
    """Another process holds the board."""


@contextlib.contextmanager
def board_lock(lock_dir: Path, board: str) -> Iterator[None]:
    """Holds `<lock_dir>/<board>.lock` for the block; BoardBusy when another process has it.
    The file keeps the holder's pid for the message."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{board}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise BoardBusy(
                f"board {board} is in use by another process (pid {holder}; lock {path}): "
                "two runs or two pytest-xdist workers must not share a board") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
