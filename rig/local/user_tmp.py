"""The user's private rig directory in the system temp dir (`<tmp>/hil-<uid>`, 0700), and what
processes keep there for as long as they live:

- `secret_dir()`: a per-process private directory (0700) for files holding secrets (the
  broker's PSK file, mosquitto_pub's options, a capture's key log), each written 0600 from the
  start (`write_secret`). Its name carries the owner's pid; an flock on its `.owner` file says
  whether the owner lives.
- `note_children()`: the helper processes a process started that do not die with it.
- `sweep_private_dirs()`: at the next start, removes the secret dirs whose owner is gone and
  stops the noted helpers of a process that is gone; never a live one's.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from rig.local.children import deferred_interrupts, pid_alive, start_time
from rig.local.locks import private_dir

OWNER_FILE = ".owner"
CHILDREN_SUFFIX = "-children"
_owned: dict[Path, int] = {}
_UNLOCKED_GRACE_S = 60.0  # a dir without its lock yet may be one being created right now


def user_tmp() -> Path:
    """`<system temp>/hil-<uid>`: the user's private rig directory (created 0700; refused
    when it is a symlink, another user's, or open to others: rig.local.locks.private_dir)."""
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
    with deferred_interrupts():  # made and recorded (atexit removes what is recorded) at once
        path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{what}-", dir=user_tmp()))
        _owned[path] = -1
    # locked before it has its name: another process's sweep never finds an unlocked .owner
    # of a live directory (it did, between open and flock, on a loaded runner: a cell's
    # capture directory was removed under it)
    fd = os.open(path / f"{OWNER_FILE}.new", os.O_RDWR | os.O_CREAT | os.O_EXCL |
                 os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    _owned[path] = fd
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(path / f"{OWNER_FILE}.new", path / OWNER_FILE)
    return path


def write_secret(path: Path, content: str | bytes) -> None:
    """A new file `path` (in a secret_dir) holding `content` (text as UTF-8), 0600 from the
    start (never briefly readable by others); never through a symlink, never over an existing
    file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content.encode() if isinstance(content, str) else content)


def _remove_owned() -> None:
    for path in list(_owned):
        remove_secret_dir(path)


def remove_secret_dir(path: Path) -> None:
    """Remove a secret_dir() and give up its lock."""
    shutil.rmtree(path, ignore_errors=True)
    fd = _owned.pop(path, None)
    if fd is not None and fd >= 0:
        os.close(fd)


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


def note_children(pids: Iterable[int]) -> None:
    """Note helper processes that do not die with us by themselves (pytest-embedded's spawned
    log listener, multiprocessing's resource tracker): if this process is killed, the next
    run's sweep_private_dirs() stops them. The note goes when this process ends normally.
    Notes add up: every call writes all the noted processes still alive."""
    _noted_pids.update(pids)
    lines = [f"{pid} {start}" for pid in sorted(_noted_pids) if (start := start_time(pid))]
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
        if pid_text.isdigit() and start and start_time(int(pid_text)) == start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid_text), signal.SIGKILL)
