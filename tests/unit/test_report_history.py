"""The report's reading of earlier runs and what it makes of them (rig/report/history.py,
trends.py), on results.json files written here: each status, regressions, schemas the rig
reads or skips with a line, pruning."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rig.report.history import Run, collect, prune, read_run
from rig.report.runner_load import PSI_CPU, cpu_stalled_us, reading, window_share
from rig.report.trends import (
    classify,
    comparable,
    judged,
    rank_test,
    rank_test_can_decide,
    regressions,
    series,
    speed_factors,
)

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


HANDSHAKES = {"ca": 5.0, "mutual": 7.0, "psk": 1.0}  # a virtual board's, whole milliseconds
CONTROL_MS = 2.5  # the host's broker_preflight handshake
JITTER = [1.0, 1.08, 0.94, 1.04, 0.97, 1.1, 0.92, 1.02]  # run to run on a quiet runner


def timed_run(root: Path, i: int, control: float = 1.0, slower: dict[str, float] | None = None,
              samples: int = 1, pressure: float | None = None) -> Run:
    """Run i of a synthetic history: the host control and two virtual boards in three modes.
    Every time is scaled by the run's JITTER; the control by `control` too (a busy runner),
    a board's handshakes by slower[board] (a board that is slower, or also slowed by the busy
    runner). A cell time is its handshake plus 15 ms of the runner's work (slowed as the
    control is). Board handshakes are whole milliseconds, as measured."""
    jitter = JITTER[i % len(JITTER)]
    cells = []
    for mode, hs in HANDSHAKES.items():
        cells.append({"board": "host", "mode": mode, "case": "broker_preflight",
                      "verdict": "pass", "handshake_ms": round(CONTROL_MS * control * jitter, 1),
                      "properties": {}})
        for board in (BOARD, "virtual-esp"):
            handshake = float(max(1, round(hs * (slower or {}).get(board, 1.0) * jitter)))
            cell_ms = round(15.0 * control * jitter + handshake, 1)
            for n in range(samples):
                cells.append(dict(cell(f"connect_publish-{n}", mode=mode, hs=handshake,
                                       cell_ms=cell_ms), board=board))
    extra = {} if pressure is None else {"cpu_pressure": pressure}
    run = read_run(write_run(root, f"20261201-{i:06d}-{i}", cells, **extra))
    assert isinstance(run, Run)
    return run


def history_of(root: Path, earlier: int = 6, samples: int = 1) -> list[Run]:
    """Quiet earlier runs, one of them on a busy runner (everything twice as slow)."""
    busy = {BOARD: 2.0, "virtual-esp": 2.0}
    return [timed_run(root, i, 2.0 if i == 2 else 1.0, busy if i == 2 else None, samples)
            for i in range(earlier)]


def test_load_on_the_runner_flags_nothing(tmp_path: Path) -> None:
    """Three runs on a busy runner: every time 1.6-2.2 times slower, the host's control too;
    the psk handshake 1 -> 2 ms. Nothing is a regression."""
    history = history_of(tmp_path / "history")
    for i, (ctl, boards) in enumerate([(1.9, 2.1), (1.6, 2.0), (2.2, 1.8)]):
        current = timed_run(tmp_path / str(i), 10 + i, ctl, {BOARD: boards, "virtual-esp": boards})
        runs = [*history, current]
        assert regressions(runs, 0.4) == [], (ctl, boards)
        assert speed_factors(runs)[-1] >= 1.5


def test_a_board_twice_as_slow_is_flagged(tmp_path: Path) -> None:
    """virtual-0's handshakes take twice as long, on a quiet and on a busy runner: its ca and
    mutual handshakes are flagged (psk: 1 -> 2 ms is under the minimum difference), the other
    board and the cell times are not."""
    history = history_of(tmp_path / "history")
    quiet = timed_run(tmp_path, 16, 1.0, {BOARD: 2.0})  # JITTER 1.0
    busy = timed_run(tmp_path, 24, 2.0, {BOARD: 4.0, "virtual-esp": 2.0})
    for current in (quiet, busy):
        flagged = regressions([*history, current], 0.4)
        assert [(f.board, f.mode, f.metric) for f in flagged] == [
            (BOARD, "ca", "handshake"), (BOARD, "mutual", "handshake")], current.id
    # the controls: 2.5 ms (quiet) and 5.0 ms (busy) against the earlier runs' median 2.65 ms
    quiet_ca = regressions([*history, quiet], 0.4)[0]
    assert (quiet_ca.measured, quiet_ca.measured_baseline) == (10.0, 5.0)
    assert quiet_ca.factor == pytest.approx(2.5 / 2.65)
    assert quiet_ca.value == pytest.approx(10.0 / quiet_ca.factor)
    text = str(quiet_ca)
    assert re.search(r"^virtual-0 ca: handshake 10\.6 ms against a rolling median of 5\.\d ms "
                     r"\(\+\d+ %, \+\d\.\d ms\); measured 10\.0 against 5\.0 ms, runner speed "
                     r"factor 0\.94; above the spread of 6 earlier runs \(fence \d+\.\d ms\)$",
                     text), text
    busy_ca = regressions([*history, busy], 0.4)[0]
    assert (busy_ca.measured, busy_ca.measured_baseline) == (20.0, 5.0)
    assert busy_ca.factor == pytest.approx(5.0 / 2.65)
    assert busy_ca.value == pytest.approx(20.0 / busy_ca.factor)
    assert "measured 20.0 against 5.0 ms, runner speed factor 1.89" in str(busy_ca)


def test_a_busy_runner_that_the_control_missed_is_not_judged(tmp_path: Path) -> None:
    """Measured on 2 cores beside two busy loops: the boards' times doubled while the host's
    control even got quicker (it ran before the workers competed for the CPU); the CPU
    pressure of the run (here 0.80 against about 0.4; measured: 0.85-0.89 against 0.51-0.54)
    says the runner was busy, so
    nothing is judged, and the reason is given. The same times on a quiet runner are
    flagged: it is the pressure that decides."""
    history = [timed_run(tmp_path / "history", i, pressure=0.37 + i / 100) for i in range(6)]
    slowed = {BOARD: 2.0, "virtual-esp": 2.0}
    loaded = timed_run(tmp_path, 16, 0.85, slowed, pressure=0.80)
    compared, why = judged([*history, loaded])
    assert compared == history
    assert re.fullmatch(r"the runner was busy: some task waited for a CPU during 80 % of run "
                        r"\S+ against a median of 40 % in 6 earlier run\(s\) "
                        r"\(Linux /proc/pressure/cpu\)", why), why
    quiet = timed_run(tmp_path / "quiet", 16, 0.85, slowed, pressure=0.40)
    compared, why = judged([*history, quiet])
    assert why == "" and compared[-1] is quiet
    assert {(f.board, f.mode) for f in regressions(compared, 0.4)} >= {(BOARD, "ca")}
    # an earlier busy run is left out of the baseline; without earlier figures, 75 % is busy
    busy_before = timed_run(tmp_path / "b", 3, 2.0, slowed, pressure=0.9)
    assert busy_before not in judged([*history, busy_before, quiet])[0]
    few = [timed_run(tmp_path / "c", i) for i in range(3)]
    assert judged([*few, timed_run(tmp_path / "d", 5, pressure=0.8)])[1]
    assert judged([*few, timed_run(tmp_path / "f", 7, pressure=0.7)])[1] == ""
    # fewer earlier runs than a judgement needs: nothing to say (a first run that built the
    # firmware is not "busy")
    assert judged([*few[:2], timed_run(tmp_path / "e", 6, pressure=0.9)])[1] == ""


def test_busy_nights_in_a_row_do_not_become_the_baseline(tmp_path: Path) -> None:
    """Three quiet runs, then six on a busy runner: each busy one is judged against the quiet
    runs before it, so none of them joins the baseline, and a seventh is busy too."""
    quiet = [timed_run(tmp_path / "q", i, pressure=0.45) for i in range(3)]
    loaded = [timed_run(tmp_path / "l", 10 + i, pressure=0.85) for i in range(7)]
    compared, why = judged([*quiet, *loaded])
    assert compared == quiet and why


def test_absurd_times_are_no_times(tmp_path: Path) -> None:
    """A results.json with 1e300 ms handshakes (or a tiny control) makes no crash: such values
    are read as no value at all."""
    runs = [timed_run(tmp_path / str(i), i) for i in range(4)]
    odd = [read_run(write_run(tmp_path / "odd", f"20261203-00000{i}-{i}",
                              [cell("a", hs=hs), dict(cell("broker_preflight", hs=1e-320),
                                                      board="host")]))
           for i, hs in enumerate([1e300, 1e300, 5.0])]
    assert all(isinstance(r, Run) for r in odd)
    history = [*runs, *[r for r in odd if isinstance(r, Run)]]
    regressions(history, 0.4)  # no OverflowError, no ZeroDivisionError
    assert series(history, "handshake")[(BOARD, "ca")][-3:-1] == [None, None]


def test_the_runs_cpu_pressure_is_read_from_the_kernel(tmp_path: Path) -> None:
    """reading() takes Linux's /proc/pressure/cpu (where the kernel has it) and the monotonic
    clock; a file in its format stands for a kernel with a known stall."""
    if PSI_CPU.exists():
        now = reading()
        assert now is not None and now[0] >= 0 and now[1] > 0
    psi = tmp_path / "cpu"
    psi.write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n"
                   "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    assert cpu_stalled_us(psi) == 1000
    assert reading(tmp_path / "none") is None


def test_the_window_starts_when_every_worker_runs_cells() -> None:
    """Worker 1 started its cells at t=10 s while worker 2 still built its firmware until
    t=40 s: only the stall from 40 s to the last end (100 s) counts."""
    first_starts = [(1_000_000, 10_000_000), (25_000_000, 40_000_000)]
    ends = [(55_000_000, 100_000_000)]
    assert window_share(first_starts, ends) == 0.5  # 30 s of stall over 60 s
    assert window_share([(0, 5)], [(10**9, 6)]) == 1.0  # capped
    assert window_share([], ends) is None
    assert window_share([(0, 10)], [(0, 10)]) is None  # no window


def test_one_millisecond_more_is_no_regression(tmp_path: Path) -> None:
    """Whole milliseconds: one sample of 2 ms against 1 ms is +100 % but only 1 ms more; 3 ms
    is 2 ms more and flagged."""
    runs = [read_run(write_run(tmp_path, f"20261202-00000{i}-{i}", [cell("a", mode="psk", hs=hs)]))
            for i, hs in enumerate([1.0, 1.0, 1.0, 1.0, 2.0])]
    assert all(isinstance(r, Run) for r in runs)
    history: list[Run] = [r for r in runs if isinstance(r, Run)]
    assert regressions(history, 0.4) == []
    three = read_run(write_run(tmp_path, "20261202-000009-9", [cell("a", mode="psk", hs=3.0)]))
    assert isinstance(three, Run)
    assert [(f.mode, f.value) for f in regressions([*history[:-1], three], 0.4)] == [
        ("psk", 3.0)]


def test_the_rank_test(tmp_path: Path) -> None:
    """With several samples per board and mode, a median pulled up by half of them is not
    significant; all of them higher is, and the flag says by what p-value."""
    assert rank_test([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]) < 0.01
    assert rank_test([1, 3, 5, 7, 9], [2, 4, 6, 8, 10]) > 0.5
    assert rank_test([1, 1], [1, 1, 1]) == 1.0
    assert not rank_test_can_decide(1, 100) and rank_test_can_decide(3, 10)
    history = history_of(tmp_path / "history", earlier=8, samples=4)
    half = timed_run(tmp_path, 30, samples=4)
    # two of virtual-0's four ca handshakes (5 ms) take 14 ms, two 1 ms: the median (7.5 ms)
    # is above the spread and material, the ranks are no evidence (without them: flagged)
    for c in half.cells:
        if c["board"] == BOARD and c["mode"] == "ca" and c["case"][-1] in "01":
            c["handshake_ms"] = 14.0
        elif c["board"] == BOARD and c["mode"] == "ca":
            c["handshake_ms"] = 1.0
    assert regressions([*history, half], 0.4) == []
    slow = timed_run(tmp_path, 31, 1.0, {BOARD: 2.0}, samples=4)
    flagged = regressions([*history, slow], 0.4)
    assert [(f.mode, f.metric) for f in flagged] == [("ca", "handshake"), ("mutual", "handshake")]
    assert all(f.p is not None and f.p < 0.01 for f in flagged)
    assert ", rank test p " in str(flagged[0])


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


def test_reconnect_and_detection_times_are_trends_of_their_own(tmp_path: Path) -> None:
    """The resilience cells' reconnect_ms and detect_ms: a series per board and mode, never
    mixed into the cell time; a failed cell's value is no sample."""
    runs: list[Run] = []
    reconnects: tuple[object, ...] = (230.0, 240.0, "junk")
    for i, reconnect in enumerate(reconnects):
        restart = cell("broker_restart", cell_ms=0.0)
        restart["properties"] = {"reconnect_ms": reconnect, "offline_ms": 300}
        silent = cell("silent_link", verdict="pass" if i < 2 else "FAIL")
        silent["properties"] = {"detect_ms": 2010.0 + i, "reconnect_ms": 250.0}
        run = read_run(write_run(tmp_path, f"2026120{i}-050000-1", [restart, silent]))
        assert isinstance(run, Run), run
        runs.append(run)
    assert series(runs, "reconnect") == {(BOARD, "ca"): [240.0, 245.0, None]}
    assert series(runs, "detect") == {(BOARD, "ca"): [2010.0, 2011.0, None]}
    assert all(v is None for v in series(runs, "cell").get((BOARD, "ca"), []))
