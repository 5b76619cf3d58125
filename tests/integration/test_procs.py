"""rig/local/ (children.py, user_tmp.py) with real processes: children that die with the rig,
secret directories owned by a lock (not by a pid), and the sweep of what a killed run left. (A
secret dir of this process and the termination signals: tests/unit/test_procs.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from rig.local.user_tmp import OWNER_FILE, sweep_private_dirs, user_tmp
from tests.support import ROOT


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.02)
    return False


def test_the_lock_decides_not_the_pid(tmp_path: Path) -> None:
    """A dir named after a dead pid whose lock a live process holds (a run in another PID
    namespace, or a pid reused) stays; one whose lock nobody holds goes, whatever its name."""
    held = user_tmp() / f"{_dead_pid()}-held-x"
    free = user_tmp() / f"{os.getpid()}-free-x"  # our own live pid, but no lock held
    for d in (held, free):
        d.mkdir(mode=0o700)
        (d / OWNER_FILE).touch(mode=0o600)
        (d / "psk").write_text("secret")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys\n"
         f"fd = os.open({str(held / OWNER_FILE)!r}, os.O_RDWR)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        removed = sweep_private_dirs()
        assert held.exists() and held not in removed
        assert not free.exists() and free in removed
    finally:
        holder.kill()
        holder.wait()
    assert held in sweep_private_dirs()  # its holder is gone now


def test_a_dir_without_its_lock_yet_is_left_while_young() -> None:
    young = user_tmp() / f"{_dead_pid()}-young-x"
    old = user_tmp() / f"{_dead_pid()}-old-x"
    for d in (young, old):
        d.mkdir(mode=0o700)
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    try:
        removed = sweep_private_dirs()
        assert young.exists() and young not in removed
        assert not old.exists()
    finally:
        young.rmdir()


def test_children_die_with_the_process_that_started_them() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys\n"
         "from rig.local.children import die_with_parent\n"
         "child = subprocess.Popen(['sleep', '60'], preexec_fn=die_with_parent())\n"
         "print(child.pid, flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert not _gone(child, 0.2)
    parent.kill()
    parent.wait()
    assert _gone(child), "the child outlived its parent"


def test_a_half_written_note_of_a_dead_process_is_swept() -> None:
    note = user_tmp() / f"{_dead_pid()}-children.tmp"
    note.write_text("1 2\n")
    assert note in sweep_private_dirs()
    assert not note.exists()


SWEEPER = """
import sys, time
from rig.local.user_tmp import sweep_private_dirs
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    sweep_private_dirs()
"""


def test_a_sweep_never_removes_a_secret_dir_being_made() -> None:
    """Another process sweeping all the time while this one makes secret dirs (two xdist
    workers, each making a capture dir per cell): every dir this process made is still there.
    Before the .owner file was locked ahead of getting its name, a sweep that came between its
    creation and its flock took it for abandoned (seen: a cell's capture dir removed under it)."""
    from rig.local.user_tmp import remove_secret_dir, secret_dir

    sweepers = [subprocess.Popen([sys.executable, "-c", SWEEPER, "8"], cwd=ROOT)
                for _ in range(2)]
    lost: list[Path] = []
    live: list[Path] = []  # each checked a while after it was made, then removed
    made = 0
    try:
        time.sleep(0.5)  # the sweepers are sweeping
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:
            live.append(secret_dir("race"))
            made += 1
            if len(live) > 20:
                path = live.pop(0)
                if not (path / OWNER_FILE).exists():
                    lost.append(path)
                remove_secret_dir(path)
    finally:
        for sweeper in sweepers:
            sweeper.kill()
            sweeper.wait()
        for path in live:
            remove_secret_dir(path)
    assert made > 100
    assert not lost, f"{len(lost)} of {made} secret dirs swept while in use"
