"""A board's device profile decides what its cells expect (`hil run`), and a bad one stops every
`hil` command with exit 2 before anything starts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from rig.config import HilConfig, load
from rig.pki import Pki
from tests.pcapng import embedded_secrets, tshark
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


def assert_the_boards_connection_decrypts(cell: dict[str, Any], device_id: str) -> None:
    """The cell's capture shows the board's own MQTT session decrypted (its CONNECT with the
    device's client id, its PUBLISH): a firmware whose profile exports no secrets, connected at
    boot, decrypts with the broker's (rig/broker/keylog.py)."""
    path = Path(cell["properties"]["capture"])
    decode = [a for pair in re.findall(r"-d (\S+)", cell["properties"]["capture_decode"])
              for a in ("-d", pair)]
    rows = tshark(path, *decode, "-Y", "mqtt", "-T", "fields", "-e", "mqtt.msgtype",
                  "-e", "mqtt.clientid", "-e", "mqtt.topic")
    fields = [r.split("\t") for r in rows]
    assert any(device_id in f[1] for f in fields if f[0] == "1"), rows
    assert any(f"hil/virtual-0/{cell['mode']}/" in f[2] for f in fields if f[0] == "3"), rows
    assert embedded_secrets(path)
    assert "capture_keys" not in cell["properties"], cell["properties"]


def test_the_boards_profile_decides_what_its_cells_expect(tmp_path: Path,
                                                          hil_config: HilConfig) -> None:
    config = tmp_config(tmp_path, hil_config)
    text = config.read_text().replace('name = "virtual-0"\n',
                                      'name = "virtual-0"\nprofile = "picky"\n', 1)
    config.write_text(text + PICKY)
    proc = hil("run", "--mode", "ca", "--mode", "https", "--no-negative",
               "--no-resilience", config=config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cells = json.loads((tmp_path / "runs" / "latest" / "results.json").read_text())["cells"]
    verdicts = {(c["board"], c["case"]): c for c in cells}
    cell = verdicts[("virtual-0", "connect_publish")]
    assert cell["verdict"] == "FAIL" and "'^MQTT0 CONNACK 7$'" in cell["reason"], cell
    assert cell["cipher_suite"] == ""  # read only once the profile's connected line came
    # a firmware without HTTPS has no HTTPS cells: not collected, so nothing is missing
    assert not [c for c in cells if c["mode"].startswith("https")], cells
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


def test_a_mongoose_os_board_is_provisioned_by_rpc_and_connects_by_itself(
        tmp_path: Path, hil_config: HilConfig) -> None:
    """The articles' way on a virtual board (the hil-agent stands for the app): FS.Put,
    Config.Set, Config.Save with a reboot, the app's own connection, MQTT.Pub."""
    config = tmp_config(tmp_path, hil_config)
    config.write_text(config.read_text().replace('name = "virtual-0"\n',
                                                 'name = "virtual-0"\nprofile = "mongoose-os"\n'))
    proc = hil("run", "--mode", "ca", "--mode", "psk", "--mode", "https", "--no-negative",
               "--no-resilience", "--capture", "all", config=config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = tmp_path / "runs" / "latest"
    cells = json.loads((run / "results.json").read_text())["cells"]
    board = [(c["mode"], c["case"], c["verdict"]) for c in cells if c["board"] == "virtual-0"]
    assert board == [("ca", "connect_publish", "pass"), ("psk", "connect_publish", "pass")], \
        board  # https = false: no HTTPS cells for it
    for cell in cells:
        if cell["board"] == "virtual-0":
            assert_the_boards_connection_decrypts(cell, hil_config.device.id)
    # the negative matrix too: settings refused at Config.Set, or the boot connect refused
    proc = hil("run", "--mode", "psk", config=config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cells = json.loads((run / "results.json").read_text())["cells"]
    refused = {c["case"]: c for c in cells if c["expected"] == "refused"}
    assert set(refused) == {"refused-wrong-key", "refused-unknown-identity",
                            "refused-no-shared-cipher", "refused-key-length"}, refused
    assert "expected 32 or 64 hex digits" in refused["refused-key-length"]["device_reason"]
    assert refused["refused-unknown-identity"]["broker_reason"], refused
    transcript = (run / "transcripts" / "virtual-0.psk.connect_publish.txt").read_text()
    steps = ["> RPC channel opening", "> RPC Config.Set", "> RPC Config.Save", " ready ",
             "MQTT0 connecting to", "ciphersuite: TLS-PSK-", "MQTT0 CONNACK 0",
             "> RPC MQTT.Pub", "Published:OK topic:hil/virtual-0/psk/"]
    at = [transcript.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), list(zip(steps, at, strict=True))
    assert "mqtt connect" not in transcript and "config set" not in transcript
    assert "tls keylog" not in transcript  # a Mongoose OS app has no such command
    psk = Pki(load(config)).psk_hex()  # Config.Set carried it: the transcript shows the method
    assert psk not in transcript and psk not in (run / "pytest.log").read_text()


def test_an_esp_idf_nvs_board_is_provisioned_only_through_an_image(
        tmp_path: Path, hil_config: HilConfig) -> None:
    """Espressif's generator makes the image of each cell's settings; the board (the
    hil-agent standing for an esp-mqtt app) reads it at boot and connects by itself."""
    config = tmp_config(tmp_path, hil_config)
    config.write_text(config.read_text().replace('name = "virtual-0"\n',
                                                 'name = "virtual-0"\nprofile = "esp-idf-nvs"\n'))
    proc = hil("run", "--mode", "psk", "--mode", "ca", "--capture", "all", config=config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = tmp_path / "runs" / "latest"
    cells = json.loads((run / "results.json").read_text())["cells"]
    board = {(c["mode"], c["case"]): c for c in cells if c["board"] == "virtual-0"}
    assert board[("psk", "connect_publish")]["verdict"] == "pass"
    for mode in ("psk", "ca"):
        cell = board[(mode, "connect_publish")]
        assert_the_boards_connection_decrypts(cell, hil_config.device.id)
        # an esp-mqtt app prints no suite: read from the broker's Server Hello on the wire
        assert cell["properties"]["cipher_suite_from"].startswith(
            f"read from the wire: the broker's Server Hello to {hil_config.device.id} (port "), \
            cell["properties"]
    assert board[("psk", "connect_publish")]["cipher_suite"] == "TLS-PSK-WITH-AES-128-CCM-8"
    assert board[("ca", "connect_publish")]["cipher_suite"].startswith("TLS-ECDHE-ECDSA-WITH-")
    assert "cipher suite read from the wire: the broker's Server Hello" in proc.stdout
    assert "(no settings from NVS)" in board[("psk", "refused-key-length")]["device_reason"]
    transcript = (run / "transcripts" / "virtual-0.ca.connect_publish.txt").read_text()
    assert "settings from namespace hil (this boot only): mqtt.server" in transcript
    for way in ("config set", "config load", "RPC Config.Set", "RPC FS.Put", "mqtt connect",
                "tls keylog"):
        assert way not in transcript, way  # the image is the only way in
    images = list(tmp_path.rglob("virtual-0.nvs.bin"))  # the virtual `nvs` partition
    assert len(images) == 1 and images[0].stat().st_mode & 0o777 == 0o600, images
    assert Pki(load(config)).psk_hex() not in transcript
    # without a capture there is nothing to read the suite from: the cell says so, and passes
    # on what it did check (the connection, the publish)
    proc = hil("run", "--mode", "psk", "--no-negative", "--no-resilience", "--capture", "off",
               config=config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cells = json.loads((run / "results.json").read_text())["cells"]
    cell = next(c for c in cells if c["board"] == "virtual-0" and c["case"] == "connect_publish")
    assert cell["cipher_suite"] == "" and cell["properties"]["cipher_suite_from"] == (
        "not read: the firmware prints no ciphersuite line and the cell has no capture "
        "(--capture off)"), cell["properties"]
