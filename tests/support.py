"""Helpers the tests share: a temporary copy of hil.toml, the `hil` command as a user runs it, a
stand-in for an ESP32 chip, another process holding a rig lock, and a leak check that names
where a secret showed up without showing it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rig.cases.leaks import SECRET_SHOWN as SECRET_SHOWN  # re-exported for the rig's tests
from rig.cases.leaks import assert_no_secret as assert_no_secret
from rig.config import HilConfig

ROOT = Path(__file__).resolve().parents[1]


def hil(*args: str, config: Path, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """`hil --config <config> <args>` in a subprocess, from the checkout."""
    return subprocess.run([sys.executable, "-m", "rig.cli", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def committed_toml(hil_config: HilConfig, esp: bool = False) -> str:
    """The committed hil.toml's text with its native board virtual-0 only, and its esp board
    when `esp` (most tests of the CLI are about the rig, not the firmware's variants or
    profiles, and one board is quicker)."""
    head, *boards = hil_config.source.read_text().split("\n[[boards]]")
    keep = ("virtual-0", "virtual-esp") if esp else ("virtual-0",)
    kept = [b for b in boards if b.split('name = "', 1)[-1].split('"', 1)[0] in keep]
    assert len(kept) == len(keep), f"hil.toml no longer has the boards {keep}"
    return head + "".join("\n[[boards]]" + b.rstrip() + "\n" for b in kept)


def tmp_config(tmp_path: Path, hil_config: HilConfig, esp: bool = False) -> Path:
    """The committed hil.toml, with run and PKI directories under tmp_path (its esp board only
    when `esp`)."""
    text = committed_toml(hil_config, esp)
    text = text.replace('run_dir = "runs"', f'run_dir = "{tmp_path}/runs"')
    text = text.replace('dir = "pki"', f'dir = "{tmp_path}/pki"')
    path = tmp_path / "hil.toml"
    path.write_text(text)
    return path


@dataclass
class FakeChip:
    """Stands for an ESP32 behind pytest-embedded-idf's IdfSerial (esptool and a chip cannot
    exist here): records the esptool work it is asked for. `same_elf`: whether its app matches
    the build; `fail`: reading the app fails with this; `hang`: reading waits for this event."""

    same_elf: bool
    calls: list[str] = field(default_factory=list)
    fail: str = ""
    hang: threading.Event | None = None

    def is_target_flashed_same_elf(self) -> bool:
        self.calls.append("read-elf-sha256")
        if self.hang is not None:
            self.hang.wait(10)
        if self.fail:
            raise RuntimeError(self.fail)
        return self.same_elf

    def flash(self) -> None:
        self.calls.append("write-flash")

    def erase_flash(self) -> None:
        self.calls.append("erase-flash")

    def erase_partition(self, partition_name: str) -> None:
        self.calls.append(f"erase-partition {partition_name}")

    def hard_reset(self) -> None:
        self.calls.append("hard-reset")


@contextlib.contextmanager
def held_elsewhere(lock: str) -> Iterator[int]:
    """Another process holds `lock` (a rig.local.locks call, as Python source) for the block;
    yields its pid."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, pathlib\n"
         "from rig.local.locks import board_lock, file_lock\n"
         f"with {lock}:\n"
         "    print('held', flush=True); sys.stdin.read()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        holder.communicate("", timeout=10)


def lock_held_elsewhere(lock_dir: Path, name: str) -> contextlib.AbstractContextManager[int]:
    """Another process holds rig.local.locks.board_lock(lock_dir, name) for the block."""
    return held_elsewhere(f"board_lock(pathlib.Path({str(lock_dir)!r}), {name!r})")


def file_lock_held_elsewhere(path: Path) -> contextlib.AbstractContextManager[int]:
    """Another process holds rig.local.locks.file_lock(path) for the block."""
    return held_elsewhere(f"file_lock(pathlib.Path({str(path)!r}))")
