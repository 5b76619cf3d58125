"""The board strategy (rig/device/strategy.py) on a real virtual board: reset only at the first
use, after a failed cell, for a board that dies or hangs, or when asked; provisioning sends only
what differs; every transition is in steps.jsonl. The recovery ladder on an esp32 board whose
USB port goes away with its power (HubPort: a stand-in for a hub port, the agent behind a pty
standing in for the chip)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_embedded.dut_factory import DutFactory

from rig.boards.esp32 import Esp32Board
from rig.boards.ports import lock_dir, lock_name
from rig.boards.serial_reader import console_port, use_blocking_reader
from rig.boards.virtual import VirtualBoard
from rig.config import Board, HilConfig
from rig.device.console import Console, ConsoleError
from rig.device.provision import Setting, provision
from rig.device.strategy import RECOVERY_FILE, STEPS_FILE, BoardQuarantined, BoardStrategy


@contextlib.contextmanager
def driven(board: VirtualBoard | Esp32Board, tmp_path: Path, command_s: float,
           boot_s: float) -> Iterator[BoardStrategy]:
    """A strategy over `board` (its consoles' command timeout, its boot timeout); the board
    and its ports closed at the end."""
    def make_console(dut: Any) -> Console:
        use_blocking_reader(dut)
        return Console(console_port(dut), board.name, command_s, health=board.death)

    s = BoardStrategy(board, make_console, boot_s, tmp_path)
    try:
        yield s
    finally:
        s.close()
        board.close()
        DutFactory.close()


@pytest.fixture
def strategy(hil_agent: Path, tmp_path: Path) -> Iterator[BoardStrategy]:
    with driven(VirtualBoard("strat-0", hil_agent, tmp_path / "state", tmp_path), tmp_path,
                5.0, 10.0) as s:
        yield s


def _steps(s: BoardStrategy) -> list[dict[str, Any]]:
    return [json.loads(line) for line in s.steps_path.read_text().splitlines()]


def _sent(console: Console, since: int) -> list[str]:
    return [t for t in console.transcript[since:] if t.startswith("> ")]


def test_a_board_is_reset_only_when_a_cell_needs_it(strategy: BoardStrategy) -> None:
    board = strategy.driver
    assert isinstance(board, VirtualBoard)
    console = strategy.begin("cell-1")
    first_pid = board.pid
    settings = [Setting("mqtt.server", b"127.0.0.1:1"), Setting("mqtt.client_id", b"a")]
    provision(console, settings)
    strategy.end("cell-1", failed=False, timeout=5.0)

    console = strategy.begin("cell-2")
    assert board.pid == first_pid, "a passing cell's board was reset"
    mark = len(console.transcript)
    provision(console, [settings[0], Setting("mqtt.client_id", b"b")])
    # only the changed value: cleared, then set; the unchanged server is not sent again
    assert _sent(console, mark) == ["> config clear mqtt.client_id",
                                   "> config set mqtt.client_id b"]
    assert console.send("config get mqtt.client_id").data == ["mqtt.client_id=b"]
    assert console.send("config get mqtt.server").data == ["mqtt.server=127.0.0.1:1"]
    strategy.end("cell-2", failed=True, timeout=5.0)

    console = strategy.begin("cell-3")
    assert board.pid != first_pid and strategy.resets == 1
    mark = len(console.transcript)
    provision(console, settings)  # after a boot nothing is known: everything again
    assert _sent(console, mark)[0] == "> config clear"
    strategy.end("cell-3", failed=False, timeout=5.0)

    strategy.begin("cell-4", fresh=True)
    assert strategy.resets == 2
    reasons = [(s["to"], s["reason"]) for s in _steps(strategy)]
    assert reasons[0] == ("booted", "first use")
    assert ("booted", "previous cell: the cell failed") in reasons
    assert ("booted", "asked by the test") in reasons
    assert all(s["ms"] >= 0 and s["board"] == "strat-0" for s in _steps(strategy))
    assert strategy.steps_path.name == STEPS_FILE


def test_a_board_that_died_or_hung_between_cells_is_reset(strategy: BoardStrategy) -> None:
    board = strategy.driver
    assert isinstance(board, VirtualBoard)
    strategy.begin("cell-1")
    strategy.end("cell-1", failed=False, timeout=5.0)
    assert board.pid is not None
    os.kill(board.pid, signal.SIGKILL)
    board._proc.wait()  # type: ignore[union-attr]
    strategy.begin("cell-2")
    assert strategy.resets == 1
    assert any("between cells (after cell-1)" in p for p in strategy.problems), \
        strategy.problems  # a death no cell saw is a fault of the run
    pid = board.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # hung at the end of a cell: its end does not answer
    try:
        with pytest.raises(ConsoleError):
            strategy.end("cell-2", failed=False, timeout=0.5)
    finally:
        os.kill(pid, signal.SIGCONT)
    strategy.begin("cell-3")
    assert strategy.resets == 2 and board.pid != pid


def test_a_refused_value_does_not_leave_the_old_one(strategy: BoardStrategy,
                                                    hil_config: HilConfig) -> None:
    console = strategy.begin("cell-1")
    provision(console, [Setting("mqtt.ssl_psk_key", b"00" * 16)])
    with pytest.raises(ConsoleError):
        provision(console, [Setting("mqtt.ssl_psk_key", b"00" * 15)])  # wrong length
    assert console.send("config get mqtt.ssl_psk_key").data == ["mqtt.ssl_psk_key=<unset>"]
    assert console.known is None  # what the board holds is no longer sure: full next time


def test_a_reboot_nobody_asked_for_is_caught(strategy: BoardStrategy) -> None:
    """A watchdog or a panic restarts the chip: its boot line arrives as an ordinary line. What
    the rig thought the board held is then unknown, the cell fails, and the board is reset."""
    console = strategy.begin("cell-1")
    provision(console, [Setting("mqtt.server", b"127.0.0.1:1")])
    assert console.known is not None
    console.dut.write("reboot")  # behind the rig's back: not a command the console sent
    deadline_lines = console.expect_log("hil-agent .* ready", timeout=5.0)
    assert deadline_lines
    assert console.unexpected_reboot and console.known is None
    strategy.end("cell-1", failed=False, timeout=5.0)
    assert strategy.dirty.startswith("previous cell: it rebooted")
    console.send("reboot")  # asked for: not a surprise (the next boot loads what was saved)
    console.expect_log("hil-agent .* ready", timeout=5.0)
    assert console.rebooted and console.known is None


class WedgedOnReset(VirtualBoard):
    """Stands for a chip whose reset line cannot bring it back (a wedged USB-UART, a brown-out
    latch): its restart leaves the agent hung (SIGSTOP). Its power switch (a hub port, a relay:
    what hil.toml `power_cycle` or a labgrid place drives) restarts the agent for real."""

    wedged = True
    cycles = 0

    def restart(self, dut: Any) -> str:
        if not self.wedged:
            return super().restart(dut)
        if self.pid:
            os.kill(self.pid, signal.SIGSTOP)
        return ""

    def power_cycle(self) -> str:
        self.cycles += 1
        if self.pid:
            os.kill(self.pid, signal.SIGCONT)
        self.reset()
        self.wedged = False
        return "a stand-in power switch"


def test_a_board_a_reset_cannot_bring_back_is_power_cycled(hil_agent: Path,
                                                           tmp_path: Path) -> None:
    board = WedgedOnReset("ladder-0", hil_agent, tmp_path / "state", tmp_path)
    # a boot timeout that a busy runner's sanitizer build meets (the wedged reset waits it out)
    with driven(board, tmp_path, 2.0, 4.0) as s:
        s.begin("cell-1")
        s.end("cell-1", failed=True, timeout=2.0)
        console = s.begin("cell-2")  # the reset leaves it hung; the power cycle brings it back
        assert console.send("version").data[0].startswith("version=")
        assert board.cycles == 1 and not s.quarantined
        steps = [json.loads(line) for line in (tmp_path / RECOVERY_FILE).read_text()
                 .splitlines()]
        assert [(r["step"], r["outcome"], r["cell"]) for r in steps] == [
            ("reset", "no answer", "cell-2"), ("power cycle", "recovered", "cell-2")]
        assert steps[1]["detail"] == "a stand-in power switch"
        s.end("cell-2", failed=False, timeout=2.0)


def test_a_board_nothing_brings_back_is_quarantined(hil_agent: Path, tmp_path: Path) -> None:
    """A virtual board has no power switch apart from its restart: one that does not answer
    after it is quarantined at once, and every later cell says so without waiting."""
    board = VirtualBoard("ladder-1", hil_agent, tmp_path / "state", tmp_path)
    broken = tmp_path / "not-an-agent"
    broken.write_text("#!/bin/sh\nexec sleep 60\n")  # a firmware that never prints its boot line
    broken.chmod(0o755)
    with driven(board, tmp_path, 2.0, 2.0) as s:
        s.begin("cell-1")
        s.end("cell-1", failed=True, timeout=2.0)
        board.agent = broken
        with pytest.raises(BoardQuarantined, match=r"^board quarantined: no answer after a "
                           r"reset \(board ladder-1: .*; no power switch apart from its reset$"):
            s.begin("cell-2")
        with pytest.raises(BoardQuarantined, match=r"^board quarantined: "):
            s.begin("cell-3")
        steps = [(r["step"], r["outcome"]) for r in map(
            json.loads, (tmp_path / RECOVERY_FILE).read_text().splitlines())]
        assert steps == [("reset", "no answer"), ("power cycle", "skipped"),
                         ("quarantine", "quarantined")]


class HubPort:
    """Stands for an ESP32's USB-UART on a switchable USB hub port (a USB device that goes away
    and enumerates anew cannot exist here). The chip is a hil-agent behind a pty; the name
    hil.toml `port` pins (like /dev/serial/by-id/...) is a symlink to that pty. The hub's
    switch (`switch`, the script hil.toml power_cycle runs, as it would run uhubctl) removes
    the link and the chip loses its power; `back_after` s later (never: None) the device is
    back: the chip boots behind a new pty (another name, as ttyUSB0 may come back as ttyUSB1)
    and the link points there. `wedged`: the chip's RTS (EN) reset cannot bring it back."""

    def __init__(self, agent: Path, where: Path, back_after: float | None) -> None:
        self.agent, self.where, self.back_after = agent, where, back_after
        self.link = where / "usb-Silicon_Labs_CP2102-if00-port0"
        self.switch = where / "hub-port-power-cycle"
        self.switch.write_text("#!/bin/sh\n# stands for `uhubctl -a cycle`: the device goes "
                               f"away with the power\nrm {self.link}\n")
        self.switch.chmod(0o755)
        self.wedged = False
        self.chip = self._plug()
        self._stop = threading.Event()
        self._hub = threading.Thread(target=self._watch, daemon=True)
        self._hub.start()

    def _plug(self) -> VirtualBoard:
        chip = VirtualBoard("hub-chip", self.agent, self.where / "state", self.where)
        self.link.symlink_to(chip.port)
        self.wedged = False
        return chip

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            if os.path.lexists(self.link):
                continue
            if self.chip.pid:
                os.kill(self.chip.pid, signal.SIGKILL)  # its power is gone
            if self.back_after is None or self._stop.wait(self.back_after):
                return
            old, self.chip = self.chip, self._plug()  # its pty made while the old one is
            old.close()  # still open: the device comes back under another name

    def en_pulse(self) -> None:
        """The RTS (EN) line: the chip boots again, unless it is wedged."""
        if not self.wedged:
            self.chip.reset()

    def close(self) -> None:
        self._stop.set()
        self._hub.join(timeout=10)
        self.chip.close()


