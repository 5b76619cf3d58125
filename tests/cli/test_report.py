"""The nightly report as a person sees it: four real `hil run`s (ca only, no negative cases, for
time) with one cell that flaps (virtual-0.ca.connect_publish: pass, fail, pass, fail) and one
that fails in the last run only (virtual-esp.ca.connect_publish, and with it the esp board's
clock cell), a failure made by giving the boards a PSK-only suite list in ca mode. What each
run printed about what changed; the last run's report.html opened in headless Chromium
(Debian's `chromium`): what the page shows, a screenshot kept in the test's directory."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rig.config import HilConfig
from tests.support import ROOT, tmp_config

# (scripts stay on: headless Chromium's --dump-dom and --screenshot need them, and print
# nothing with --blink-settings=scriptEnabled=false; the page has no script, asserted below)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
FLAPPING = "virtual-0.ca.connect_publish"
FAILING = "virtual-esp.ca.connect_publish"


def _run(config: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "--config", str(config), "run",
                           "--mode", "ca", "--no-negative",
                               "--no-resilience", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def four_runs(tmp_path_factory: pytest.TempPathFactory,
              hil_config: HilConfig) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("report")
    good = tmp_config(tmp, hil_config, esp=True)
    bad = tmp / "hil-bad.toml"
    text = good.read_text()
    broken = text.replace('[modes.ca]\ndevice_cipher_suites = ""',
                          '[modes.ca]\ndevice_cipher_suites = "TLS-PSK-WITH-AES-128-CCM-8"', 1)
    assert broken != text
    bad.write_text(broken)
    outputs = [_run(good), _run(bad, "--board", "virtual-0"), _run(good), _run(bad)]
    return tmp / "runs", outputs


def test_each_run_says_what_changed(four_runs: tuple[Path, list[str]]) -> None:
    _, out = four_runs
    assert "what changed: no earlier comparable run to compare against" in out[0]
    assert re.search(r"what changed since run \S+ \(the last of 1 earlier comparable run\(s\) "
                     r"read\): 1 new failure\(s\), 0 fixed, 0 flaky", out[1]), out[1][-1500:]
    assert f"  new failure: {FLAPPING}" in out[1]
    assert f"  fixed: {FLAPPING}" in out[2]
    # the esp board's clock cell cannot connect with that suite list either
    assert f"  new failure: virtual-esp.ca.clock_unset, {FAILING}" in out[3], out[3][-800:]
    assert f"  flaky: {FLAPPING}" in out[3]
    for text in out:
        assert re.search(r"^report: \S+/report\.html$", text, re.M)


def test_the_report_in_a_browser(four_runs: tuple[Path, list[str]], tmp_path: Path,
                                 request: pytest.FixtureRequest) -> None:
    runs, _ = four_runs
    latest = (runs / "latest").resolve()
    page = latest / "report.html"
    html = page.read_text()
    assert "<script" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "").replace("http://www.w3.org/1999/xlink", "")
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (Debian package chromium; ./hil.sh setup)"
    profile = tmp_path / "chromium-profile"
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shown = dom.stdout
    for section in ("changes", "matrix", "trends", "environment", "cells", "history"):
        assert f'<section id="{section}">' in shown, section
    # the matrix: each board's table, the flapping and the failing cell marked as such
    assert re.search(r'<td class="fail"[^>]*data-status="flaky"><a href="#cell-'
                     + re.escape(FLAPPING), shown), "flapping cell not marked flaky"
    assert re.search(r'<td class="fail"[^>]*data-status="new failure"><a href="#cell-'
                     + re.escape(FAILING), shown), "failing cell not marked new failure"
    assert re.search(r'<h3 id="new-failure">new failure: 2</h3>', shown)
    assert re.search(r'<h3 id="flaky">flaky: 1</h3>', shown)
    # the plots: static SVG, one per board and metric, four runs on the x axis
    figures = re.findall(r'<figure class="plot" data-board="([^"]+)" data-metric="(\w+)">'
                         r"\s*<svg", shown)
    assert {("virtual-0", "handshake"), ("virtual-0", "cell"), ("virtual-esp", "handshake"),
            ("virtual-esp", "cell")} <= set(figures), figures
    # the environment, and the evidence of each cell reachable from the page
    assert re.search(r"<th>Mosquitto</th><td>2\.\d+\.\d+</td>", shown)
    assert re.search(r"<th>rig</th><td>hil-rig \S+", shown)
    results = json.loads((latest / "results.json").read_text())
    cell = next(c for c in results["cells"] if c["board"] == "virtual-esp"
                and c["case"] == "connect_publish")
    assert cell["properties"]["firmware_sha256"] in shown
    transcript = latest / cell["properties"]["transcript"]
    assert f'href="{cell["properties"]["transcript"]}"' in shown and transcript.exists()
    assert "> mqtt connect" in transcript.read_text()
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                    "--window-size=1400,2600", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000  # a page, not a blank one
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot}")
    request.node.user_properties.append(("screenshot", str(shot)))


def test_hil_report_with_history_from_elsewhere(four_runs: tuple[Path, list[str]],
                                                tmp_path: Path, hil_config: HilConfig) -> None:
    """`hil report RUN --history DIR`: earlier runs brought back as CI artifacts (copied out of
    run_dir), one from an older schema read, one from an unknown schema skipped with a line."""
    runs, _ = four_runs
    ids = sorted(p.name for p in runs.iterdir() if p.is_dir() and not p.is_symlink())
    artifacts = tmp_path / "artifacts"
    for i, run_id in enumerate(ids[:-1]):
        shutil.copytree(runs / run_id, artifacts / f"night-{i}" / "hil-run")
    first = artifacts / "night-0" / "hil-run" / "results.json"
    data = json.loads(first.read_text())
    del data["schema"]
    first.write_text(json.dumps(data))
    alien = artifacts / "night-9" / "hil-run"
    alien.mkdir(parents=True)
    (alien / "results.json").write_text(json.dumps({"schema": 7, "cells": []}))
    current = tmp_path / "current"
    shutil.copytree(runs / ids[-1], current)
    config = tmp_config(tmp_path, hil_config, esp=True)  # its run_dir is empty
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "--config", str(config), "report",
                           str(current), "--history", str(artifacts), "--out",
                           str(tmp_path / "page.html")], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "(the last of 3 earlier comparable run(s) read)" in proc.stdout, proc.stdout
    assert "history directory does not exist" not in proc.stdout  # an unused run_dir is fine
    assert f"  flaky: {FLAPPING}" in proc.stdout
    assert "night-9/hil-run/results.json: skipped, schema 7" in proc.stdout
    assert "skipped, schema 7" in (tmp_path / "page.html").read_text()
