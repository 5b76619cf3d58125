"""What a physical board's first open of a session does to its flash, and how long it may take.

    note = flash_once(dut.serial, options)   # pytest-embedded's IdfSerial (esptool underneath)

* the app on the chip has the build's ELF SHA-256: kept (no flash); with --erase-nvs the NVS
  partition is erased;
* otherwise the build is flashed (esptool write-flash with the build's flasher_args.json); with
  --erase-nvs pytest-embedded erases NVS first;
* --erase-all: the whole chip is erased, then flashed.

Every later open of the session skips all of this: the chip holds the build from then on.
pytest-embedded on its own flashes on the first open and checks the SHA-256 only later; the rig
opens with `skip_autoflash` and decides here, through IdfSerial's public methods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from rig.boards import BoardError

T = TypeVar("T")


@dataclass(frozen=True)
class FlashOptions:
    """pytest-embedded's --erase-nvs / --erase-all (and --part-tool, which --erase-nvs needs
    unless $IDF_PATH is set), for the first open of each board."""

    erase_nvs: bool = False
    erase_all: bool = False
    part_tool: str | None = None

    @property
    def erases(self) -> str:
        return "--erase-all" if self.erase_all else "--erase-nvs" if self.erase_nvs else ""


NO_ERASE = FlashOptions()


class FlashError(BoardError):
    """Flashing (or erasing) a board failed or took too long: its tests fail with this."""


class Chip(Protocol):
    """The part of pytest-embedded-idf's IdfSerial the rig uses (each call runs esptool)."""

    def is_target_flashed_same_elf(self) -> bool: ...
    def flash(self) -> None: ...
    def erase_flash(self) -> None: ...
    def erase_partition(self, partition_name: str) -> None: ...
    def hard_reset(self) -> None: ...


def flash_once(chip: Chip, options: FlashOptions) -> str:
    """Brings the chip to the build (see module doc), resets it so the app boots, and says
    what was done."""
    if options.erase_all:
        chip.erase_flash()
        chip.flash()
        note = "erased the whole flash (--erase-all) and flashed the build"
    elif chip.is_target_flashed_same_elf():
        note = "kept the app on the chip (same ELF SHA-256 as the build)"
        if options.erase_nvs:
            chip.erase_partition("nvs")
            note += "; erased NVS (--erase-nvs)"
    else:
        chip.flash()
        note = "flashed the build (the chip had another app)" + (
            "; erased NVS first (--erase-nvs)" if options.erase_nvs else "")
    chip.hard_reset()
    return note


def within(seconds: float, what: str, work: Callable[[], T]) -> T:
    """Runs `work` in a thread and waits at most `seconds` for it. On time-out raises
    FlashError; the caller then closes the port, which ends esptool's wait on it."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name=what, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise FlashError(f"{what} did not finish within {seconds:g} s ([timeouts] flash)")
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result
