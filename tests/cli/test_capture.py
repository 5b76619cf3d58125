"""`hil run --capture`: each cell's traffic kept as a pcapng that opens decrypted (the TLS secrets
of the board, the broker's observer and the HTTPS clients embedded), read back with the real
tshark; nothing written with `off`; the secrets nowhere else; a capture that cannot start said
once, the cells still run."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from rig.config import HilConfig
from tests.pcapng import embedded_secrets, tshark, without_secrets
from tests.support import hil, tmp_config

pytestmark = pytest.mark.skipif(
    shutil.which("tcpdump") is None or shutil.which("tshark") is None,
    reason="tcpdump and tshark are needed (./hil.sh setup installs them)")

def cells_of(run: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    cells = json.loads((run / "results.json").read_text())["cells"]
    return {(c["board"], c["mode"], c["case"]): c for c in cells}


def decode_args(cell: dict[str, Any]) -> list[str]:
    """The -d options the rig printed for this cell's capture."""
    return [a for pair in re.findall(r"-d (\S+)", cell["properties"]["capture_decode"])
            for a in ("-d", pair)]


def failing_psk_config(tmp_path: Path, hil_config: HilConfig) -> Path:
    """The committed hil.toml where the board offers only a PSK suite the broker does not
    have: its psk cell fails at the handshake."""
    config = tmp_config(tmp_path, hil_config)
    text = config.read_text()
    broken = re.sub(r'(\[modes\.psk\]\n(?:#[^\n]*\n)*device_cipher_suites = )"[^"]*"',
                    r'\1"TLS-PSK-WITH-AES-256-CCM"', text)
    assert broken != text, "hil.toml's [modes.psk] device_cipher_suites was not found"
    config.write_text(broken)
    return config


