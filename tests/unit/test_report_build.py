"""`hil report`'s choices (rig/report/build.py, page.py) on results.json files written here:
which earlier runs it compares with, how it says what a regression is, environments it was not
written for, and links that work from wherever the page is written and never leave the run."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from rig.config import HilConfig, parse
from rig.report.build import build, what_changed
from rig.report.summary import _captures
from rig.report.trends import rule
from tests.unit.test_report_history import BOARD, cell, timed_run, write_run


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
        "capture": "/elsewhere/on/the/runner/virtual-0.ca.a.pcapng",
        "capture_lost": "the kernel dropped 3 packet(s)"})
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
    assert ">capture (incomplete)</a>" in html  # tcpdump said it dropped packets
    shown = _captures([failing, cell("b", "FAIL")])
    assert shown == [f"capture of {BOARD}.ca.a: /elsewhere/on/the/runner/virtual-0.ca.a.pcapng "
                     "(incomplete: the kernel dropped 3 packet(s))"], shown


def test_a_regression_says_how_it_was_decided(tmp_path: Path) -> None:
    """The terminal and the page name each regression with its numbers, and say in one
    sentence how a regression is decided; the same history with a busy runner flags nothing."""
    runs = tmp_path / "runs"
    for i in range(6):
        timed_run(runs, i)
    slow = timed_run(runs, 16, 1.0, {BOARD: 2.0})  # virtual-0's handshakes twice as long
    report = build(slow.path, config(tmp_path, 20), [])
    lines = what_changed(report)
    flagged = [line for line in lines if line.startswith("  regression: ")]
    assert [line.split(":")[1] for line in flagged] == [" virtual-0 ca", " virtual-0 mutual"]
    assert re.search(r" \+5\.0 ms\); measured 10\.0 against 5\.0 ms, runner speed factor "
                     r"0\.98; above the spread of 6 earlier runs \(fence \d+\.\d ms\)$", flagged[0])
    assert lines[-2] == f"  ({rule(0.4)})" and "Mann-Whitney" in lines[-2]
    html = report.path.read_text()
    assert '<h3 id="regressions">regressions: 2</h3>' in html
    assert html.count('<li class="regression">virtual-0 ') == 2
    assert f'<p class="reason" id="regression-rule">{escape(rule(0.4))}</p>' in html
    busy = timed_run(runs, 24, 2.0, {BOARD: 2.0, "virtual-esp": 2.0})  # all of it: the runner
    quiet = build(busy.path, config(tmp_path, 20), [])
    lines = what_changed(quiet)
    assert quiet.flagged == [] and not any(line.startswith("  (") for line in lines), lines
    assert not any(line.startswith("  regression") for line in lines), lines
    assert '<h3 id="regressions">regressions: 0</h3>' in quiet.path.read_text()


def test_odd_environment_values_are_shown(tmp_path: Path) -> None:
    """A results.json whose environment holds numbers, nulls, lists and tables where texts
    were written (hand-edited, another rig's): the page shows them, it does not crash."""
    environment = {"rig": {"version": 3, "revision": None}, "mosquitto": 2.0, "openssl": None,
                   "mbedtls": [2, None, {"variant": "esp"}], "cores": 2,
                   "network": {"netns": ["hil0", {"mtu": 1500}], "up": True},
                   "boards": {"virtual-0": {"kind": 1, "firmware": None, "mac": ["aa", "bb"],
                                            "place": {"name": "bench1/esp-3"}},
                              "virtual-1": "gone"}}
    run = write_run(tmp_path / "runs", "20261130-060000-6", [cell("a")],
                    environment=environment)
    html = build(run, config(tmp_path, 5), []).path.read_text()
    env = html[html.index('<section id="environment">'):html.index('<section id="cells">')]
    for row in ("<th>rig</th><td>hil-rig 3</td>", "<th>Mosquitto</th><td>2.0</td>",
                "<th>OpenSSL</th><td></td>", "<th>mbedTLS (boards)</th><td>2, , variant: esp</td>",
                "<th>cores</th><td>2</td>",
                "<th>network</th><td>netns: hil0, mtu: 1500, up: true</td>"):
        assert row in env, row
    assert ("<th>virtual-0</th><td>1</td><td></td><td></td><td>aa, bb</td><td></td><td></td>"
            "<td></td><td>name: bench1/esp-3</td>") in env
    assert '<th>virtual-1</th><td colspan="9">gone</td>' in env
    weird = write_run(tmp_path / "runs", "20261130-070000-7", [cell("a")],
                      environment={"rig": "hil-rig 0.0", "boards": ["virtual-0"]})
    html = build(weird, config(tmp_path, 5), []).path.read_text()
    assert "<th>rig</th><td>hil-rig 0.0</td>" in html
    assert "<th>boards</th><td>virtual-0</td>" in html


def test_evidence_links_stay_in_the_run_dir(tmp_path: Path) -> None:
    """Evidence paths that leave the run directory (`..`, absolute, through a symlink) get no
    link; one with a harmless `..` inside it is linked by its plain path."""
    runs = tmp_path / "runs"
    run = runs / "20261130-080000-8"
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    evidence = [{"transcript": "../../etc/passwd", "broker_log": "/etc/passwd"},
                {"transcript": f"{run}/../../outside.txt", "broker_log": "gw0/../../outside.txt"},
                {"transcript": "escape/outside.txt", "broker_log": ".",
                 "capture": "../outside.pcapng"},
                {"transcript": "transcripts/../transcripts/virtual-0.ca.d.txt",
                 "broker_log": "/"}]
    write_run(runs, run.name, [dict(cell(case), properties=props)
                               for case, props in zip("abcd", evidence, strict=True)])
    (run / "escape").symlink_to(tmp_path)
    (tmp_path / "outside.pcapng").write_text("x")
    (run / "transcripts").mkdir()
    (run / "transcripts" / "virtual-0.ca.d.txt").write_text("x")
    for page in (run / "report.html", tmp_path / "published" / "page.html"):
        page.parent.mkdir(exist_ok=True)
        html = build(run, config(tmp_path, 5), [], page).path.read_text()
        hrefs = re.findall(r'href="([^"#][^"]*)"', html)
        assert [(page.parent / h).resolve() for h in hrefs] == [
            (run / "transcripts" / "virtual-0.ca.d.txt").resolve()], hrefs
        assert "passwd" not in "".join(hrefs) and "outside" not in "".join(hrefs)
