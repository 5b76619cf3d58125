"""A real `hil run --capture all` with a failing cell (issue 22, item 7): the secrets of a
capture stay where the design puts them.

- The sealing key of `tls keylog` (a fresh 32-byte key per cell, rig/device/console.py, sent on
  the console only): the real value of every key the board received is read on the board's
  side of the pty (a pass-through `hil-agent` in the board's build_dir that copies the
  console input to a file outside the run, then runs the real agent), and must show nowhere:
  no file of the run directory (pcapngs included: they carry the session secrets, never the
  key that sealed them), the board's state directory, the PKI, what `hil run` printed, nor
  pytest-embedded's logs of the run.
- Without knowing the key: no file shows a `tls keylog <value>` line nor a key-sized token
  after `keylog`, and no session secret in clear (an NSS key-log line, or a secret value the
  pcapngs embed) is anywhere outside the pcapngs.
- The host's key export (SSLKEYLOGFILE, rig/host/tls.py): the observer's own MQTT CONNECT
  (client id `hil-observer-...`, rig/host/observer.py) opens decrypted from each MQTT cell's
  capture with the secrets the file embeds, and only with them."""

from __future__ import annotations

import base64
import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rig.config import HilConfig
from rig.device.console import unseal
from tests.pcapng import embedded_secrets, tshark, without_secrets
from tests.support import assert_no_secret, hil, tmp_config

pytestmark = pytest.mark.skipif(
    shutil.which("tcpdump") is None or shutil.which("tshark") is None,
    reason="tcpdump and tshark are needed (./hil.sh setup installs them)")

MQTT_MODES = ("ca", "mutual", "psk")
# what the board received: `@<tag> tls keylog <64 hex digits>` (rig/device/console.py)
KEY_SENT = re.compile(rb"tls[ \t]+keylog[ \t]+([0-9a-fA-F]{64})\b")
# a `tls keylog` line as a file may show it: only `<sealing key>` or `off` may follow
KEYLOG_SHOWN = re.compile(rb"tls[ \t]+keylog[ \t]+(\S+)")
REDACTED = (b"<sealing", b"&lt;sealing", b"off")  # junit.xml and report.html escape the `<`
# a key-sized token right after `keylog` (hex, base64): a sealing key shown some other way. The
# board's sealed lines (`keylog <seq> <hex>`) start with their sequence number.
KEY_TOKEN = re.compile(rb"keylog\W{1,3}([0-9A-Fa-f]{32,}|[A-Za-z0-9+/]{43}=)")
# an NSS key-log line's label and first secret: a TLS session secret in clear
NSS_SHOWN = re.compile(rb"(?i)(CLIENT_RANDOM|[A-Z_]+_SECRET)[ \t]+[0-9a-f]{64}[ \t]+[0-9a-f]{64}")
# the board's sealed key-log lines, as it printed them (rig/device/console.py KEYLOG_LINE_RE)
SEALED_LINE = re.compile(rb"hil: keylog (\d{1,9}) ([0-9a-f]{2,1024})\r?$", re.M)

# The board's agent seen from its side of the pty: a copy of every console line it reads goes
# to a file, then the real agent runs on the same pid (the rig's health and death checks see
# the real process). The copier dies with the agent, so that after a reset no old copier
# reads what the rig sends to the new agent.
PASS_THROUGH = '''\
#!{python}
import ctypes, os, sys
REAL, LOG = {real!r}, {log!r}
if "--state" in sys.argv:
    r, w = os.pipe()
    if os.fork() == 0:
        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
        os.close(r)
        with open(LOG, "ab", buffering=0) as log:
            while True:
                try:
                    data = os.read(0, 4096)
                except OSError:
                    break
                if not data:
                    break
                log.write(data)
                try:
                    while data:
                        data = data[os.write(w, data):]
                except OSError:
                    break
        os._exit(0)
    os.close(w)
    os.dup2(r, 0)
    os.close(r)
os.execv(REAL, [REAL, *sys.argv[1:]])
'''


