"""What a run reports: each matrix cell (one test on one board, or the host, in one mode) with
its verdict, live on stderr and in results.json (`--hil-results`, MatrixReporter), and its
JUnit name `<board>.<mode>.<case>` (JunitNames).

A cell's verdict combines set-up, call and tear-down (a board that died or printed garbage
during the cell fails it at tear-down). A negative cell (rig/cases/test_negative.py) expects a
refusal: it passes when the device and the broker gave the expected reasons, which it carries in
`device_reason` / `broker_reason`.

With pytest-xdist (`-n`, one worker per board) both run on the controller: they learn each cell
from the `hil_cell` the plugin attaches to every report (hooks.py), and record the worker that
ran it."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rig.boards.virtual import what_it_is
from rig.pytest_plugin.inventory import inventory
from rig.pytest_plugin.junit import add_suite_property, name_case
from rig.report.runner_load import Reading, window_share


@dataclass
class Cell:
    nodeid: str
    board: str  # a board name, "host" for host-side cells, "none" when no board was selected
    mode: str
    case: str
    expected: str = "connect"  # or "refused" (negative matrix)
    verdict: str = "pass"
    reason: str = ""
    cipher_suite: str = ""
    handshake_ms: float | None = None
    device_reason: str = ""
    broker_reason: str = ""
    client_reason: str = ""  # HTTPS refusals: what the host client said
    worker: str = ""  # the pytest-xdist worker that ran it ("" without -n)
    properties: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    # where its time went (hooks.py `hil_timing`): when its set-up started (Unix seconds),
    # and the part of its set-up, call and tear-down that was its own work (rig/local/spans.py)
    started: float | None = None
    work_ms: dict[str, float] = field(default_factory=dict)  # kind -> ms, '' = all kinds


def cell_identity(item: pytest.Item) -> tuple[str | None, str, str]:
    """(mode, case, expected) of a collected test: the broker mode, HTTPS mode or negative
    case's mode (None: no mode); the case name as JUnit and the summary show it; and whether
    the test expects a connection ("connect") or a refusal ("refused")."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    case = getattr(item, "originalname", item.name).removeprefix("test_")
    negative = params.get("negative_case")
    if negative is not None:
        return negative.mode, f"refused-{negative.id.removeprefix(negative.mode + '-')}", \
            "refused"
    mode = params.get("mode") or params.get("web_mode")
    if "web_case" in params:
        return mode, f"{case}-{params['web_case']}", "refused"
    return (str(mode) if mode else None), case, "connect"


_OWN_ERROR = re.compile(r"^rig(?:\.\w+)+\.(\w+): ")


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple):
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        first = str(crash.message).strip().splitlines()[0] if crash.message else ""
        # `rig.device.console.BoardDied: ` -> `BoardDied: `; the rig's own pytest.fail(reason)
        # messages are the reason itself
        return _OWN_ERROR.sub(r"\1: ", first.removeprefix("Failed: "))
    return str(longrepr).strip().splitlines()[-1] if longrepr else ""


def cell_fields(item: pytest.Item) -> dict[str, str]:
    """board, mode, case and expected of a collected test: what the rig's conftest attaches to
    each of its reports (as `hil_cell`), so the process that reports them (the xdist
    controller, which has no items) knows the cell."""
    callspec = getattr(item, "callspec", None)
    p = callspec.params if callspec else {}
    board = p.get("board_driver") or ("host" if "board_driver" not in p else "none")
    mode, case, expected = cell_identity(item)
    return {"board": str(board), "mode": mode or "", "case": case, "expected": expected}


def case_name(cell: dict[str, str]) -> str | None:
    """The JUnit name `<board>.<mode>.<case>` of a board test (or a host test in a mode);
    None for other tests, which keep pytest's own name."""
    if cell["board"] == "none" or (cell["board"] == "host" and not cell["mode"]):
        return None
    return ".".join(p for p in (cell["board"], cell["mode"], cell["case"]) if p)


def _plain_nodeid(nodeid: str) -> str:
    """A node id without the `@group` suffix xdist's loadgroup adds."""
    at = nodeid.rfind("@")
    return nodeid[:at] if at > nodeid.rfind("]") and at > nodeid.rfind("::") else nodeid


