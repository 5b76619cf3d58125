"""`hil report`'s choices (rig/report/build.py, page.py) on results.json files written here:
which earlier runs it compares with, and links that work from wherever the page is written."""

from __future__ import annotations

import re
from pathlib import Path

from rig.config import HilConfig, parse
from rig.report.build import build, what_changed
from tests.unit.test_report_history import cell, write_run


def config(tmp_path: Path, trend_runs: int) -> HilConfig:
    return parse({"rig": {"run_dir": "runs"}, "report": {"trend_runs": trend_runs},
                  "boards": [{"name": "virtual-0", "kind": "virtual"}]},
                 source=tmp_path / "hil.toml")


def test_the_window_holds_comparable_runs_only(tmp_path: Path) -> None:
    """Runs of the other kind (--hil) in between do not push the comparable ones out of
    [report] trend_runs."""
    runs = tmp_path / "runs"
    write_run(runs, "20261130-010000-1", [cell("a", "FAIL")])
    write_run(runs, "20261130-020000-2", [cell("a")])
    for i in range(3):
        write_run(runs, f"20261130-03000{i}-3{i}", [cell("a", "FAIL")], hil=True)
    current = write_run(runs, "20261130-040000-4", [cell("a", "FAIL")])
    report = build(current, config(tmp_path, 2), [])
    assert report.history == 2 and report.previous is not None
    assert report.previous.id == "20261130-020000-2"
    assert report.grouped["new failure"] == [("virtual-0", "ca", "a")]
    assert what_changed(report)[0].startswith(
        "what changed since run 20261130-020000-2 (the last of 2 earlier comparable run(s)")


def test_links_work_from_where_the_page_is(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = runs / "20261130-050000-5"
    failing = cell("a", "FAIL")
    failing["properties"].update({
        "transcript": "transcripts/virtual-0.ca.a.txt", "broker_log": "gw0/broker-ca.log",
        "capture": "/elsewhere/on/the/runner/virtual-0.ca.a.pcapng"})
    failing["reason"] = 'board said <script>alert("x")</script>'
    write_run(runs, run.name, [failing, dict(cell("b"), properties={
        "transcript": "javascript:alert(1)"})])
    for rel in ("transcripts/virtual-0.ca.a.txt", "gw0/broker-ca.log", "virtual-0.ca.a.pcapng"):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text("x")
    out = tmp_path / "published" / "page.html"
    out.parent.mkdir()
    build(run, config(tmp_path, 5), [], out)
    html = out.read_text()
    hrefs = re.findall(r'<a href="([^"#][^"]*)">', html)
    assert sorted(hrefs) == sorted(f"../runs/{run.name}/{rel}" for rel in (
        "transcripts/virtual-0.ca.a.txt", "gw0/broker-ca.log", "virtual-0.ca.a.pcapng"))
    assert all((out.parent / h).resolve().exists() for h in hrefs)
    assert "<script>" not in html and "javascript:" not in html
    assert "&lt;script&gt;" in html  # the reason is shown, escaped
