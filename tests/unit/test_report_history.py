"""The report's reading of earlier runs and what it makes of them (rig/report/history.py,
trends.py), on results.json files written here: each status, regressions, schemas the rig
reads or skips with a line, pruning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rig.report.history import Run, collect, prune, read_run
from rig.report.trends import classify, comparable, regressions, series

BOARD = "virtual-0"


def cell(case: str, verdict: str = "pass", mode: str = "ca", hs: float | None = 5.0,
         cell_ms: float = 20.0) -> dict[str, Any]:
    return {"board": BOARD, "mode": mode, "case": case, "verdict": verdict, "reason":
            "" if verdict == "pass" else "it broke", "handshake_ms": hs,
            "properties": {"cell_ms": cell_ms}, "duration_s": cell_ms / 1000}


def write_run(root: Path, run_id: str, cells: list[dict[str, Any]], **extra: Any) -> Path:
    path = root / run_id
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps({"schema": 2, "run": run_id, "hil": False,
                                                   "cells": cells, **extra}))
    return path


def runs_of(tmp_path: Path, verdicts: list[str]) -> list[Run]:
    out = []
    for i, v in enumerate(verdicts):
        run = read_run(write_run(tmp_path, f"20261130-1200{i:02d}-{100 + i}", [cell("a", v)]))
        assert isinstance(run, Run)
        out.append(run)
    return out


def status(tmp_path: Path, verdicts: list[str]) -> str:
    *history, current = runs_of(tmp_path, verdicts)
    return classify(current, comparable(current, history))[(BOARD, "ca", "a")]


def test_each_status(tmp_path: Path) -> None:
    cases = {
        "new failure": ["pass", "pass", "FAIL"],
        "still failing": ["pass", "FAIL", "ERROR"],
        "fixed": ["pass", "FAIL", "pass"],
        "passing": ["pass", "pass"],
        "skipped": ["pass", "skip"],
        "flaky": ["pass", "FAIL", "pass", "FAIL"],
    }
    for i, (want, verdicts) in enumerate(cases.items()):
        assert status(tmp_path / str(i), verdicts) == want, (want, verdicts)
    assert status(tmp_path / "first", ["FAIL"]) == "new failure"  # no history at all
    # a skipped run in between is no verdict: pass, skip, FAIL is a new failure
    assert status(tmp_path / "skip", ["pass", "skip", "FAIL"]) == "new failure"


def test_flapping_over_a_longer_history(tmp_path: Path) -> None:
    assert status(tmp_path, ["FAIL", "pass", "pass", "FAIL", "pass"]) == "flaky"


def test_runs_of_another_kind_or_other_cells_are_not_compared(tmp_path: Path) -> None:
    old = read_run(write_run(tmp_path, "20261130-110000-1", [cell("a", "FAIL")], hil=True))
    other = read_run(write_run(tmp_path, "20261130-110001-2", [cell("b", "FAIL")]))
    now = read_run(write_run(tmp_path, "20261130-110002-3", [cell("a")]))
    assert isinstance(old, Run) and isinstance(other, Run) and isinstance(now, Run)
    assert comparable(now, [old, other]) == []


def test_a_regression_against_the_rolling_median(tmp_path: Path) -> None:
    runs = []
    for i, hs in enumerate([5.0, 5.5, 4.8, 5.2, 9.0]):
        r = read_run(write_run(tmp_path, f"20261130-1300{i:02d}-{i}", [cell("a", hs=hs)]))
        assert isinstance(r, Run)
        runs.append(r)
    flagged = regressions(runs, 0.4)
    assert [(f.board, f.mode, f.metric) for f in flagged] == [(BOARD, "ca", "handshake")]
    assert flagged[0].baseline == 5.1 and "+76 %" in str(flagged[0])
    assert regressions(runs, 0.8) == []  # 76 % is under an 80 % threshold
    assert regressions(runs[-3:], 0.4) == []  # two earlier values: no baseline yet
    assert series(runs, "cell")[(BOARD, "ca")] == [20.0] * 5


def test_schemas_and_broken_files_are_skipped_with_a_line(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    old = write_run(root, "20261101-000000-1", [cell("a")])
    data = json.loads((old / "results.json").read_text())
    del data["schema"]  # what rigs before the schema wrote: read as 1
    (old / "results.json").write_text(json.dumps(data))
    write_run(root, "20261102-000000-2", [cell("a")], schema=99)
    broken = root / "20261103-000000-3"
    broken.mkdir()
    (broken / "results.json").write_text('{"cells": [')
    write_run(root, "20261104-000000-4", [{"board": BOARD}])
    current = read_run(write_run(root, "20261105-000000-5", [cell("a")]))
    assert isinstance(current, Run)
    runs, skipped = collect(current, [root, tmp_path / "nowhere"])
    assert [(r.id, r.schema) for r in runs] == [("20261101-000000-1", 1)]
    text = "\n".join(skipped)
    assert "20261102-000000-2/results.json: skipped, schema 99 (this rig reads 1, 2" in text
    assert "20261103-000000-3/results.json: skipped, not readable JSON" in text
    assert "20261104-000000-4/results.json: skipped, cell 0 lacks board/mode/case/verdict" in text
    assert f"{tmp_path / 'nowhere'}: history directory does not exist" in text


def test_history_from_ci_artifacts(tmp_path: Path) -> None:
    """--history DIR: run directories one or two levels down (an artifact's folder), each run
    once however often it is found; only runs older than the current one, by run id, whatever
    the current run's directory is called (a CI artifact's `hil-run`)."""
    root = tmp_path / "runs"
    for i in range(5):
        write_run(tmp_path / "artifacts" / f"night-{i}", "hil-run",
                  [cell("a")], run=f"20261120-00000{i}-{i}")
    write_run(root, "20261120-000004-4", [cell("a")])  # the same run as night-4's
    write_run(root, "20261130-000000-9", [cell("a")])  # newer than the current one
    current = read_run(write_run(tmp_path / "download", "hil-run", [cell("a")],
                                 run="20261125-000000-8"))
    assert isinstance(current, Run)
    runs, skipped = collect(current, [root, tmp_path / "artifacts"])
    assert [r.id for r in runs] == [f"20261120-00000{i}-{i}" for i in range(5)]
    assert skipped == []


def test_odd_cells_are_read_safely(tmp_path: Path) -> None:
    """Times that are no finite number and properties that are no table, as an older or
    hand-edited results.json may have them, are no time and no properties."""
    odd = [dict(cell("a"), properties=None, handshake_ms="fast"),
           dict(cell("b"), properties=[1], handshake_ms=float("inf")),
           dict(cell("c"), handshake_ms=True, duration_s=float("nan"))]
    run = read_run(write_run(tmp_path, "20261130-000000-1", odd))
    assert isinstance(run, Run)
    assert [(c["properties"], c["handshake_ms"]) for c in run.cells] == [
        ({}, None), ({}, None), ({"cell_ms": 20.0}, None)]
    assert series([run], "handshake") == {} and run.cells[2]["duration_s"] is None


def test_prune_keeps_the_newest_and_the_current(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    ids = [f"20261130-0{i}0000-{i}" for i in range(5)]
    for run_id in ids:
        write_run(root, run_id, [])
    (root / "latest").symlink_to(ids[-1])
    (root / "notes").mkdir()
    removed = prune(root, 2, protect=root / ids[0])
    assert sorted(p.name for p in removed) == ids[1:3]
    assert sorted(p.name for p in root.iterdir()) == sorted([ids[0], *ids[3:], "latest",
                                                             "notes"])
    assert prune(root, 0, protect=root / ids[0]) == []
