"""A bad hil.toml stops every `hil` command with exit 2 before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MINIMAL = '[[boards]]\nname = "v0"\nkind = "virtual"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hil.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("command", [["doctor"], ["run"], ["pki", "init"],
                                     ["broker", "up", "--mode", "psk"], ["preflight"]])
def test_cli_exits_2_and_starts_nothing_on_a_bad_file(tmp_path: Path, command: list[str]) -> None:
    bad = write(tmp_path, MINIMAL + "[broker]\nport = -1\n")
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "--config", str(bad), *command],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "broker.port: expected 0 (automatic) or 1..65535, got -1" in proc.stdout + proc.stderr
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "pki").exists()
