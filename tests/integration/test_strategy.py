"""The board strategy (rig/boards/strategy.py) on a real virtual board: reset only at the first
use, after a failed cell, for a board that dies or hangs, or when asked; provisioning sends only
what differs; every transition is in steps.jsonl."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_embedded.dut_factory import DutFactory

from rig.boards.serial_reader import use_blocking_reader
from rig.boards.strategy import RECOVERY_FILE, STEPS_FILE, BoardQuarantined, BoardStrategy
from rig.boards.virtual import VirtualBoard
from rig.config import HilConfig
from rig.device.console import Console, ConsoleError
from rig.device.provision import Setting, provision


@contextlib.contextmanager
def driven(board: VirtualBoard, tmp_path: Path, command_s: float,
           boot_s: float) -> Iterator[BoardStrategy]:
    """A strategy over `board` (its consoles' command timeout, its boot timeout); the board
    and its ports closed at the end."""
    def make_console(dut: Any) -> Console:
        use_blocking_reader(dut)
        return Console(dut, board.name, command_s, health=board.death)

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
    with driven(board, tmp_path, 2.0, 2.0) as s:
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
