"""The rig's collection and report hooks: parametrization over modes, HTTPS modes, negative
cases and boards; --mode deselection; and every report's cell (`hil_cell`), with the cause of a
failure (a dead board, console noise, a dead broker or observer) put in front of its symptom;
under --hil, boards that were not there fail the session (MissingBoards, --hil-allow-missing)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rig.cases.negative import CASES
from rig.config import MODES, WEB_MODES
from rig.errors import RigError
from rig.local import spans
from rig.pytest_plugin.inventory import (
    BROKER_MARKS,
    CELL_FAILED,
    CONSOLE,
    OBSERVER,
    RIG_FIXTURES,
    board_profile,
    inventory,
    selected_boards,
)
from rig.pytest_plugin.results import cell_fields, cell_identity
from rig.report.runner_load import Reading, reading

CALL_START = pytest.StashKey[Reading | None]()  # CPU stall total as the cell's call started
SETUP_START = pytest.StashKey[float]()  # Unix time the cell's set-up started


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`mode` over the broker modes (narrowed by @pytest.mark.modes), `web_mode` over the HTTPS
    modes, `negative_case` over the negative matrix; `board_driver` over the selected boards, or
    one skipped case that says why there is none. --mode deselects the rest (see below).
    Only the rig's tests (those using its fixtures) are parametrized: another project's
    `mode` argument is its own."""
    if not RIG_FIXTURES & set(metafunc.fixturenames):
        return
    if "mode" in metafunc.fixturenames:
        modes = list(MODES)
        marker = metafunc.definition.get_closest_marker("modes")
        if marker is not None:
            modes = [m for m in modes if m in marker.args]
        metafunc.parametrize("mode", modes, scope="session")
    explicit = {name.strip() for m in metafunc.definition.iter_markers("parametrize")
                for name in (m.args[0].split(",") if isinstance(m.args[0], str) else m.args[0])}
    if "web_mode" in metafunc.fixturenames and "web_mode" not in explicit:
        metafunc.parametrize("web_mode", WEB_MODES)
    if "negative_case" in metafunc.fixturenames:
        metafunc.parametrize("negative_case", CASES, ids=[c.id for c in CASES])
    if "board_driver" in metafunc.fixturenames:
        boards, why = selected_boards(metafunc.config)
        if boards and metafunc.definition.get_closest_marker("chip_clock") is not None:
            clocked = [b for b in boards if b.chip_clock]
            if not clocked:
                why = ("no selected board has the chip's clock rules (esp32, or a virtual board "
                       "with variant = \"esp\"): " + ", ".join(
                           f"{b.name} is virtual {b.variant}" for b in boards))
            boards = clocked
        if boards:
            metafunc.parametrize("board_driver", [
                pytest.param(b.name, marks=pytest.mark.xdist_group(b.name)) for b in boards],
                indirect=True, scope="session")
        else:
            metafunc.parametrize("board_driver", [pytest.param(
                None, marks=pytest.mark.skip(reason=why), id="no-board")], indirect=True,
                scope="session")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of the virtual agent itself (fixture `virtual_board`) join the xdist group of the
    board they use. --mode M: tests that run in another mode are deselected (tests without a
    mode stay)."""
    agent_tests = [item for item in items
                   if "virtual_board" in getattr(item, "fixturenames", ())]
    if agent_tests:  # only these need the inventory here
        agent_board = next((b.name for b in inventory(config).boards if b.kind == "virtual"),
                           None)
        for item in agent_tests:
            if agent_board:
                item.add_marker(pytest.mark.xdist_group(agent_board))
    wanted = config.getoption("--mode")
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        mode, _, _ = cell_identity(item)
        (keep if (mode is None or not wanted or mode in wanted) and _applies(item)
         else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _applies(item: pytest.Item) -> bool:
    """Whether a board cell exists for its board's firmware (rig/device/profile.py): no HTTPS
    cells for a profile without https, no clock cell for one the rig sets no clock on, no
    resilience cell for one that does not reconnect. Such cells are not collected for that
    board (not skipped: nothing is missing)."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    board = params.get("board_driver")
    if not board:
        return True
    profile = board_profile(item.config, board)
    if "web_mode" in getattr(item, "fixturenames", ()) and not profile.https:
        return False
    if item.get_closest_marker("resilience") is not None and not profile.reconnect:
        return False
    return item.get_closest_marker("chip_clock") is None or profile.clock


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Where the cell's time goes starts here: work done between cells is no cell's."""
    spans.take()
    item.stash[SETUP_START] = time.time()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """How busy the runner was while the cells ran (rig/report/runner_load.py): the CPU
    stall total as the cell's call starts; its report carries it with the one at its end
    (`hil_load`)."""
    item.stash[CALL_START] = reading()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Every report carries its matrix cell (`hil_cell`: board, mode, case, expected) for the
    process that reports it; a failed test's report also carries the board's last lines and
    its slice of the broker log."""
    report = yield
    report.hil_cell = cell_fields(item)
    start = item.stash.get(CALL_START, None) if call.when == "call" else None
    end = reading() if start is not None else None
    if start is not None and end is not None:  # a list: it travels to the xdist controller
        report.hil_load = [*start, *end]
    if call.when == "teardown" and SETUP_START in item.stash:  # the cell's own work in it
        report.hil_timing = [item.stash[SETUP_START], spans.union_s(spans.take())]
    if report.skipped:
        missing = _missing_board(item, call, report.hil_cell["board"])
        if missing:  # a list: it travels with the report to the xdist controller
            report.hil_missing = missing
    if (report.failed or hasattr(report, "wasxfail")) and call.when != "teardown":
        item.stash[CELL_FAILED] = True  # its board is reset before the next cell
    if report.failed and call.when != "teardown":
        _name_the_cause(item, report)
    if report.failed and hasattr(report.longrepr, "addsection"):
        console = item.stash.get(CONSOLE, None)
        if console is not None:
            report.longrepr.addsection(f"board {console.board}: last lines (> = sent)",
                                       console.tail(40, indent=""))
        for b, mark in item.stash.get(BROKER_MARKS, []):
            lines = b.log_since(mark)[-40:]
            report.longrepr.addsection(f"{b.name} log during this test ({b.log_path})",
                                       "\n".join(lines) or "(nothing)")
    return report