class OnHubPort(Esp32Board):
    """An esp32 board (flash = false: plain serial) on a HubPort; its reset pulses the
    stand-in's EN line (a pty has no RTS line for the real pulse)."""

    def __init__(self, hub: HubPort, config: HilConfig) -> None:
        super().__init__(Board(name="esp-hub", kind="esp32", port=str(hub.link), flash=False,
                               power_cycle=[str(hub.switch)]), config)
        self.hub = hub

    def _reset(self, ser: Any) -> None:
        self.hub.en_pulse()


@contextlib.contextmanager
def on_hub_port(hil_agent: Path, tmp_path: Path, hil_config: HilConfig, port_return: float,
                back_after: float | None) -> Iterator[tuple[BoardStrategy, HubPort]]:
    """A strategy over an esp32 board on a HubPort whose first cell failed (so the next one
    starts from a reset), with the chip hung (SIGSTOP) and wedged: only power brings it back."""
    hub = HubPort(hil_agent, tmp_path, back_after)
    config = dataclasses.replace(hil_config, timeouts=dataclasses.replace(
        hil_config.timeouts, port_return=port_return))
    try:
        with driven(OnHubPort(hub, config), tmp_path, 2.0, 2.0) as s:
            s.begin("cell-1")
            s.end("cell-1", failed=True, timeout=2.0)
            hub.wedged = True
            assert hub.chip.pid is not None
            os.kill(hub.chip.pid, signal.SIGSTOP)
            yield s, hub
    finally:
        hub.close()


