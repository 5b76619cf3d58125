"""Physical boards' ports (rig/boards/ports.py) and the esp32 driver's first open.

Real here: pseudo-terminals as serial devices, symlinks, lock files, other processes holding
ports. Not here: an ESP32 with esptool. `read_mac` is then given a table (it stands for esptool
reading a chip's MAC), and `ChipDut` (holding a FakeChip) stands for pytest-embedded's `esp,idf`
Dut on a chip (DutFactory.create needs esptool to connect to one)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_embedded.dut_factory import DutFactory

from rig.boards import BoardError, BoardUnavailable
from rig.boards import ports as ports_mod
from rig.boards.esp32 import Esp32Board
from rig.boards.flashing import NO_ERASE, FlashError, FlashOptions
from rig.boards.ports import find_port, lock_dir, lock_name
from rig.config import Board, HilConfig
from tests.support import FakeChip, lock_held_elsewhere


@pytest.fixture
def ptys() -> Iterator[list[str]]:
    """Three real serial devices (pseudo-terminals)."""
    pairs = [os.openpty() for _ in range(3)]
    try:
        yield [os.ttyname(slave) for _, slave in pairs]
    finally:
        for master, slave in pairs:
            os.close(master)
            os.close(slave)


@pytest.fixture(autouse=True)
def _no_espport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESPPORT", raising=False)


def test_espport_is_refused(monkeypatch: pytest.MonkeyPatch, ptys: list[str]) -> None:
    monkeypatch.setenv("ESPPORT", ptys[0])
    with contextlib.ExitStack() as held, pytest.raises(BoardError, match="unset ESPPORT"):
        find_port(Board(name="a", kind="esp32", port=ptys[1]), held)


def test_two_names_for_one_device_are_one_port(tmp_path: Path, ptys: list[str]) -> None:
    link = tmp_path / "hil-esp32-a"
    link.symlink_to(ptys[0])
    with contextlib.ExitStack() as held:
        assert find_port(Board(name="a", kind="esp32", port=str(link)), held) == ptys[0]
        with pytest.raises(BoardError, match=f"board b: port {ptys[0]} is already another "
                                             "board's in this run"):
            find_port(Board(name="b", kind="esp32", port=ptys[0]), held)
    with contextlib.ExitStack() as held:  # released with the stack
        assert find_port(Board(name="b", kind="esp32", port=ptys[0]), held) == ptys[0]


def test_a_port_another_process_holds_is_an_error_naming_it(ptys: list[str]) -> None:
    with lock_held_elsewhere(lock_dir(), lock_name(ptys[0])) as pid, \
            contextlib.ExitStack() as held, pytest.raises(
                BoardError, match=rf"board a: port {ptys[0]} is in use by another process "
                                  rf"\(pid {pid};"):
        find_port(Board(name="a", kind="esp32", port=ptys[0]), held)


def test_mac_scan_probes_only_free_ports(monkeypatch: pytest.MonkeyPatch,
                                         ptys: list[str]) -> None:
    monkeypatch.setattr(ports_mod, "_comports", lambda: [(p, "", "") for p in ptys])
    macs = {ptys[0]: "24:0a:c4:00:00:01", ptys[1]: "24:0a:c4:00:00:02",
            ptys[2]: "24:0a:c4:00:00:03"}
    probed: list[str] = []

    def read_mac(port: str) -> str | None:
        probed.append(port)
        return macs[port]

    with lock_held_elsewhere(lock_dir(), lock_name(ptys[0])), contextlib.ExitStack() as held:
        spec = Board(name="a", kind="esp32", mac="24:0A:C4:00:00:03")
        assert find_port(spec, held, read_mac=read_mac) == ptys[2]
        assert ptys[0] not in probed  # another process drives it: never reset by a probe
        assert (lock_dir() / f"{lock_name(ptys[2])}.lock").exists()
        with pytest.raises(BoardUnavailable, match="no free serial port has an ESP chip "
                                                   "with MAC 24:0a:c4:00:00:01"):
            find_port(dataclasses.replace(spec, name="b", mac="24:0a:c4:00:00:01"), held,
                      read_mac=read_mac)


def test_location_pins_exactly_one_port(monkeypatch: pytest.MonkeyPatch,
                                        ptys: list[str]) -> None:
    monkeypatch.setattr(ports_mod, "_comports", lambda: [
        (ptys[0], "1-1.2", "A1"), (ptys[1], "1-1.3", "B2"), (ptys[2], "1-1.3", "C3")])
    with contextlib.ExitStack() as held:
        assert find_port(Board(name="a", kind="esp32", location="1-1.2"), held) == ptys[0]
        with pytest.raises(BoardError, match=r"2 serial ports with USB location 1-1\.3"):
            find_port(Board(name="b", kind="esp32", location="1-1.3"), held)
        assert find_port(Board(name="c", kind="esp32", serial_number="C3"), held) == ptys[2]
        with pytest.raises(BoardUnavailable, match="no serial port with USB location 9-9"):
            find_port(Board(name="d", kind="esp32", location="9-9"), held)


# ---------------------------------------------------------------- the driver's first open


@dataclasses.dataclass
class ChipDut:
    """Stands for the `esp,idf` Dut DutFactory.create returns for a chip."""

    serial: FakeChip


@pytest.fixture
def esp_board(tmp_path: Path, hil_config: HilConfig, ptys: list[str],
              monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """make(options, **chip) -> an Esp32Board on a pty whose DutFactory.create returns a
    ChipDut; and the keyword arguments of every create call."""
    build = tmp_path / "build"
    build.mkdir()
    (build / "flasher_args.json").write_text("{}")
    created: list[dict[str, Any]] = []
    boards: list[Esp32Board] = []
    chip: dict[str, Any] = {}

    def create(**kwargs: Any) -> ChipDut:
        created.append(kwargs)
        return ChipDut(chip["serial"])

    monkeypatch.setattr(DutFactory, "create", create)

    def make(options: FlashOptions = NO_ERASE, flash_s: float = 30.0,
             **serial: Any) -> tuple[Esp32Board, FakeChip]:
        chip["serial"] = FakeChip(**serial)
        config = dataclasses.replace(
            hil_config, timeouts=dataclasses.replace(hil_config.timeouts, flash=flash_s))
        spec = Board(name="esp-a", kind="esp32", port=ptys[0], build_dir=str(build))
        board = Esp32Board(spec, config, options)
        boards.append(board)
        return board, chip["serial"]

    yield make, created
    for b in boards:
        b.close()


def test_first_open_keeps_a_matching_app_and_later_opens_never_flash(
        esp_board: tuple[Any, list[dict[str, Any]]]) -> None:
    make, created = esp_board
    board, chip = make(same_elf=True)
    board.open()
    board.open()
    assert chip.calls == ["read-elf-sha256", "hard-reset"]  # once per session
    assert board.flash_note.startswith("kept the app")
    assert [c["skip_autoflash"] for c in created] == [True, True]  # pytest-embedded never flashes
    assert created[0]["port"] == board.port and "port_mac" not in created[0]


def test_erase_nvs_reaches_pytest_embedded_for_the_flash(
        esp_board: tuple[Any, list[dict[str, Any]]]) -> None:
    make, created = esp_board
    board, chip = make(FlashOptions(erase_nvs=True), same_elf=False)
    board.open()
    assert created[0]["erase_nvs"] is True  # IdfSerial.flash erases NVS first
    assert chip.calls == ["read-elf-sha256", "write-flash", "hard-reset"]


def test_a_failed_flash_fails_every_later_open_without_retrying(
        esp_board: tuple[Any, list[dict[str, Any]]]) -> None:
    make, created = esp_board
    board, chip = make(same_elf=False, fail="Failed to connect to ESP32: No serial data")
    with pytest.raises(FlashError, match=r"board esp-a: flashing from .* failed: Failed to "
                                         r"connect"):
        board.open()
    with pytest.raises(FlashError, match="not retried"):
        board.open()
    assert len(created) == 1 and chip.calls == ["read-elf-sha256"]


def test_a_hanging_flash_is_cut_off_by_the_flash_timeout(
        esp_board: tuple[Any, list[dict[str, Any]]]) -> None:
    make, _ = esp_board
    release = threading.Event()
    board, _chip = make(flash_s=0.3, same_elf=True, hang=release)
    try:
        with pytest.raises(FlashError, match=r"did not finish within 0.3 s \(\[timeouts\] "
                                             r"flash\)"):
            board.open()
    finally:
        release.set()


def test_close_releases_the_port(esp_board: tuple[Any, list[dict[str, Any]]]) -> None:
    make, _ = esp_board
    board, _chip = make(same_elf=True)
    board.open()
    port = board.port
    second, _ = make(same_elf=True)
    with pytest.raises(BoardError, match="already another board's in this run"):
        second.open()
    board.close()
    second.open()
    assert second.port == port