def _causes(item: pytest.Item) -> list[str]:
    """What broke under a failing cell, named: the board's process died, garbage on its
    console, a broker or the observer gone. Empty when all of them are healthy."""
    causes: list[str] = []
    console = item.stash.get(CONSOLE, None)
    if console is not None:
        death = console.health()
        if death:
            causes.append(f"board {console.board}: {death}")
        noise = console.noise_summary()
        if noise:
            causes.append(noise)
    for b, _ in item.stash.get(BROKER_MARKS, []):
        death = b.death()
        if death:
            causes.append(death)
    obs = item.stash.get(OBSERVER, None)
    if obs is not None and not causes:  # a dead broker also takes the observer with it
        death = obs.death()
        if death:
            causes.append(death)
    return causes


def _name_the_cause(item: pytest.Item, report: pytest.TestReport) -> None:
    """Put the cause in front of the symptom: in the report's message (JUnit, the summary),
    as `hil_cause` on the report, and as a section with the whole text; results.json takes
    it from the message."""
    causes = _causes(item)
    if not causes:
        return
    crash = getattr(report.longrepr, "reprcrash", None)
    symptom = str(getattr(crash, "message", "") or "").strip()
    first = [c.splitlines()[0] for c in causes]
    new = [c for c in first if c not in symptom]
    if not new:
        return
    cause = "; ".join(new)
    report.hil_cause = cause  # type: ignore[attr-defined]
    if crash is not None:
        crash.message = f"{cause} (symptom: {symptom.splitlines()[0] if symptom else '?'})"
    longrepr: Any = report.longrepr
    if hasattr(longrepr, "addsection"):
        longrepr.addsection("cause", "\n\n".join(causes))


def _missing_board(item: pytest.Item, call: pytest.CallInfo[None],
                   board: str) -> list[str] | None:
    """Under --hil, why a skipped board cell's board was not there: [board, reason] when the
    skip comes from a RigError whose outcome is "skip" (BoardUnavailable: not attached,
    unreachable, no build, Wi-Fi variables unset; the fixtures call pytest.skip while handling
    it, so it is the skip's context); ["", reason] for the `no-board` cell when hil.toml lists
    no esp32 board at all. None for any other skip: one a test chose, or the `no-board` cell of
    a --board selection without an esp32 board (-k, --mode and --board deselect, not skip)."""
    if not item.config.getoption("--hil") or board == "host":
        return None
    if board == "none":
        hil = inventory(item.config)
        if any(b.kind == "esp32" for b in hil.boards):
            return None
        return ["", f"no esp32 board in {hil.source}: --hil runs the physical boards it lists "
                    "(a [[boards]] table with kind = \"esp32\"); without --hil the virtual "
                    "ones run"]
    exc = call.excinfo.value if call.excinfo is not None else None
    for _ in range(4):  # the skip, the error it was raised while handling, ...
        if exc is None or isinstance(exc, RigError):
            break
        exc = exc.__cause__ or exc.__context__
    if isinstance(exc, RigError) and exc.outcome == "skip":
        return [board, str(exc).removeprefix(f"board {board}: ")]
    return None


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Under --hil, where reports arrive (the one process, or the xdist controller): the
    boards that were not there (MissingBoards)."""
    if config.getoption("--hil") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(
            MissingBoards(config.getoption("--hil-allow-missing")), "hil-missing-boards")


class MissingBoards:
    """`pytest --hil`'s verdict on boards that were not there, as `hil run --hil` has it: a
    board cell skipped because its board is missing, unreachable or unbuilt fails the session
    (unless --hil-allow-missing), and so does a hil.toml without any esp32 board (even with
    it: nothing physical can run); the terminal summary names each board and why."""

    def __init__(self, allow_missing: bool) -> None:
        self.allow_missing = allow_missing
        self.boards: dict[str, dict[str, int]] = {}  # board ('' = none at all) -> why -> cells

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        missing = getattr(report, "hil_missing", None)
        if missing:
            board, why = (str(part) for part in missing)
            reasons = self.boards.setdefault(board, {})
            reasons[why] = reasons.get(why, 0) + 1

    def fails(self) -> bool:
        return "" in self.boards or bool(self.boards and not self.allow_missing)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.fails() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.boards:
            return
        verdict = ("accepted (--hil-allow-missing)" if not self.fails() else
                   "counted as a failure" if self.allow_missing else
                   "counted as a failure (--hil-allow-missing accepts them)")
        terminalreporter.write_sep("=", f"boards that did not run (--hil): {verdict}",
                                   red=self.fails(), yellow=not self.fails())
        for board, reasons in sorted(self.boards.items()):
            if not board:
                terminalreporter.write_line("; ".join(reasons) + " (a failure even with "
                                            "--hil-allow-missing)")
                continue
            cells = sum(reasons.values())
            terminalreporter.write_line(f"board {board}: {cells} cell(s) skipped: "
                                        + "; ".join(sorted(reasons)))
