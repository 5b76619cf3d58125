"""Boards: the devices under test. Every kind hands tests a pytest-embedded `Dut` whose console
the rig drives the same way, so one test runs unchanged on a virtual or a physical board.

    driver = make_board(spec, config, agent=..., run_dir=...)
    dut = driver.open()          # first use: open the port, reset the board (flash if needed)
    ... wait for the ready line, provision, test ...
    problem = driver.restart(dut)  # when a cell needs a fresh board (rig/device/strategy.py)
    problem = driver.after_test()  # power off; e.g. a sanitizer report, "" when all is well
    how = driver.power_cycle()     # a board that does not come back after a reset
    driver.close()               # end of session
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rig.config import Board, HilConfig
from rig.errors import RigError

if TYPE_CHECKING:
    from rig.boards.farm import HeldPlace
    from rig.boards.flashing import FlashOptions


class BoardUnavailable(RigError):
    """The board is not attached or cannot be reached: tests skip with this reason."""

    outcome = "skip"


class BoardError(RigError):
    """The board is there but cannot be used as asked (busy port, failed flash, bad setup):
    its tests fail with this reason."""


class BoardConsole(Protocol):
    """What a driver may ask of the board's console to bring the board's network up and find
    its address (rig.device.console.Console is one): boards move bytes, reset and power; the
    console's contract lives in rig/device/."""

    def set_many(self, values: dict[str, bytes | str]) -> None:
        """Set these settings on the board (their values never logged)."""
        ...

    def send(self, command: str, timeout: float | None = None) -> object:
        """Send a console command and wait for its answer; raises when it is refused."""
        ...

    def status(self) -> dict[str, str]:
        """The board's `status` as key -> value."""
        ...


class BoardDriver(Protocol):
    name: str
    kind: str

    def open(self) -> Any:
        """Open the board's serial port as a pytest-embedded Dut, then reset the board so
        its boot line arrives after the port is open. Raises BoardUnavailable."""
        ...

    def prepare(self, console: BoardConsole) -> None:
        """After the boot line: bring the board's network up (physical boards: Wi-Fi)."""
        ...

    def address(self, console: BoardConsole) -> str:
        """The IP or name the rig reaches the board's own servers at. BoardUnavailable when
        it has none."""
        ...

    def restart(self, dut: Any) -> str:
        """Reset the board, keeping its port (the Dut) open, so its boot line follows. Returns
        what the power-off found of the previous boot ('' if nothing), e.g. a sanitizer
        report."""
        ...

    def write_nvs(self, dut: Any, image: bytes) -> None:
        """Write an ESP-IDF NVS partition image over the board's `nvs` partition (through
        `dut`, the open port); its next boot, after the restart that follows, reads it. Raises
        BoardUnavailable when the board cannot take one, FlashError when the write fails."""
        ...

    def after_test(self) -> str:
        """End of one test; returns a problem the test must fail on ('' if none)."""
        ...

    def power_cycle(self) -> str:
        """Cut the board's power and restore it, the step after a reset that did not bring
        the board back. Returns how ('' when there is no power switch apart from the reset);
        raises BoardError when the switch fails. The port is reopened afterwards."""
        ...

    @property
    def powered(self) -> bool:
        """False when the rig (or a test) has switched the board off; a physical board counts
        as on."""
        ...

    def death(self) -> str:
        """'' while the board can answer; else why it cannot (e.g. `agent exited (signal 9
        (SIGKILL))`). Asked while the rig waits for the board, and when a cell fails."""
        ...

    def close(self) -> None: ...


def make_board(spec: Board, config: HilConfig, *, agent: Path | None, run_dir: Path,
               options: FlashOptions | None = None,
               farm: HeldPlace | str | None = None) -> BoardDriver:
    """options: --erase-nvs / --erase-all for the first open (a virtual board then starts
    from an empty state file). farm: a farm board's place held by the run, or why there is
    none (rig/boards/farm.py)."""
    if spec.kind == "virtual":
        from rig.boards.virtual import VirtualBoard

        if agent is None:
            raise BoardUnavailable(f"board {spec.name}: no hil-agent build for a virtual board")
        return VirtualBoard(spec.name, agent, config.base_dir / ".hil" / "boards", run_dir,
                            erase=bool(options and options.erases))
    from rig.boards.esp32 import Esp32Board
    from rig.boards.flashing import NO_ERASE

    return Esp32Board(spec, config, options or NO_ERASE, farm)
