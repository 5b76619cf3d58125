"""A board's device profile decides what its cells expect (`hil run`), and a bad one stops every
`hil` command with exit 2 before anything starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rig.config import HilConfig
from tests.support import hil, tmp_config

PICKY = """
[profiles.picky]
description = "the hil-agent's words, except that it connects with CONNACK 7 and has no HTTPS"
https = false
[profiles.picky.lines]
connected = '^MQTT0 CONNACK 7$'
ciphersuite = '^ciphersuite: (?P<suite>\\S+)$'
refused = ['^MQTT0 TLS handshake failed: (?P<reason>.+)$']
"""


def test_the_boards_profile_decides_what_its_cells_expect(tmp_path: Path,
                                                          hil_config: HilConfig) -> None:
    config = tmp_config(tmp_path, hil_config)
    text = config.read_text().replace('name = "virtual-0"\n',
                                      'name = "virtual-0"\nprofile = "picky"\n', 1)
    config.write_text(text + PICKY)
    proc = hil("run", "--mode", "ca", "--mode", "https", "--no-negative", config=config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cells = json.loads((tmp_path / "runs" / "latest" / "results.json").read_text())["cells"]
    verdicts = {(c["board"], c["case"]): c for c in cells}
    cell = verdicts[("virtual-0", "connect_publish")]
    assert cell["verdict"] == "FAIL" and "'^MQTT0 CONNACK 7$'" in cell["reason"], cell
    assert cell["cipher_suite"] == ""  # read only once the profile's connected line came
    https = [c for c in cells if c["mode"].startswith("https")]
    assert https and all(c["verdict"] == "skip" and "https = false" in c["reason"]
                         for c in https), https
    assert verdicts[("host", "broker_preflight")]["verdict"] == "pass"


def test_a_bad_profile_stops_every_command(tmp_path: Path) -> None:
    bad = tmp_path / "hil.toml"
    bad.write_text('[[boards]]\nname = "v0"\nkind = "virtual"\nprofile = "picky"\n'
                   + PICKY.replace("(?P<suite>", "(?P<suit>"))
    for command in (["run"], ["doctor"], ["pki", "init"]):
        proc = subprocess.run([sys.executable, "-m", "rig.cli", "--config", str(bad), *command],
                              capture_output=True, text=True, timeout=60)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2, out
        assert "profiles.picky.lines.ciphersuite: expected the named group(s) (?P<suite>...)" \
            in out, out
        assert not (tmp_path / "runs").exists() and not (tmp_path / "pki").exists()
