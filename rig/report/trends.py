"""What changed: each cell of a run against the earlier comparable runs (new failure, fixed,
still failing, flaky, passing), and the handshake and cell times per board and mode over the
runs, with regressions flagged against their rolling median.

Comparable runs: those with at least one cell (board, mode, case) in common with this run and
of the same kind (physical boards or virtual ones). A cell is flaky when its verdict changed
at least FLAKY_FLIPS times over the comparable runs read (this run's included), e.g.
pass-fail-pass-fail; one failure that a later run fixed is a new failure, then fixed."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from typing import Any, Literal

from rig.report.history import Key, Run, number

Status = Literal["new failure", "fixed", "still failing", "flaky", "passing", "skipped"]
STATUSES: tuple[Status, ...] = ("new failure", "fixed", "still failing", "flaky", "passing",
                                "skipped")
Metric = Literal["handshake", "cell"]
METRICS: dict[Metric, str] = {"handshake": "handshake time (ms, median of the cells)",
                              "cell": "cell time (ms, connect to published message)"}
MIN_BASELINE = 3  # earlier values needed before a run can be called a regression
FLAKY_FLIPS = 3  # verdict changes in the history window that make a cell flaky


def verdict(cell: dict[str, Any] | None) -> str:
    """pass, fail or skip; '' when the run did not have the cell."""
    if cell is None:
        return ""
    v = str(cell.get("verdict", ""))
    return "pass" if v == "pass" else "skip" if v == "skip" else "fail"


def comparable(current: Run, history: list[Run]) -> list[Run]:
    keys = set(current.by_key)
    return [r for r in history if keys & set(r.by_key)
            and (current.hil is None or r.hil is None or r.hil == current.hil)]


def flips(seq: list[str]) -> int:
    """How often the verdict changed from one run to the next."""
    return sum(1 for a, b in itertools.pairwise(seq) if a != b)


def classify(current: Run, history: list[Run]) -> dict[Key, Status]:
    """Each cell of `current` against `history` (comparable runs, oldest first)."""
    out: dict[Key, Status] = {}
    for key, cell in current.by_key.items():
        now = verdict(cell)
        if now == "skip":
            out[key] = "skipped"
            continue
        before = [v for v in (verdict(r.cell(key)) for r in history) if v in ("pass", "fail")]
        if flips([*before, now]) >= FLAKY_FLIPS:
            out[key] = "flaky"
        elif now == "fail":
            out[key] = "still failing" if before and before[-1] == "fail" else "new failure"
        else:
            out[key] = "fixed" if before and before[-1] == "fail" else "passing"
    return out


def changes(statuses: dict[Key, Status]) -> dict[Status, list[Key]]:
    out: dict[Status, list[Key]] = {s: [] for s in STATUSES}
    for key, status in sorted(statuses.items()):
        out[status].append(key)
    return out


def _value(cell: dict[str, Any], metric: Metric) -> float | None:
    """The cell's handshake time, or its own time (`cell_ms`: from the connect to the
    published message, set-up and resets not counted; cells that record it)."""
    if verdict(cell) != "pass":
        return None
    if metric == "handshake":
        return number(cell.get("handshake_ms"))
    return number(cell.get("properties", {}).get("cell_ms"))


def run_medians(run: Run, metric: Metric) -> dict[tuple[str, str], float]:
    """(board, mode) -> the median of the metric over the run's passing board cells."""
    values: dict[tuple[str, str], list[float]] = {}
    for c in run.cells:
        if c["board"] in ("host", "none"):
            continue
        v = _value(c, metric)
        if v is not None:
            values.setdefault((c["board"], c["mode"]), []).append(v)
    return {k: statistics.median(v) for k, v in values.items()}


@dataclass(frozen=True)
class Regression:
    board: str
    mode: str
    metric: Metric
    value: float
    baseline: float  # the rolling median of the earlier runs

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    def __str__(self) -> str:
        return (f"{self.board} {self.mode}: {self.metric} {self.value:.1f} ms against a "
                f"rolling median of {self.baseline:.1f} ms (+{(self.ratio - 1) * 100:.0f} %)")


def series(runs: list[Run], metric: Metric) -> dict[tuple[str, str], list[float | None]]:
    """(board, mode) -> the metric per run (None where the run had no value), `runs` order."""
    medians = [run_medians(r, metric) for r in runs]
    keys = sorted({k for m in medians for k in m})
    return {k: [m.get(k) for m in medians] for k in keys}


def regressions(runs: list[Run], threshold: float) -> list[Regression]:
    """The last run's medians against the rolling median of the earlier runs' (at least
    MIN_BASELINE of them): above it by more than `threshold` (0.4 = 40 %)."""
    out: list[Regression] = []
    for metric in METRICS:
        for (board, mode), values in series(runs, metric).items():
            now = values[-1] if values else None
            earlier = [v for v in values[:-1] if v is not None]
            if now is None or len(earlier) < MIN_BASELINE:
                continue
            baseline = statistics.median(earlier)
            if baseline > 0 and now > baseline * (1 + threshold):
                out.append(Regression(board, mode, metric, now, baseline))
    return out
