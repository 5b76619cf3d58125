"""The `--hil` path end to end without a chip: a virtual agent served over RFC 2217 on 127.0.0.1
stands in for a remote ESP32 (`port = "rfc2217://..."`, `flash = false`), and `hil run --hil`
runs the whole matrix (MQTT modes, HTTPS, negative cases) on it as on a physical board.

What this covers: the esp32 driver's non-flashing path (plain serial over RFC 2217, reset by the
RTS/EN pulse), board address from hil.toml, and everything after boot. What it cannot: esptool
flashing and Wi-Fi (no chip here)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.boards.host_build import build_host_agent
from rig.boards.rfc2217 import Rfc2217Bridge
from rig.boards.virtual import VirtualBoard
from rig.config import HilConfig
from tests.support import ROOT, committed_toml


@pytest.fixture
def remote_board(request: pytest.FixtureRequest, tmp_path: Path,
                 hil_config: HilConfig) -> Iterator[tuple[VirtualBoard, Rfc2217Bridge]]:
    if request.config.getoption("--hil"):
        pytest.skip("runs a nested `hil run --hil` against a virtual agent; not under --hil")
    # a remote ESP32 runs what the chip runs: the esp build (32-bit, mbedTLS 3.6, no clock
    # until the rig sets it), so the chip's clock rules (rig.cases.test_clock) run on it too
    agent = build_host_agent("esp-asan")
    board = VirtualBoard("remote-0", agent, tmp_path / "state", tmp_path)
    board.start()
    try:
        with Rfc2217Bridge(board.port, on_reset=board.reset) as bridge:
            yield board, bridge
    finally:
        board.close()


def test_hil_run_over_rfc2217_without_flashing(tmp_path: Path, hil_config: HilConfig,
                                              remote_board: tuple[VirtualBoard, Rfc2217Bridge],
                                              ) -> None:
    board, bridge = remote_board
    assert bridge.url.startswith("rfc2217://127.0.0.1:")
    text = committed_toml(hil_config)
    text = text.replace('run_dir = "runs"', f'run_dir = "{tmp_path}/runs"')
    text = text.replace('dir = "pki"', f'dir = "{hil_config.pki_dir}"')
    text += f"""
[[boards]]
name = "remote-0"
kind = "esp32"
port = "{bridge.url}"
flash = false
address = "127.0.0.1"
"""
    config = tmp_path / "hil.toml"
    config.write_text(text)

    proc = subprocess.run([sys.executable, "-m", "rig.cli", "--config", str(config), "run",
                           "--hil"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    cells = json.loads((tmp_path / "runs" / "latest" / "results.json").read_text())["cells"]
    mine = [c for c in cells if c["board"] == "remote-0"]
    modes = {c["mode"] for c in mine}
    assert modes == {"ca", "mutual", "psk", "https", "https-mutual"}, modes
    assert all(c["verdict"] == "pass" for c in mine), [c for c in mine if c["verdict"] != "pass"]
    assert not any(c["board"] == "virtual-0" for c in cells)  # --hil: physical kinds only
    psk = next(c for c in mine if (c["mode"], c["case"]) == ("psk", "connect_publish"))
    assert psk["cipher_suite"] == "TLS-PSK-WITH-AES-128-CCM-8"
    clock = next(c for c in mine if c["case"] == "clock_unset")
    assert "starts in the future" in clock["device_reason"], clock
    # the board was reset through the RTS (EN) pulse, as many times as `hil run` counted: at
    # its first use, and for the clock cell, which needs a board fresh from boot; no cell
    # failed (rig/boards/strategy.py)
    resets = json.loads((tmp_path / "runs" / "latest" / "results.json").read_text())["resets"]
    assert resets == {"remote-0": 2}, resets
    assert bridge.resets == 2
    assert board.sanitizer_report() == ""
