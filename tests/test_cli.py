"""The `hil` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from rig.config import HilConfig
from rig.observer import Observer
from rig.pki import Pki
from rig.tls import credentials

ROOT = Path(__file__).resolve().parents[1]


def hil(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rig.cli", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def tmp_config(tmp_path: Path, hil_config: HilConfig) -> Path:
    """The committed hil.toml, with run and PKI directories under tmp_path."""
    text = hil_config.source.read_text()
    text = text.replace('run_dir = "runs"', f'run_dir = "{tmp_path}/runs"')
    text = text.replace('dir = "pki"', f'dir = "{tmp_path}/pki"')
    path = tmp_path / "hil.toml"
    path.write_text(text)
    return path


def test_doctor_lists_what_is_there(tmp_path: Path, hil_config: HilConfig) -> None:
    proc = hil("doctor", config=tmp_config(tmp_path, hil_config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
    assert re.search(r"\bok\b.*2\.\d+\.\d+", rows["mosquitto (broker)"])
    assert "ok" in rows["hil.toml"] and "mbedTLS headers" in rows
    assert "run `hil pki init`" in rows["pki"]  # not generated yet in this tmp dir


def test_pki_init_then_show(tmp_path: Path, hil_config: HilConfig) -> None:
    config = tmp_config(tmp_path, hil_config)
    assert hil("pki", "show", config=config).returncode == 1  # nothing there yet
    init = hil("pki", "init", config=config)
    assert init.returncode == 0 and "created" in init.stdout
    show = hil("pki", "show", config=config)
    assert show.returncode == 0 and "missing" not in show.stdout
    psk = (tmp_path / "pki" / "psk.hex").read_text().strip()
    assert psk not in init.stdout + show.stdout + init.stderr + show.stderr


def test_run_preflights_every_mode(tmp_path: Path, hil_config: HilConfig) -> None:
    proc = hil("run", config=tmp_config(tmp_path, hil_config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed, 0 failed" in proc.stdout
    results = json.loads((tmp_path / "runs" / "latest" / "results.json").read_text())
    verdicts = {r["mode"]: r["verdict"] for r in results["preflight"]}
    assert verdicts == {"ca": "pass", "mutual": "pass", "psk": "pass"}
    assert (tmp_path / "runs" / "latest" / "broker-psk.log").exists()


def test_broker_up_prints_a_working_mosquitto_pub(tmp_path: Path, hil_config: HilConfig,
                                                  pki: Pki) -> None:
    config = tmp_config(tmp_path, hil_config)
    proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "--config", str(config), "broker",
                             "up", "--mode", "psk"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        out: list[str] = []
        for line in proc.stdout:
            out.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(out)
        port = int(re.search(r"listening on [\d.]+:(\d+)", text).group(1))  # type: ignore[union-attr]
        pid = int(re.search(r"pid (\d+)", text).group(1))  # type: ignore[union-attr]
        command = next(ln.strip() for ln in out if ln.strip().startswith("mosquitto_pub"))
        psk = (tmp_path / "pki" / "psk.hex").read_text().strip()
        assert psk not in text  # the printed line reads the key from its file
        from rig.config import load
        cfg = load(config)
        topic = "hil/test"
        with Observer(cfg.broker.host, port, credentials(cfg, Pki(cfg), "psk")) as obs:
            obs.subscribe(topic)
            shell = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                                   timeout=30)
            assert shell.returncode == 0, shell.stderr
            assert obs.wait_for(topic).payload == b"hello"
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, rest
    assert "broker stopped" in rest
    try:
        os.kill(pid, 0)
        raise AssertionError(f"broker pid {pid} still running after `hil broker up` exited")
    except ProcessLookupError:
        pass


def test_unknown_mode_is_a_usage_error(tmp_path: Path, hil_config: HilConfig) -> None:
    proc = hil("broker", "up", "--mode", "tls13", config=tmp_config(tmp_path, hil_config))
    assert proc.returncode == 2 and "invalid choice: 'tls13'" in proc.stderr