class MatrixReporter:
    """Runs where reports arrive: the one pytest process, or the xdist controller."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.path = path
        self.cells: dict[str, Cell] = {}
        self.order: dict[str, int] = {}  # nodeid -> collection index
        self.done = 0
        self.first_call: dict[str, Reading] = {}  # worker -> CPU stall as its 1st call started
        self.last_end: list[Reading] = []  # the latest call end's (rig/report/runner_load.py)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.order = {_plain_nodeid(item.nodeid): i for i, item in enumerate(session.items)}

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self.order:  # every worker collects the same tests
            self.order = {_plain_nodeid(nodeid): i for i, nodeid in enumerate(ids)}

    def _cell(self, report: pytest.TestReport) -> Cell:
        nodeid = _plain_nodeid(report.nodeid)
        cell = self.cells.get(nodeid)
        if cell is None:
            fields = getattr(report, "hil_cell", None) or {
                # no identity: e.g. the worker running it crashed before reporting
                "board": "?", "mode": "", "case": nodeid.rsplit("::", 1)[-1], "expected": ""}
            cell = self.cells[nodeid] = Cell(nodeid, **fields)
        worker = getattr(report, "worker_id", None)
        if worker:
            cell.worker = str(worker)
        return cell

    def _load(self, report: pytest.TestReport) -> None:
        """The CPU stall readings of a cell's call (hooks.py `hil_load`): its worker's first
        call start and the latest end, for the run's `cpu_pressure`."""
        load = getattr(report, "hil_load", None)
        if not (isinstance(load, list) and len(load) == 4):
            return
        start, end = (int(load[0]), int(load[1])), (int(load[2]), int(load[3]))
        worker = str(getattr(report, "worker_id", ""))
        if worker not in self.first_call or start[1] < self.first_call[worker][1]:
            self.first_call[worker] = start
        if not self.last_end or end[1] > self.last_end[0][1]:
            self.last_end = [end]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cell = self._cell(report)
        cell.duration_s += report.duration
        if report.when == "setup":  # a cell that fails there still says where it ran
            cell.properties.update(dict(report.user_properties))
        if report.when == "call":
            cell.properties.update(dict(report.user_properties))
            self._load(report)
            cell.cipher_suite = str(cell.properties.get("cipher_suite", ""))
            hs = cell.properties.get("handshake_ms")
            cell.handshake_ms = float(hs) if hs is not None else None
            cell.device_reason = str(cell.properties.get("device_reason", ""))
            cell.broker_reason = str(cell.properties.get("broker_reason", ""))
            cell.client_reason = str(cell.properties.get("client_reason", ""))
        if cell.verdict == "pass":
            if report.failed:
                cell.verdict = "FAIL" if report.when == "call" else "ERROR"
                cell.reason = _reason(report)
            elif report.skipped:
                cell.verdict, cell.reason = "skip", _reason(report)
        timing = getattr(report, "hil_timing", None)
        if isinstance(timing, list) and len(timing) == 2 and isinstance(timing[1], dict):
            cell.started = float(timing[0])
            cell.work_ms = {str(k): round(float(v) * 1000, 2) for k, v in timing[1].items()}
        if report.when == "teardown":  # what the cell's end added (its capture)
            props = dict(report.user_properties)
            for key in ("transcript",):  # written at the cell's end
                if props.get(key):
                    cell.properties[key] = props[key]
            capture = props.get("capture")
            if capture:
                cell.properties["capture"] = capture
                for key in ("capture_decode", "capture_lost"):
                    if props.get(key):
                        cell.properties[key] = props[key]
                if cell.verdict in ("FAIL", "ERROR") and str(capture).endswith(".pcapng"):
                    cell.reason += f" [capture: {capture}]"
        # "???": xdist's report for a test whose worker crashed (no tear-down follows)
        if report.when in ("teardown", "???"):
            self.done += 1
            hs = f"{cell.handshake_ms:g} ms" if cell.handshake_ms is not None else ""
            total = max(len(self.order), self.done)
            line = (f"[{self.done:>2}/{total}] {cell.board:<12} {cell.mode:<12} "
                    f"{cell.case:<28} {cell.verdict:<5} {cell.cipher_suite} {hs}")
            if cell.verdict != "pass":
                line += f"  {cell.reason}"
            print(line.rstrip(), file=sys.stderr, flush=True)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        last = len(self.order)
        cells = sorted(self.cells.values(), key=lambda c: self.order.get(c.nodeid, last))
        data = {"exitstatus": int(exitstatus), "collected": len(self.order),
                "cpu_pressure": window_share(list(self.first_call.values()),
                                             self.last_end),
                "cells": [asdict(c) for c in cells]}
        self.path.write_text(json.dumps(data, indent=2) + "\n")


class JunitNames:
    """junit.xml, written by the process that receives the reports (the xdist controller with
    -n): a board test is named <board>.<mode>.<case> (a host test in a mode host.<mode>.<case>),
    and a suite property board.<name> says what a virtual board stands for."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.described: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cell = getattr(report, "hil_cell", None)
        if report.when == "setup" and cell is not None:
            name = case_name(cell)
            if name:
                name_case(self.config, report, name)
            self._describe(cell["board"])

    def _describe(self, board: str) -> None:
        """The suite property of a board, the first time one of its cells reports."""
        if board in self.described or board in ("host", "none", "?"):
            return
        self.described.add(board)
        spec = next((b for b in inventory(self.config).boards if b.name == board), None)
        if spec is not None and spec.kind == "virtual":
            add_suite_property(self.config, f"board.{board}", what_it_is(spec.variant))