def decode_args(cell: dict[str, Any]) -> list[str]:
    """The -d options the rig printed for this cell's capture."""
    return [a for pair in re.findall(r"-d (\S+)", cell["properties"]["capture_decode"])
            for a in ("-d", pair)]


@dataclass
class CapturedRun:
    root: Path  # the test's directory: hil.toml, pki/, runs/, the board's state (.hil/)
    run: Path  # runs/<id>
    cells: dict[tuple[str, str, str], dict[str, Any]]
    files: dict[str, bytes]  # every file the run may have written to, by name
    keys: list[bytes]  # every sealing key the board received, as sent
    sealed: list[tuple[int, bytes]]  # the board's sealed key-log lines (seq, sealed bytes)


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory, hil_config: HilConfig,
             hil_agent: Path) -> CapturedRun:
    """`hil run --capture all` of ca, mutual, psk (failing: the board offers only a suite the
    broker lacks) and https, negative cells included, on a board whose console input is
    copied (outside the run) on the agent's side."""
    root = tmp_path_factory.mktemp("capture-secrets")
    seen = tmp_path_factory.mktemp("board-side")  # not under root: no scan reads it
    console_in = seen / "console-input"
    bin_dir = seen / "bin"
    bin_dir.mkdir()
    agent = bin_dir / "hil-agent"
    agent.write_text(PASS_THROUGH.format(python=sys.executable, real=str(hil_agent),
                                         log=str(console_in)))
    agent.chmod(0o755)
    config = tmp_config(root, hil_config)
    text = config.read_text().replace('kind = "virtual"',
                                      f'kind = "virtual"\nbuild_dir = "{bin_dir}"', 1)
    broken = re.sub(r'(\[modes\.psk\]\n(?:#[^\n]*\n)*device_cipher_suites = )"[^"]*"',
                    r'\1"TLS-PSK-WITH-AES-256-CCM"', text)
    assert broken != text, "hil.toml's [modes.psk] device_cipher_suites was not found"
    config.write_text(broken)
    started = time.time()
    proc = hil("run", "--capture", "all", "--mode", "ca", "--mode", "mutual", "--mode", "psk",
               "--mode", "https", config=config)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the psk cell fails
    run = (root / "runs" / "latest").resolve()
    cells = {(c["board"], c["mode"], c["case"]): c
             for c in json.loads((run / "results.json").read_text())["cells"]}
    assert cells[("virtual-0", "psk", "connect_publish")]["verdict"] == "FAIL", cells
    files = {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    embedded = Path(tempfile.gettempdir()) / "pytest-embedded"
    files.update({str(p): p.read_bytes() for p in embedded.rglob("*")
                  if p.is_file() and p.stat().st_mtime >= started})
    files["hil run's stdout"], files["hil run's stderr"] = \
        proc.stdout.encode(), proc.stderr.encode()
    keys = [bytes.fromhex(k.decode()) for k in KEY_SENT.findall(console_in.read_bytes())]
    sealed = [(int(seq), bytes.fromhex(hexed.decode()))
              for text in files.values() for seq, hexed in SEALED_LINE.findall(text)]
    return CapturedRun(root, run, cells, files, keys, sealed)


def _captures(captured: CapturedRun) -> dict[tuple[str, str, str], Path]:
    return {name: Path(cell["properties"]["capture"]) for name, cell in captured.cells.items()
            if "capture" in cell["properties"]}


def test_the_sealing_key_never_leaves_the_wire_to_the_board(captured: CapturedRun) -> None:
    """Every cell's sealing key, as the board received it, is in no file of the run (its
    pcapngs included), the board's state, the PKI, hil run's output or pytest-embedded's
    logs: not as hex (any case), base64, nor its raw bytes."""
    captures = _captures(captured)
    board_cells = [c for c in captured.cells.values() if c["board"] == "virtual-0"]
    # a fresh key for every board cell (a cell with no traffic, e.g. nothing listening, keeps
    # no capture but is given a key too)
    assert len(captured.keys) >= len(board_cells), (len(captured.keys), len(board_cells))
    assert len(set(captured.keys)) == len(captured.keys), "a sealing key was used twice"
    # the keys read on the board's side are those that sealed what the captures embed: a
    # sealed line the board printed opens, with one of them, to a secret a capture embeds
    session = {ln for path in captures.values() for ln in embedded_secrets(path)}
    opened = {unseal(key, seq, data).decode("ascii", "replace")
              for seq, data in captured.sealed for key in captured.keys}
    assert captured.sealed, "pytest-embedded's log of the board holds no sealed key-log line"
    assert session & opened, "no sealed line opens with the keys the board received"
    for key in captured.keys:
        forms = {"hex": key.hex(), "base64": base64.b64encode(key).decode()}
        for form, value in forms.items():
            assert_no_secret(value, f"a cell's sealing key ({form})",
                             {name: data.decode("latin-1")
                              for name, data in captured.files.items()})
        raw = [name for name, data in captured.files.items() if key in data]
        assert not raw, f"a cell's sealing key (raw bytes) is in {raw}"


def test_no_file_shows_a_keylog_value_or_a_session_secret_in_clear(
        captured: CapturedRun) -> None:
    """Without the board's view: no `tls keylog <value>` but the redacted one, no key-sized
    token after `keylog`, no NSS key-log line and no secret the pcapngs embed, in any file
    but the pcapngs (whose embedded secrets are the design: the file opens decrypted)."""
    captures = _captures(captured)
    secrets = {ln.split()[-1].lower() for path in captures.values()
               for ln in embedded_secrets(path)}
    assert secrets, "the captures embed no secret"
    found: list[str] = []
    for name, data in captured.files.items():
        if name.endswith(".pcapng"):
            continue
        shown = {v for v in KEYLOG_SHOWN.findall(data) if v not in REDACTED}
        # (the values are not shown: each may be the key)
        found += [f"{name}: `tls keylog` and {len(v)} characters" for v in shown]
        found += [f"{name}: `keylog` and a {len(m)}-character token"
                  for m in KEY_TOKEN.findall(data)]
        found += [f"{name}: an NSS key-log line ({m!r})" for m in NSS_SHOWN.findall(data)]
        lowered = data.lower()
        found += [f"{name}: a secret the captures embed" for s in secrets
                  if s.encode() in lowered]
    assert not found, found
    # what the scan reads is what the run wrote: the commands are there, redacted
    transcripts = [p for p in (captured.run / "transcripts").rglob("*") if p.is_file()]
    assert any(b"tls keylog <sealing key>" in p.read_bytes() for p in transcripts), transcripts


@pytest.mark.parametrize("mqtt_mode", MQTT_MODES)
def test_the_observers_connect_opens_from_the_capture(captured: CapturedRun, mqtt_mode: str,
                                                      tmp_path: Path) -> None:
    """The observer (a host client: its secrets through SSLKEYLOGFILE) connects to the mode's
    broker during the cell: its CONNECT decrypts from the cell's pcapng with the embedded
    secrets, and not without them (the psk cell is the failing one: its capture too)."""
    cell = captured.cells[("virtual-0", mqtt_mode, "connect_publish")]
    path = Path(cell["properties"]["capture"])
    ids = tshark(path, *decode_args(cell), "-Y", "mqtt.msgtype==1", "-T", "fields",
                 "-e", "mqtt.clientid")
    assert any(i.startswith("hil-observer-") for i in ids), (mqtt_mode, ids)
    bare = without_secrets(path, tmp_path / "bare.pcapng")
    assert tshark(bare, *decode_args(cell), "-Y", "mqtt.msgtype==1") == []
