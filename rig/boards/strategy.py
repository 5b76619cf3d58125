"""A board driven through named states, moved only as far as a cell needs (labgrid's idea):

    off -> booted -> network -> (provisioned, connected: inside a cell)

A cell asks for a board with its network up. The board is reset (restarted, its port kept
open) only at its first use in a run, after a cell that failed, after a cell that found it
dead or hung, or when a test asks for it (`@pytest.mark.fresh_board`); otherwise the next cell
finds it as the last one left it, minus that cell's MQTT connection and HTTPS server, which
every cell's end closes (`settle`). Provisioning then sends only the settings that differ from
what the board holds (rig/device/provision.py, Console.known). Every transition, its reason and its
duration go to `steps.jsonl` in the run directory; `hil run` counts the resets per board.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rig.boards import BoardDriver, BoardUnavailable
from rig.boards.serial_reader import close_kept, keep_for_session
from rig.device.console import Console, ConsoleError

STEPS_FILE = "steps.jsonl"


class BoardStrategy:
    def __init__(self, driver: BoardDriver, make_console: Callable[[Any], Console],
                 boot_timeout: float, run_dir: Path) -> None:
        self.driver = driver
        self.make_console = make_console
        self.boot_timeout = boot_timeout
        self.steps_path = run_dir / STEPS_FILE
        self.state = "off"
        self.console: Console | None = None
        self.dut: Any = None
        self.resets = 0
        self.dirty = ""  # why the next cell must start from a reset ('' = it need not)
        self.unavailable = ""  # why the board cannot be used this session ('' = it can)
        self.problems: list[str] = []  # what a power-off found (e.g. a sanitizer report)
        self.cells_since_reset: list[str] = []
        self._kept: list[Any] = []  # the Dut and what pytest-embedded made for it

    # ------------------------------------------------------------------ steps

    def _step(self, to: str, reason: str, cell: str, t0: float) -> None:
        record = {"board": self.driver.name, "from": self.state, "to": to, "reason": reason,
                  "cell": cell, "ms": round((time.monotonic() - t0) * 1000, 2),
                  "at": round(time.time(), 3)}
        self.state = to
        with self.steps_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------ cells

    def begin(self, cell: str, fresh: bool = False) -> Console:
        """The board's console for `cell`, the board booted and its network up. Raises the
        driver's RigError (BoardUnavailable: skip) or the console's error. A board found
        unavailable stays so for the session (no reset per cell to find that out again)."""
        if self.unavailable:
            raise BoardUnavailable(self.unavailable)
        unwell = "" if self.console is None or self.dirty else self._unwell()
        if unwell.startswith("board found dead"):  # between cells: no cell saw it fail
            last = self.cells_since_reset[-1] if self.cells_since_reset else "none"
            self.problems.append(f"{unwell} between cells (after {last})")
        reason = ("first use" if self.console is None else
                  "asked by the test" if fresh else self.dirty or unwell)
        if reason:
            self._boot(cell, reason)
        assert self.console is not None
        if self.state == "booted":
            t0 = time.monotonic()
            with self.console.doing("bringing its network up"):
                self.driver.prepare(self.console)
            self._step("network", "after boot", cell, t0)
        self.console.begin_cell(cell)
        self.cells_since_reset.append(cell)
        return self.console

    def _unwell(self) -> str:
        death = self.driver.death()
        if death:
            return f"board found dead ({death})"
        if not self.driver.powered:
            return "board was off"
        return ""

    def _boot(self, cell: str, reason: str) -> None:
        t0 = time.monotonic()
        if self.dut is None:
            self.dut = self.driver.open()  # the port, the first flash if needed, a reset
            self._kept = keep_for_session(self.dut)
        else:
            problem = self.driver.restart(self.dut)
            if "agent exited" in problem:  # named by the cell that saw it, or just above
                problem = ""
            if problem:
                self.problems.append(f"{problem} (at power-off; cells since the previous "
                                     f"reset: {', '.join(self.cells_since_reset) or 'none'})")
            self.resets += 1
        self.cells_since_reset = []
        self.dirty = ""
        self.state = "off"
        self.console = self.make_console(self.dut)
        with self.console.doing("booting"):
            self.console.wait_ready(self.boot_timeout)
        self._step("booted", reason, cell, t0)

    def end(self, cell: str, failed: bool, timeout: float) -> None:
        """After a cell: a failed or troubled cell leaves the board to be reset before the next
        one; a good one closes its MQTT connection and HTTPS server (one round trip that also
        collects whatever reached the console during the cell)."""
        console = self.console
        if console is None:
            return
        why = ("the cell failed" if failed else
               f"its console broke ({console.broken})" if console.broken else
               f"it rebooted ({console.rebooted})" if console.rebooted else self._unwell())
        if not why:
            t0 = time.monotonic()
            try:
                with console.doing("ending the cell"):
                    results = console.send_many([console.command("mqtt disconnect"),
                                                 console.command("http stop")],
                                                timeout=timeout)
            except BaseException:
                self.dirty = "previous cell: the board did not answer at its end"
                raise
            self._step("network", "cell ended", cell, t0)
            errors = [str(r) for r in results if isinstance(r, ConsoleError)]
            if console.noise:
                why = "garbage on its console"
            elif errors:
                why = f"its end was refused ({errors[0]})"
        if why:
            self.dirty = f"previous cell: {why}"

    def close(self) -> str:
        """Power off at the end of the session; returns what the board's power-off and earlier
        restarts found ('' when nothing)."""
        if self.dut is not None or self.console is not None:
            problem = self.driver.after_test()
            if problem and self.dirty and "agent exited" in problem:
                problem = ""  # the cell that saw it failed naming it
            if problem:
                self.problems.append(f"{problem} (at power-off; cells since the previous "
                                     f"reset: {', '.join(self.cells_since_reset) or 'none'})")
            self._step("off", "end of session", "", time.monotonic())
        close_kept(self._kept)
        self._kept = []
        self.dut = self.console = None
        return "\n".join(self.problems)
