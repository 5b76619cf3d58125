"""A board's first open: keep or flash, --erase-nvs / --erase-all, and the flash time-out.

esptool and an ESP32 cannot exist here, so `flash_once` is driven with `FakeChip`
(tests/support.py), which stands for pytest-embedded-idf's IdfSerial on a chip. The option
wiring and the virtual board's erase run for real."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pytest_embedded.dut_factory import DutFactory

from rig.boards.esp32 import Esp32Board
from rig.boards.flashing import FlashError, FlashOptions, flash_once, within
from rig.boards.serial_reader import use_blocking_reader
from rig.boards.virtual import VirtualBoard
from rig.config import Board, HilConfig
from rig.console import Console
from tests.support import ROOT, FakeChip, hil, tmp_config


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


def test_erasing_a_board_the_rig_must_not_flash_is_refused(tmp_path: Path,
                                                           hil_config: HilConfig) -> None:
    port = tmp_path / "ttyFAKE"  # exists, so the board counts as attached
    port.touch()
    spec = Board(name="esp-a", kind="esp32", port=str(port), flash=False)
    board = Esp32Board(spec, hil_config, FlashOptions(erase_nvs=True))
    with pytest.raises(FlashError, match=r"board esp-a: --erase-nvs needs esptool .* flash = "
                                         r"false"):
        board.open()


@pytest.fixture
def saved_board(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    """A virtual board's state file with mqtt.server saved in it (the agent run on its own,
    console on stdin); returns (agent, state dir)."""
    if request.config.getoption("--hil"):
        pytest.skip("drives a virtual board directly; not under --hil")
    agent: Path = request.getfixturevalue("hil_agent")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    proc = subprocess.run([str(agent), "--state", str(state_dir / "erase-0.state")],
                          input="config set mqtt.server kept.example:8883\nconfig save\n",
                          capture_output=True, text=True, timeout=30)
    assert proc.stdout.count("OK") == 2, proc.stdout + proc.stderr
    return agent, state_dir


def _open(board: VirtualBoard, hil_config: HilConfig) -> Console:
    dut = board.open()
    use_blocking_reader(dut)
    console = Console(dut, board.name, hil_config.timeouts.command)
    console.wait_ready(hil_config.timeouts.board_boot)
    return console


@pytest.mark.parametrize("erase", [False, True])
def test_virtual_board_erase_starts_from_empty_settings(
        erase: bool, saved_board: tuple[Path, Path], tmp_path: Path,
        hil_config: HilConfig) -> None:
    agent, state_dir = saved_board
    board = VirtualBoard("erase-0", agent, state_dir, tmp_path, erase=erase)
    try:
        first = _open(board, hil_config).send("config get mqtt.server").data
        DutFactory.close()  # the port closes between tests, as in a session
        second = _open(board, hil_config).send("config get mqtt.server").data
    finally:
        DutFactory.close()
        board.close()
    want = ["mqtt.server=<unset>"] if erase else ["mqtt.server=kept.example:8883"]
    assert first == want, (first, second)
    assert second == want  # the erase is for the first open only; later opens keep state


def test_erase_option_values_are_checked() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--erase-nvs", "maybe",
                           "--collect-only", "-q"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--erase-nvs: expected y/yes/true or n/no/false, got 'maybe'" in proc.stderr


def test_hil_run_erase_nvs_reaches_the_board_driver(tmp_path: Path,
                                                    hil_config: HilConfig) -> None:
    """`hil run --hil --erase-nvs` hands the option to the esp32 driver, which refuses it for a
    board with flash = false: the cell errors with that reason."""
    port = tmp_path / "ttyFAKE"
    port.touch()
    config = tmp_config(tmp_path, hil_config)
    config.write_text(config.read_text() + f'\n[[boards]]\nname = "esp-a"\nkind = "esp32"\n'
                      f'port = "{port}"\nflash = false\n')
    proc = hil("run", "--hil", "--erase-nvs", "--mode", "psk", "--no-negative", config=config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"esp-a +psk +connect_publish .*ERROR .*--erase-nvs needs esptool",
                     proc.stdout), proc.stdout