def test_capture_all_opens_decrypted_in_every_mode(tmp_path: Path,
                                                   hil_config: HilConfig) -> None:
    started = time.time()
    proc = hil("run", "--capture", "all", "--no-negative",
               "--no-resilience", "--mode", "ca", "--mode", "mutual",
               "--mode", "psk", "--mode", "https", config=tmp_config(tmp_path, hil_config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = tmp_path / "runs" / "latest"
    cells = cells_of(run)
    secrets: list[str] = []
    for mode in ("ca", "mutual", "psk"):
        cell = cells[("virtual-0", mode, "connect_publish")]
        path = Path(cell["properties"]["capture"])
        assert path.parent == run.resolve()
        assert path.name == f"virtual-0.{mode}.connect_publish.pcapng"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        rows = tshark(path, *decode_args(cell), "-Y", "mqtt", "-T", "fields", "-e",
                      "mqtt.msgtype", "-e", "mqtt.clientid", "-e", "mqtt.topic")
        fields = [r.split("\t") for r in rows]
        # the board's own connection, decrypted with the secrets it exported: its CONNECT
        # (client id = the device id), the broker's CONNACK and its PUBLISH
        assert any(hil_config.device.id in f[1] for f in fields if f[0] == "1"), rows
        types = {t for f in fields for t in f[0].split(",")}
        assert {"1", "2", "3"} <= types, (mode, rows)
        assert any(f"hil/virtual-0/{mode}/" in f[2] for f in fields if f[0] == "3"), rows
        lines = embedded_secrets(path)
        assert lines and all(ln.startswith(("CLIENT_RANDOM ", "CLIENT_", "SERVER_", "EXPORTER"))
                             for ln in lines), lines
        secrets += [ln.split()[-1] for ln in lines]
        # without the embedded secrets the same file shows no MQTT at all
        bare = without_secrets(path, tmp_path / f"{mode}-bare.pcapng")
        assert tshark(bare, *decode_args(cell), "-Y", "tls") != []
        assert tshark(bare, *decode_args(cell), "-Y", "mqtt") == []
    web = cells[("virtual-0", "https", "serves_page_and_rpc")]
    web_path = Path(web["properties"]["capture"])
    shown = "\n".join(tshark(web_path, *decode_args(web), "-Y", "http"))
    assert "GET / HTTP/1.1" in shown and "GET /rpc/Sys.GetInfo" in shown and "200 OK" in shown
    secrets += [ln.split()[-1] for ln in embedded_secrets(web_path)]
    assert secrets

    # the secrets are in the pcapngs only: not in any log, transcript, results.json, junit.xml,
    # pytest-embedded's console logs of this run, or what `hil run` printed
    texts = {str(p): p.read_bytes() for p in run.rglob("*") if p.is_file()
             and p.suffix != ".pcapng"}
    embedded = Path(tempfile.gettempdir()) / "pytest-embedded"
    texts.update({str(p): p.read_bytes() for p in embedded.rglob("*")
                  if p.is_file() and p.stat().st_mtime >= started})
    texts["stdout"], texts["stderr"] = proc.stdout.encode(), proc.stderr.encode()
    for secret in secrets:
        found = [name for name, text in texts.items()
                 if secret.lower().encode() in text.lower()]
        assert not found, f"a TLS secret appears in {found}"
    # nothing of the capture's private files is left, and no tcpdump runs on
    private = Path(tempfile.gettempdir()) / f"hil-{os.getuid()}"
    assert not [p for p in private.glob("*-capture-*")], list(private.iterdir())
    left = subprocess.run(["pgrep", "-a", "-x", "tcpdump"], capture_output=True, text=True)
    assert left.returncode == 1, left.stdout


def test_default_keeps_only_a_failing_cells_capture_and_names_it(tmp_path: Path,
                                                                  hil_config: HilConfig) -> None:
    config = failing_psk_config(tmp_path, hil_config)
    proc = hil("run", "--no-negative",
               "--no-resilience", "--mode", "psk", "--mode", "ca", config=config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = tmp_path / "runs" / "latest"
    kept = sorted(p.name for p in run.glob("*.pcapng"))
    assert kept == ["virtual-0.psk.connect_publish.pcapng"], kept
    cell = cells_of(run)[("virtual-0", "psk", "connect_publish")]
    path = run.resolve() / kept[0]
    assert cell["verdict"] == "FAIL" and f"[capture: {path}]" in cell["reason"]
    assert f"capture of virtual-0.psk.connect_publish: tshark -r {path} -d tls.port==" in \
        proc.stdout
    junit = (run / "junit.xml").read_text()
    assert f'name="capture" value="{path}"' in junit
    # the refused handshake is in it: the board's ClientHello and the broker's alert
    shown = "\n".join(tshark(path, "-Y", "tls"))
    assert "Client Hello" in shown and "Alert" in shown, f"{cell['reason']}\n{shown}"


def test_capture_off_writes_nothing(tmp_path: Path, hil_config: HilConfig) -> None:
    config = failing_psk_config(tmp_path, hil_config)
    proc = hil("run", "--capture", "off", "--no-negative",
               "--no-resilience", "--mode", "psk", config=config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = tmp_path / "runs" / "latest"
    assert not list(run.rglob("*.pcap*"))
    assert not any("capture" in c["properties"] for c in cells_of(run).values())


def test_a_capture_that_cannot_start_is_said_once_and_the_cells_run(
        tmp_path: Path, hil_config: HilConfig) -> None:
    # stands for a runner where this user may not capture: a tcpdump that is refused
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "tcpdump").write_text(
        "#!/bin/sh\necho \"tcpdump: lo: You don't have permission to perform this capture on "
        "that device\" >&2\nexit 1\n")
    (fake / "tcpdump").chmod(0o755)
    proc = hil("run", "--no-negative", "--no-resilience", "--mode", "psk", "--mode", "ca",
               config=tmp_config(tmp_path, hil_config),
               env={"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = [ln for ln in proc.stdout.splitlines() if "no capture" in ln]
    assert len(said) == 1 and "You don't have permission" in said[0] and "setcap" in said[0], \
        proc.stdout
    run = tmp_path / "runs" / "latest"
    assert not list(run.rglob("*.pcap*"))
    assert all(c["verdict"] == "pass" for c in cells_of(run).values())


# In the nested run: the agent of the cell's board is frozen (SIGSTOP) right after the cell's
# last assertion, so the board hangs at the cell's end; once the cell's end (the board_console
# fixture's tear-down, after the capture's) is over it is let go (SIGCONT), and how long the end
# took goes to hang.json.
HANG_AT_THE_END = """
import json, os, signal, time
import pytest

hung = []

@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield  # the cell's body passed: its last assertion is behind it
    hung.append((item.funcargs["board_strategy"].driver.pid, time.monotonic()))
    os.kill(hung[-1][0], signal.SIGSTOP)
    return result

def pytest_fixture_post_finalizer(fixturedef, request):
    if fixturedef.argname == "board_console" and hung:  # the cell's end is over
        pid, since = hung.pop()
        os.kill(pid, signal.SIGCONT)
        with open("hang.json", "w") as fh:
            json.dump({"end_s": time.monotonic() - since}, fh)
"""


def test_a_board_hung_at_a_cells_end_fails_it_once_and_keeps_its_capture(
        tmp_path: Path, hil_config: HilConfig) -> None:
    """The default (--hil-capture fail): a cell whose board stops answering after the cell's
    last assertion fails naming the hang, keeps its capture (named in its reason), and its
    end waits one [timeouts] command for the board, not two."""
    from rig.cli import RUN_INI

    command_s = 4.0
    config = tmp_config(tmp_path, hil_config)
    text = config.read_text()
    config.write_text(re.sub(r"(?m)^command = [0-9.]+", f"command = {command_s}", text))
    assert config.read_text() != text, "hil.toml's [timeouts] command was not found"
    (tmp_path / "hang_at_the_end.py").write_text(HANG_AT_THE_END)
    run_dir, results = tmp_path / "run", tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if k not in ("HIL_CONFIG", "PYTEST_ADDOPTS",
                                                            "PYTEST_PLUGINS")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "rig.cases.test_mqtt_modes", "-q",
         "-p", "no:cacheprovider", "-p", "no:labgrid", "-p", "hang_at_the_end",
         "-c", os.devnull, "--noconftest", "--rootdir", str(tmp_path), *RUN_INI,
         "--hil-config", str(config), "--hil-run-dir", str(run_dir), "--hil-results",
         str(results), "--hil-capture", "fail", "--mode", "ca", "-k", "connect_publish"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    [cell] = json.loads(results.read_text())["cells"]
    path = run_dir / "virtual-0.ca.connect_publish.pcapng"
    # a failure at the cell's end (its tear-down) is an ERROR in results.json and JUnit
    assert cell["verdict"] == "ERROR", cell
    assert (f"virtual-0: no answer for {command_s:g} s after `tls keylog off` while ending "
            "the cell") in cell["reason"], cell["reason"]
    assert f"[capture: {path}]" in cell["reason"], cell["reason"]
    assert cell["properties"]["capture"] == str(path)
    assert path.is_file(), sorted(p.name for p in run_dir.iterdir())
    # the cell's traffic is in it, decrypted with the secrets the board exported before it hung
    rows = tshark(path, *decode_args(cell), "-Y", "mqtt", "-T", "fields", "-e", "mqtt.msgtype")
    assert {"1", "2", "3"} <= {t for r in rows for t in r.split(",")}, rows
    took = json.loads((tmp_path / "hang.json").read_text())["end_s"]
    assert command_s <= took < 1.5 * command_s, f"the cell's end took {took:.1f} s"
