"""Helpers the tests share: a temporary copy of hil.toml, the `hil` command as a user runs it, a
stand-in for an ESP32 chip, another process holding a rig lock, and a leak check that names
where a secret showed up without showing it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rig.config import HilConfig

ROOT = Path(__file__).resolve().parents[1]


def hil(*args: str, config: Path, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """`hil --config <config> <args>` in a subprocess, from the checkout."""
    return subprocess.run([sys.executable, "-m", "rig.cli", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def tmp_config(tmp_path: Path, hil_config: HilConfig) -> Path:
    """The committed hil.toml, with run and PKI directories under tmp_path."""
    text = hil_config.source.read_text()
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
def lock_held_elsewhere(lock_dir: Path, name: str) -> Iterator[int]:
    """Another process holds rig.locks.board_lock(lock_dir, name) for the block; yields its
    pid."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, pathlib\n"
         "from rig.locks import board_lock\n"
         f"with board_lock(pathlib.Path({str(lock_dir)!r}), {name!r}):\n"
         "    print('held', flush=True); sys.stdin.read()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        holder.communicate("", timeout=10)


SECRET_SHOWN = "<secret>"


def _needles(secret: bytes | str) -> list[str]:
    """What counts as the secret showing: the whole value and, for a PEM block, each line of
    its body (a key quoted line by line leaks as surely as the whole of it); lower case."""
    text = secret.decode(errors="replace") if isinstance(secret, bytes) else secret
    needles = [text.strip()]
    if "-----BEGIN" in text:
        needles += [ln.strip() for ln in text.splitlines()
                    if len(ln.strip()) >= 16 and not ln.startswith("-----")]
    return [n.lower() for n in needles if n]


def _hide(text: str, needles: list[str]) -> str:
    lowered = text.lower()
    for needle in sorted(needles, key=len, reverse=True):
        while (i := lowered.find(needle)) >= 0:
            text = text[:i] + SECRET_SHOWN + text[i + len(needle):]
            lowered = text.lower()
    return text


def assert_no_secret(secret: bytes | str, what: str,
                     places: Mapping[str, str | Sequence[str]]) -> None:
    """Fail when `secret` (named `what`, e.g. the setting's key) shows in any of `places`: a
    name -> one text, or a name -> lines (a transcript). The failure names each place, and for
    lines the 1-based line number with the line as it reads with the secret replaced by
    <secret>; it never contains the secret (nor does the traceback: this frame is hidden)."""
    __tracebackhide__ = True
    needles = _needles(secret)
    found: list[str] = []
    for place, text in places.items():
        lines = [text] if isinstance(text, str) else list(text)
        for number, line in enumerate(lines, 1):
            if any(n in line.lower() for n in needles):
                where = place if isinstance(text, str) else f"{place} line {number}"
                shown = _hide(line, needles)
                at = max(0, shown.find(SECRET_SHOWN) - 80)
                found.append(f"{where}: {'...' if at else ''}{shown[at:at + 200]!r}")
    if found:
        raise AssertionError(f"{what} leaked (value not shown) in:\n  " + "\n  ".join(found))
