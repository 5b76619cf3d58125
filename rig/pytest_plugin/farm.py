"""Boards on a labgrid farm for one pytest run (rig/boards/places.py): the process where the run
starts (the xdist controller, or the only process) reserves and acquires the place of every
selected board that names one, before any worker starts, and releases them all when the run
ends, however it ends: normal end, failed cells, Ctrl-C, SIGTERM/SIGHUP (which the plugin turns
into Ctrl-C). Ctrl-C while a place is awaited or acquired ends the session at once
(interrupted), after giving back what was reserved or acquired. A kill -9 (or a second Ctrl-C
under `hil run`, which kills pytest) leaves them acquired: `hil run` releases them as soon as
its pytest has died, and otherwise the next run of this runner does, first thing.

Workers get each board's place (or why it could not be had) with their xdist input; a board
whose place could not be had fails its cells with that reason. The places go to `farm.json`
in the run directory; each cell carries its board's `place` and `exporter`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rig.boards.farm import (
    CALL_TIMEOUT,
    INTERRUPT_GRACE_S,
    CallInterrupted,
    HeldPlace,
    LabgridClient,
)
from rig.boards.places import Holding, release_leftovers, state_dir
from rig.errors import RigError
from rig.pytest_plugin.inventory import inventory, rig_in_use, selected_boards
from rig.pytest_plugin.xdist import shared_run_dir
from rig.report.run_dir import FARM_FILE

FARM = pytest.StashKey[dict[str, dict[str, Any]]]()  # board -> HeldPlace json | {"error": ...}
HOLDINGS = pytest.StashKey[list[Holding]]()
INTERRUPTED = pytest.StashKey[bool]()  # the session ended by Ctrl-C/SIGTERM


def _say(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"labgrid: {line}")


@pytest.hookimpl(tryfirst=True)  # before xdist starts its workers (its sessionstart is trylast)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or not rig_in_use(config) or not config.getoption("--hil"):
        return
    boards = [b for b in selected_boards(config)[0] if b.on_farm]
    if not boards:
        return
    hil = inventory(config)
    places: dict[str, dict[str, Any]] = {}
    holdings: list[Holding] = []
    config.stash[FARM] = places
    config.stash[HOLDINGS] = holdings
    try:
        client = LabgridClient(hil.labgrid.address)
        locks = state_dir()
        for note in release_leftovers(client, locks):
            _say(config, note)
    except RigError as exc:
        for b in boards:
            places[b.name] = {"error": f"board {b.name}: {exc}"}
        _write(config, places)
        return
    for board in boards:
        holding = Holding(client, board, locks)
        holdings.append(holding)
        try:
            held = holding.hold(hil.labgrid.acquire_timeout)
            places[board.name] = held.to_json()
            _say(config, f"board {board.name}: place {held.place} on exporter {held.exporter} "
                         f"({held.url}{', power: ' + held.power if held.power else ''})")
        except RigError as exc:
            places[board.name] = {"error": f"board {board.name}: {exc}"}
            _say(config, f"board {board.name}: {exc}")
        except KeyboardInterrupt as exc:  # the session ends here (pytest: interrupted)
            said = str(exc) if isinstance(exc, CallInterrupted) else (
                f"interrupted ({exc})" if str(exc) else "interrupted")
            _say(config, f"board {board.name}: {said} while getting its place")
            for note in holding.notes:
                _say(config, note)
            _write(config, places)
            raise
        for note in holding.notes:
            _say(config, note)
    _write(config, places)


def _write(config: pytest.Config, places: dict[str, dict[str, Any]]) -> None:
    path = shared_run_dir(config) / FARM_FILE
    path.write_text(json.dumps(places, indent=2) + "\n")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: each worker learns the boards' places."""
    places = node.config.stash.get(FARM, None)
    if places is not None:
        node.workerinput["hil_farm"] = json.dumps(places)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[INTERRUPTED] = exitstatus == pytest.ExitCode.INTERRUPTED


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run's end, however it ended (after every worker has stopped): release the places,
    cancel the reservations. Another Ctrl-C meanwhile cuts a call short; what it left is
    given back by the next run (its claim stays)."""
    # after Ctrl-C/SIGTERM each call gets seconds, not the usual CALL_TIMEOUT
    quick = INTERRUPT_GRACE_S if config.stash.get(INTERRUPTED, False) else CALL_TIMEOUT
    for holding in config.stash.get(HOLDINGS, []):
        try:
            problems = holding.release(quick)
        except KeyboardInterrupt:
            problems = ["interrupted while giving the place back"]
        for problem in problems:
            _say(config, f"board {holding.board.name}: {problem} (the next run releases it)")
    config.stash[HOLDINGS] = []


def farm_place(config: pytest.Config, board: str) -> HeldPlace | str | None:
    """The place this run holds for `board`, or why it has none (a message), or None when the
    board is not on a farm."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        places = json.loads(workerinput.get("hil_farm", "{}"))
    else:
        places = config.stash.get(FARM, {})
    entry = places.get(board)
    if entry is None:
        return None
    if "error" in entry:
        return str(entry["error"])
    return HeldPlace.from_json(entry)

