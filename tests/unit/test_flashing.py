"""A board's first open: keep or flash, --erase-nvs / --erase-all, and the flash time-out.

esptool and an ESP32 cannot exist here, so `flash_once` is driven with `FakeChip`
(tests/support.py), which stands for pytest-embedded-idf's IdfSerial on a chip. The esp32
driver's refusal and the virtual board's erase: tests/integration/test_flashing_boards.py; the
option wiring through pytest and `hil run`: tests/cli/test_flashing_options.py."""

from __future__ import annotations

import threading
import time

import pytest

from rig.boards.flashing import FlashError, FlashOptions, flash_once, within
from tests.support import FakeChip


def test_same_app_is_kept() -> None:
    chip = FakeChip(same_elf=True)
    note = flash_once(chip, FlashOptions())
    assert chip.calls == ["read-elf-sha256", "hard-reset"]
    assert note == "kept the app on the chip (same ELF SHA-256 as the build)"


def test_other_app_is_flashed() -> None:
    chip = FakeChip(same_elf=False)
    note = flash_once(chip, FlashOptions())
    assert chip.calls == ["read-elf-sha256", "write-flash", "hard-reset"]
    assert note.startswith("flashed the build")


def test_erase_nvs_with_the_same_app_erases_only_nvs() -> None:
    chip = FakeChip(same_elf=True)
    note = flash_once(chip, FlashOptions(erase_nvs=True))
    assert chip.calls == ["read-elf-sha256", "erase-partition nvs", "hard-reset"]
    assert "erased NVS" in note


def test_erase_all_erases_then_flashes_without_looking() -> None:
    chip = FakeChip(same_elf=True)
    flash_once(chip, FlashOptions(erase_all=True))
    assert chip.calls == ["erase-flash", "write-flash", "hard-reset"]


def test_a_flash_that_hangs_fails_after_the_time_out() -> None:
    release = threading.Event()
    t0 = time.monotonic()
    with pytest.raises(FlashError, match=r"board b1: flashing did not finish within 0.2 s "
                                         r"\(\[timeouts\] flash\)"):
        within(0.2, "board b1: flashing", lambda: release.wait(5))
    assert time.monotonic() - t0 < 2
    release.set()
    assert within(1, "quick", lambda: "done") == "done"
    with pytest.raises(ValueError, match="esptool said no"):
        within(1, "failing", lambda: (_ for _ in ()).throw(ValueError("esptool said no")))
