"""pytest plugin behind `hil run` (`-p rig.matrix`): one line of live progress per matrix cell
on stderr, and every cell's verdict in a JSON file (`--hil-results`).

A cell is one test on one board (or the host) in one mode; its verdict combines set-up, call and
tear-down (a sanitizer report at tear-down fails the cell). A negative cell (tests/test_negative.py)
expects a refusal: it passes when the device and the broker gave the expected reasons, which it
carries in `device_reason` / `broker_reason`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest


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
    properties: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


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


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple):
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).strip().splitlines()[0] if crash.message else ""
    return str(longrepr).strip().splitlines()[-1] if longrepr else ""


class MatrixReporter:
    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.path = path
        self.cells: dict[str, Cell] = {}
        self.done = 0

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            callspec = getattr(item, "callspec", None)
            p = callspec.params if callspec else {}
            board = p.get("board_driver") or ("host" if "board_driver" not in p else "none")
            mode, case, expected = cell_identity(item)
            self.cells[item.nodeid] = Cell(item.nodeid, board, mode or "", case, expected)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cell = self.cells.get(report.nodeid)
        if cell is None:
            return
        cell.duration_s += report.duration
        if report.when == "call":
            cell.properties.update(dict(report.user_properties))
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
        if report.when == "teardown":
            self.done += 1
            hs = f"{cell.handshake_ms:g} ms" if cell.handshake_ms is not None else ""
            line = (f"[{self.done:>2}/{len(self.cells)}] {cell.board:<12} {cell.mode:<12} "
                    f"{cell.case:<28} {cell.verdict:<5} {cell.cipher_suite} {hs}")
            if cell.verdict != "pass":
                line += f"  {cell.reason}"
            print(line.rstrip(), file=sys.stderr, flush=True)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        data = {"exitstatus": int(exitstatus), "cells": [asdict(c) for c in self.cells.values()]}
        self.path.write_text(json.dumps(data, indent=2) + "\n")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("hil").addoption("--hil-results", default=None,
                                     help="write every matrix cell's verdict to this JSON file")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--hil-results")
    if path:
        config.pluginmanager.register(MatrixReporter(config, Path(path)), "hil-matrix-reporter")
