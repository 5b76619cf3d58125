"""A board's first open with --erase-nvs / --erase-all on the rig's drivers: the esp32 driver
refuses to erase a board it must not flash (hil.toml's board spec), and the virtual board's erase
runs for real on the agent (hil-agent behind a pty). flash_once itself:
tests/unit/test_flashing.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pytest_embedded.dut_factory import DutFactory

from rig.boards import BoardUnavailable
from rig.boards.esp32 import Esp32Board
from rig.boards.flashing import FlashError, FlashOptions
from rig.boards.serial_reader import use_blocking_reader
from rig.boards.virtual import VirtualBoard
from rig.config import Board, HilConfig
from rig.device.console import Console


def test_erasing_a_board_the_rig_must_not_flash_is_refused(tmp_path: Path,
                                                           hil_config: HilConfig) -> None:
    port = tmp_path / "ttyFAKE"  # exists, so the board counts as attached
    port.touch()
    spec = Board(name="esp-a", kind="esp32", port=str(port), flash=False)
    board = Esp32Board(spec, hil_config, FlashOptions(erase_nvs=True))
    with pytest.raises(FlashError, match=r"board esp-a: --erase-nvs needs esptool .* flash = "
                                         r"false"):
        board.open()


def test_a_board_the_rig_must_not_flash_takes_no_image(tmp_path: Path,
                                                      hil_config: HilConfig) -> None:
    board = Esp32Board(Board(name="esp-a", kind="esp32", port=str(tmp_path / "tty"),
                             flash=False), hil_config)
    with pytest.raises(BoardUnavailable, match=r"board esp-a: writing an NVS image needs "
                                               r"esptool .* flash = false"):
        board.write_nvs(None, bytes(0x6000))


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
