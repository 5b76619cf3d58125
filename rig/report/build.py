"""`hil report`, also run at the end of every `hil run`: a run's report.html from its
results.json and the earlier runs (hil.toml's run_dir and `--history` directories), and the
lines `hil run` prints about what changed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rig.config import HilConfig
from rig.errors import UsageError
from rig.report.history import Run, collect, read_run
from rig.report.page import render
from rig.report.trends import (
    Regression,
    Status,
    changes,
    classify,
    comparable,
    judged,
    regressions,
    rule,
)

REPORT_FILE = "report.html"


class ReportError(UsageError):
    """The run to report on cannot be read."""


@dataclass
class Report:
    path: Path
    current: Run
    previous: Run | None
    grouped: dict[Status, list[tuple[str, str, str]]]
    flagged: list[Regression]
    skipped: list[str]
    history: int  # comparable earlier runs read
    threshold: float  # hil.toml [report] regression: how much higher is a regression
    unjudged: str = ""  # why this run's times were not judged (a busy runner), '' when they were


def build(run_dir: Path, config: HilConfig, history_dirs: list[Path],
          out: Path | None = None) -> Report:
    current = read_run(run_dir)
    if isinstance(current, str):
        raise ReportError(f"cannot report on {run_dir}: {current}")
    local = [config.run_dir] if config.run_dir.is_dir() else []  # none yet: nothing to say
    found, skipped = collect(current, [*local, *history_dirs])
    history = comparable(current, found)[-config.report.trend_runs:]
    statuses = classify(current, history)
    compared, unjudged = judged([*history, current])
    flagged = [] if unjudged else regressions(compared, config.report.regression)
    path = out or run_dir / REPORT_FILE
    path.write_text(render(current, history, skipped, statuses, flagged,
                           config.report.regression, path.parent, unjudged=unjudged),
                    encoding="utf-8")
    return Report(path, current, history[-1] if history else None, changes(statuses), flagged,
                  skipped, len(history), config.report.regression, unjudged)


def _names(keys: list[tuple[str, str, str]], most: int = 8) -> str:
    shown = [".".join(k) for k in keys[:most]]
    return ", ".join(shown) + (f" and {len(keys) - most} more" if len(keys) > most else "")


def what_changed(report: Report) -> list[str]:
    """What `hil run` prints at its end: against the previous comparable run, the new
    failures, fixed and flaky cells by name, the regressions and how they were decided, and
    the report's path."""
    lines = [f"skipped history: {s}" for s in report.skipped]
    if report.previous is None:
        lines.append("what changed: no earlier comparable run to compare against")
    else:
        g = report.grouped
        counts = (f"{len(g['new failure'])} new failure(s), {len(g['fixed'])} fixed, "
                  f"{len(g['flaky'])} flaky, {len(g['still failing'])} still failing")
        lines.append(f"what changed since run {report.previous.id} (the last of {report.history} "
                     f"earlier comparable run(s) read): {counts}")
        shown: tuple[Status, ...] = ("new failure", "fixed", "flaky")
        for status in shown:
            keys = g[status]
            if keys:
                lines.append(f"  {status}: {_names(keys)}")
    for r in report.flagged:
        lines.append(f"  regression: {r}")
    if report.flagged:
        lines.append(f"  ({rule(report.threshold)})")
    if report.unjudged:
        lines.append(f"  timings not judged for regressions: {report.unjudged}")
    lines.append(f"report: {report.path}")
    return lines
