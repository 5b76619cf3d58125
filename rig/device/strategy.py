"""A board driven through named states, moved only as far as a cell needs (labgrid's idea):

    off -> booted -> network -> (provisioned, connected: inside a cell)

A cell asks for a board with its network up. The board is reset (restarted, its port kept
open) only at its first use in a run, after a cell that failed, after a cell that found it
dead or hung, or when a test asks for it (`@pytest.mark.fresh_board`); otherwise the next cell
finds it as the last one left it, minus that cell's MQTT connection and HTTPS server, which
every cell's end closes (`settle`). Provisioning then sends only the settings that differ from
what the board holds (rig/device/provision.py, Console.known). Every transition, its reason and its
duration go to `steps.jsonl` in the run directory; `hil run` counts the resets per board.

A board that does not come back from a reset (no boot line, no answer) goes down a ladder:
reset -> power cycle (its place's power resource, or hil.toml `power_cycle`; skipped when it
has none, or when its reset already was one) -> quarantined for the rest of the run: every
later cell of the board fails at once with `board quarantined: <reason>`, never silently
skipped. Each step and its outcome go to `recovery.jsonl`, and from there into results.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rig.boards import BoardDriver, BoardError, BoardUnavailable
from rig.boards.farm import FarmError, PlaceNotHeld
from rig.boards.serial_reader import close_kept, keep_for_session
from rig.device.console import Console, ConsoleError
from rig.local.spans import work

STEPS_FILE = "steps.jsonl"
RECOVERY_FILE = "recovery.jsonl"


class BoardQuarantined(BoardError):
    """The board did not come back from a reset nor a power cycle: set aside for the run."""


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
        self.opened = False  # the board was opened (its first boot) at least once
        self.dirty = ""  # why the next cell must start from a reset ('' = it need not)
        self.unavailable = ""  # why the board cannot be used this session ('' = it can)
        self.quarantined = ""  # why the board was set aside for the rest of the run
        self.not_held = ""  # why the run could not get the board's farm place ('' = it did)
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
        if self.quarantined:
            raise BoardQuarantined(f"board quarantined: {self.quarantined}")
        if self.not_held:  # the run never had the board: nothing to reset, nothing to recover
            raise PlaceNotHeld(self.not_held)
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

    def _recovery(self, cell: str, step: str, outcome: str, detail: str) -> None:
        record = {"board": self.driver.name, "cell": cell, "step": step, "outcome": outcome,
                  "detail": detail, "at": round(time.time(), 3)}
        with (self.steps_path.parent / RECOVERY_FILE).open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def _boot(self, cell: str, reason: str) -> None:
        """Reset the board and wait for it; a board that does not come back goes down the
        ladder (power cycle, then quarantine)."""
        try:
            self._reset_and_wait(cell, reason)
            return
        except PlaceNotHeld as exc:  # never had it: no ladder, no reset counted
            self.not_held = str(exc)
            raise
        except (ConsoleError, FarmError) as exc:  # no answer; or its reset (power) failed
            after_reset = str(exc).splitlines()[0]
        self._recovery(cell, "reset", "no answer", after_reset)
        try:
            how = self.driver.power_cycle()
        except BoardError as exc:
            how, after_reset = "", f"{after_reset}; power cycle failed: {exc}"
        if how:
            close_kept(self._kept)  # a power cycle may take the port away: open it anew
            self._kept = []
            self.dut = None
            try:
                self._reset_and_wait(cell, f"power cycle through {how}")
                self._recovery(cell, "power cycle", "recovered", how)
                return
            except (ConsoleError, BoardError, BoardUnavailable) as exc:  # or no port after it
                self._recovery(cell, "power cycle", "no answer",
                               f"{how}: {str(exc).splitlines()[0]}")
                after_reset = (f"{after_reset}; after a power cycle through {how}: "
                               f"{str(exc).splitlines()[0]}")
        else:
            self._recovery(cell, "power cycle", "skipped",
                           "no power switch apart from its reset")
        self.quarantined = f"no answer after a reset ({after_reset})" + (
            "" if how else "; no power switch apart from its reset")
        self._recovery(cell, "quarantine", "quarantined", self.quarantined)
        self.dirty = ""
        raise BoardQuarantined(f"board quarantined: {self.quarantined}")

    def _reset_and_wait(self, cell: str, reason: str) -> None:
        t0 = time.monotonic()
        if self.dut is None:
            self.dut = self.driver.open()  # the port, the first flash if needed, a reset
            self.opened = True
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
        with work("boot"), self.console.doing("booting"):
            self.console.wait_ready(self.boot_timeout)
        self._step("booted", reason, cell, t0)

    def end(self, cell: str, failed: bool, timeout: float) -> None:
        """After a cell: a failed or troubled cell leaves the board to be reset before the next
        one; a good one closes its MQTT connection and HTTPS server (one round trip that also
        collects whatever reached the console during the cell). A console already broken (e.g.
        the board hung at the cell's end, found by the capture's `tls keylog off`, which fails
        the cell) is not waited for a second time."""
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