def _recovery(tmp_path: Path) -> list[tuple[str, str]]:
    return [(r["step"], r["outcome"]) for r in map(
        json.loads, (tmp_path / RECOVERY_FILE).read_text().splitlines())]


def test_a_power_cycle_waits_for_the_boards_port_to_come_back(
        hil_agent: Path, tmp_path: Path, hil_config: HilConfig,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESPPORT", raising=False)
    with on_hub_port(hil_agent, tmp_path, hil_config, 10.0, 1.0) as (s, hub):
        board = s.driver
        assert isinstance(board, OnHubPort)
        before = board.port
        console = s.begin("cell-2")  # reset: no answer; power cycle: the port is away for 1 s
        assert console.send("version").data[0].startswith("version=")
        assert not s.quarantined
        assert _recovery(tmp_path) == [("reset", "no answer"), ("power cycle", "recovered")]
        # found again through the pinned name, under its new device name, and held again
        assert board.port == os.path.realpath(hub.link) != before
        assert (lock_dir() / f"{lock_name(board.port)}.lock").exists()


def test_a_port_that_does_not_come_back_quarantines_the_board_naming_the_wait(
        hil_agent: Path, tmp_path: Path, hil_config: HilConfig,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESPPORT", raising=False)
    with on_hub_port(hil_agent, tmp_path, hil_config, 0.5, None) as (s, hub):
        t0 = time.monotonic()
        with pytest.raises(BoardQuarantined, match=(
                r"after a power cycle through hil\.toml power_cycle \(.*hub-port-power-cycle\): "
                r"board esp-hub: waited 0\.5 s \(\[timeouts\] port_return\) for its serial port "
                r"after the power cycle: .*usb-Silicon_Labs_CP2102-if00-port0 does not exist")):
            s.begin("cell-2")
        assert time.monotonic() - t0 >= 2.0 + 0.5  # the reset's boot wait, then the port's
        assert not os.path.lexists(hub.link) and not hub.chip.pid  # the device never came back
        assert _recovery(tmp_path) == [("reset", "no answer"), ("power cycle", "no answer"),
                                       ("quarantine", "quarantined")]
