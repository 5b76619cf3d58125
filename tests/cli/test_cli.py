"""The `hil` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from rig.cases.negative import CASES
from rig.config import HilConfig
from rig.host.observer import Observer
from rig.host.tls import credentials
from rig.pki import Pki
from tests.support import ROOT, assert_no_secret, hil, lock_held_elsewhere, tmp_config


def test_doctor_lists_what_is_there(tmp_path: Path, hil_config: HilConfig) -> None:
    proc = hil("doctor", config=tmp_config(tmp_path, hil_config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
    assert re.search(r"\bok\b.*2\.\d+\.\d+", rows["mosquitto (broker)"])
    assert "ok" in rows["hil.toml"] and "mbedTLS headers" in rows
    assert "run `hil pki init`" in rows["pki"]  # not generated yet in this tmp dir


def test_doctor_warns_about_a_runner_boards_cannot_use(tmp_path: Path,
                                                       hil_config: HilConfig) -> None:
    config = tmp_config(tmp_path, hil_config)
    config.write_text(config.read_text() + """
[[boards]]
name = "esp32-a"
kind = "esp32"
port = "/dev/ttyUSB-not-here"
address = "10.9.8.7"
""")
    text = config.read_text().replace('ssid_env = ""', 'ssid_env = "HIL_TEST_SSID_UNSET"')
    config.write_text(text.replace('password_env = ""', 'password_env = "HIL_TEST_PASS_UNSET"'))
    proc = hil("doctor", config=config, env={"ESPPORT": "/dev/ttyUSB7"})
    rows = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
    assert "which is themselves" in rows["broker host for boards"]  # 127.0.0.1 from a chip
    assert "/dev/ttyUSB7" in rows["ESPPORT"] and "unset ESPPORT" in rows["ESPPORT"]
    assert "not in [device] web_names" in rows["board esp32-a address"]
    assert "HIL_TEST_SSID_UNSET, HIL_TEST_PASS_UNSET" in rows["wifi credentials"]
    assert "does not exist" in rows["board esp32-a"]


def test_pki_init_then_show(tmp_path: Path, hil_config: HilConfig) -> None:
    config = tmp_config(tmp_path, hil_config)
    assert hil("pki", "show", config=config).returncode == 1  # nothing there yet
    init = hil("pki", "init", config=config)
    show = hil("pki", "show", config=config)
    psk_file = tmp_path / "pki" / "psk.hex"
    if psk_file.exists():  # first: the asserts below show both runs' output when they fail
        assert_no_secret(psk_file.read_text().strip(), "the PSK (pki/psk.hex)", {
            "`hil pki init` stdout": init.stdout, "`hil pki init` stderr": init.stderr,
            "`hil pki show` stdout": show.stdout, "`hil pki show` stderr": show.stderr})
    assert init.returncode == 0 and "created" in init.stdout
    assert show.returncode == 0 and "missing" not in show.stdout
    assert psk_file.exists()


def test_run_is_the_matrix(tmp_path: Path, hil_config: HilConfig) -> None:
    """The committed hil.toml's `hil run`: the whole matrix on both virtual boards, native and
    esp, one worker each, every cell passing, each board's variant said."""
    proc = hil("run", config=tmp_config(tmp_path, hil_config, esp=True))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Wi-Fi" in proc.stdout  # what a virtual board does not exercise is said
    assert "2 virtual board(s), 2 in parallel" in proc.stdout
    latest = tmp_path / "runs" / "latest"
    results = json.loads((latest / "results.json").read_text())
    cells = {(c["board"], c["mode"], c["case"]): c for c in results["cells"]}
    n = len(results["cells"])
    assert f"{n} passed, 0 failed" in proc.stdout
    assert f"[{n}/{n}]" in proc.stderr  # live progress, one line per cell
    assert {c["verdict"] for c in cells.values()} == {"pass"}
    # how busy the runner was while the cells ran (both workers metered), where Linux says
    if Path("/proc/pressure/cpu").exists():
        assert 0.0 < results["cpu_pressure"] <= 1.0, results["cpu_pressure"]
    for board in ("virtual-0", "virtual-esp"):
        assert sum(c["expected"] == "refused" and c["board"] == board
                   and c["case"].startswith("refused-") for c in cells.values()) == len(CASES)
        assert cells[(board, "psk", "connect_publish")]["cipher_suite"] == \
            "TLS-PSK-WITH-AES-128-CCM-8"
        assert cells[(board, "https-mutual", "refuses-no-cert")]["verdict"] == "pass"
    # which variant each board is: summary, results.json, JUnit
    boards = results["boards"]
    assert boards["virtual-0"]["kind"] == "virtual native"
    assert re.search(r"mbedTLS 2\.28\.\d+, 64-bit", boards["virtual-0"]["firmware"]), boards
    assert boards["virtual-esp"]["kind"] == "virtual esp"
    assert re.search(r"esp variant, mbedTLS 3\.6\.\d+, 32-bit", boards["virtual-esp"]["firmware"])
    assert "board virtual-esp: virtual esp: hil-agent" in proc.stdout
    # the chip's clock: only the esp board has its rules
    assert cells[("virtual-esp", "ca", "clock_unset")]["verdict"] == "pass"
    assert "starts in the future" in cells[("virtual-esp", "ca", "clock_unset")]["device_reason"]
    assert not any(c["case"] == "clock_unset" for c in results["cells"]
                   if c["board"] == "virtual-0")
    # the device's HTTPS server in both modes, each with its handshake time
    for mode in ("https", "https-mutual"):
        serves = cells[("virtual-0", mode, "serves_page_and_rpc")]
        assert serves["handshake_ms"] is not None and serves["handshake_ms"] > 0
    no_cert = cells[("virtual-0", "https-mutual", "refuses-no-cert")]
    assert "client has no certificate" in no_cert["device_reason"]
    assert cells[("virtual-0", "psk", "connect_publish")]["cipher_suite"] == \
        "TLS-PSK-WITH-AES-128-CCM-8"
    assert cells[("virtual-0", "mutual", "connect_publish")]["handshake_ms"] is not None
    junit = (latest / "junit.xml").read_text()
    assert 'name="virtual-0.psk.connect_publish"' in junit
    assert 'name="cipher_suite" value="TLS-PSK-WITH-AES-128-CCM-8"' in junit
    assert 'name="board.virtual-0" value="virtual board: ' in junit
    assert re.search(r'name="board.virtual-esp" value="virtual board: [^"]*variant esp', junit)
    assert re.search(r'name="firmware" value="hil-agent [^"]*esp variant, mbedTLS 3\.6', junit)
    assert list(latest.glob("gw*/broker-psk.log"))
    # negative cells: expected refusals that pass with both sides' reasons, shown in the table
    wrong_key = cells[("virtual-0", "psk", "refused-wrong-key")]
    assert wrong_key["expected"] == "refused" and wrong_key["verdict"] == "pass"
    assert "bad_record_mac" in wrong_key["device_reason"]
    assert "decryption failed or bad record mac" in wrong_key["broker_reason"]
    assert 'name="virtual-0.mutual.refused-no-cert"' in junit
    assert re.search(r"refused-sha1 +refused .*pass +device: .*unacceptable hash", proc.stdout)
    assert list(latest.glob("gw*/broker-ca-sha1.log"))


def test_run_puts_each_board_on_its_own_worker(tmp_path: Path, hil_config: HilConfig) -> None:
    """Two boards run in parallel (pytest-xdist): all of one board's cells on one worker, the
    boards on different workers, and junit.xml still names cells <board>.<mode>.<case>."""
    config = tmp_config(tmp_path, hil_config)
    config.write_text(config.read_text() + '\n[[boards]]\nname = "virtual-1"\nkind = "virtual"\n')
    proc = hil("run", "--mode", "psk", "--mode", "https", config=config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 virtual board(s), 2 in parallel" in proc.stdout
    latest = tmp_path / "runs" / "latest"
    cells = json.loads((latest / "results.json").read_text())["cells"]
    workers = {b: {c["worker"] for c in cells if c["board"] == b}
               for b in ("virtual-0", "virtual-1")}
    assert all(len(w) == 1 for w in workers.values()), workers
    assert workers["virtual-0"] != workers["virtual-1"], workers
    assert {c["verdict"] for c in cells} == {"pass"}
    junit = (latest / "junit.xml").read_text()
    for board in ("virtual-0", "virtual-1"):
        assert f'name="{board}.psk.connect_publish"' in junit
        assert f'name="board.{board}" value="virtual board: ' in junit
    for worker in (*workers["virtual-0"], *workers["virtual-1"]):
        assert (latest / worker / "broker-psk.log").exists()  # each worker has its brokers


def test_run_refuses_a_board_another_process_holds(tmp_path: Path,
                                                   hil_config: HilConfig) -> None:
    """A board in use by another run is an error naming the holder, not a fight over it."""
    config = tmp_config(tmp_path, hil_config)
    with lock_held_elsewhere(tmp_path / ".hil" / "locks", "virtual-0") as pid:
        proc = hil("run", "--mode", "psk", "--no-negative", "--no-resilience", config=config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cells = json.loads((tmp_path / "runs" / "latest" / "results.json").read_text())["cells"]
    board = next(c for c in cells if c["board"] == "virtual-0")
    assert board["verdict"] == "ERROR"
    assert f"board virtual-0 is in use by another process (pid {pid}" in board["reason"]


def test_pytest_refuses_a_distribution_that_splits_boards() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "each",
                           "--collect-only", "-q"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage error
    assert "--dist each: the rig schedules boards itself" in proc.stderr


def test_pytest_runs_without_xdist() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-W", "error",
                           "--collect-only", "-q", "rig/cases/test_mqtt_modes.py"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_connect_publish[ca-virtual-0]" in proc.stdout


def test_run_keeps_going_when_one_mode_breaks(tmp_path: Path, hil_config: HilConfig) -> None:
    config = tmp_config(tmp_path, hil_config)
    text = config.read_text()
    config.write_text(re.sub(r"broker_ciphers = \"PSK[^\"]*\"", 'broker_ciphers = "NOPE"', text))
    proc = hil("run", "--no-negative", "--no-resilience", config=config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cells = json.loads((tmp_path / "runs" / "latest" / "results.json").read_text())["cells"]
    verdicts = {(c["board"], c["mode"]): c["verdict"] for c in cells
                if c["case"] == "connect_publish"}
    assert verdicts == {("virtual-0", "ca"): "pass", ("virtual-0", "mutual"): "pass",
                        ("virtual-0", "psk"): "ERROR"}
    psk = next(c for c in cells if c["mode"] == "psk")
    assert "Unable to set TLS ciphers" in psk["reason"]  # the broker's own words
    failed = [c for c in cells if c["verdict"] != "pass"]
    assert [c["mode"] for c in failed] == ["psk", "psk"]  # its preflight and its board cell
    assert f"{len(cells) - 2} passed, 2 failed" in proc.stdout


def test_run_on_physical_boards_without_any_says_why(tmp_path: Path,
                                                     hil_config: HilConfig) -> None:
    proc = hil("run", "--hil", config=tmp_config(tmp_path, hil_config))
    assert proc.returncode == 1
    assert "no esp32 board in" in proc.stdout and "skip" in proc.stdout


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
        command = next(ln.strip() for ln in out if "mosquitto_pub -h" in ln)
        psk = (tmp_path / "pki" / "psk.hex").read_text().strip()
        # the printed line reads the key from its file...
        assert_no_secret(psk, "the PSK (pki/psk.hex)", {"`hil broker up` output": out})
        assert "--psk" not in command.split("mosquitto_pub -h", 1)[1]  # ...not into argv
        assert "XDG_CONFIG_HOME" in command and "never through a command line" in text
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




def test_unknown_board_is_a_usage_error(tmp_path: Path, hil_config: HilConfig) -> None:
    proc = hil("run", "--board", "nope", config=tmp_config(tmp_path, hil_config))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("hil: error: no board named 'nope' in ")
    assert "(boards: virtual-0)" in proc.stderr


def test_broker_up_without_mosquitto_leaves_no_run_dir(tmp_path: Path,
                                                        hil_config: HilConfig) -> None:
    config = tmp_config(tmp_path, hil_config)
    config.write_text(config.read_text().replace('mosquitto = "mosquitto"',
                                                 'mosquitto = "/tmp/hil-nope/mosquitto"'))
    proc = hil("broker", "up", "--mode", "ca", config=config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert ("hil: error: mosquitto not found: /tmp/hil-nope/mosquitto ([broker] mosquitto in "
            "hil.toml) does not exist") in proc.stderr
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), list(runs.iterdir())


def test_doctor_checks_curl_and_names_hil_sh_packages(tmp_path: Path,
                                                      hil_config: HilConfig) -> None:
    """Without curl and clang on PATH, doctor says so, with the packages hil.sh installs."""
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = hil("doctor", config=tmp_config(tmp_path, hil_config), env={"PATH": str(empty)})
    rows = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
    assert proc.returncode == 1, proc.stdout + proc.stderr
    curl = rows["curl (reference HTTPS peer)"]
    assert "MISSING" in curl and "curl not on PATH" in curl
    assert "curl (reference HTTPS peer)" in proc.stdout.splitlines()[-1]  # a required item
    apt = re.search(r"APT_PACKAGES=\(\n(.*?)\n\)", (ROOT / "hil.sh").read_text(), re.S)
    assert apt is not None
    packages = {word for line in apt.group(1).splitlines()
                for word in line.split("#", 1)[0].split()}
    for name in ("curl (reference HTTPS peer)", "clang (fuzzers and sanitizers)"):
        fix = rows[name].split("apt-get install ", 1)[1].split()
        assert fix and set(fix) <= packages, (name, fix, packages)
    capture = rows["capture on lo"]  # not required: the cells run without a capture
    assert "tcpdump, mergecap, tshark, editcap not on PATH" in capture, capture
    assert {"tcpdump", "tshark"} <= packages


def test_run_fails_when_a_selected_board_did_not_run(tmp_path: Path,
                                                     hil_config: HilConfig) -> None:
    """One board passes, the other is unavailable (its build is missing): not green, and the
    summary names the board and why; --allow-missing accepts it and says so."""
    config = tmp_config(tmp_path, hil_config)
    config.write_text(config.read_text() + f'\n[[boards]]\nname = "virtual-9"\nkind = "virtual"'
                      f'\nbuild_dir = "{tmp_path}/no-build-here"\n')
    proc = hil("run", "--mode", "psk", "--no-negative", "--no-resilience", config=config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cells = json.loads((tmp_path / "runs" / "latest" / "results.json").read_text())["cells"]
    assert {c["verdict"] for c in cells if c["board"] == "virtual-0"} == {"pass"}
    assert {c["verdict"] for c in cells if c["board"] == "virtual-9"} == {"skip"}
    assert "did not run (counted as a failure):" in proc.stdout
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("  virtual-9:"))
    assert f"{tmp_path}/no-build-here/hil-agent does not exist" in line

    allowed = hil("run", "--mode", "psk", "--no-negative",
                  "--no-resilience", "--allow-missing", config=config)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "did not run (accepted (--allow-missing)):" in allowed.stdout


def test_run_on_a_physical_board_that_is_not_attached_names_it(tmp_path: Path,
                                                              hil_config: HilConfig) -> None:
    config = tmp_config(tmp_path, hil_config)
    config.write_text(config.read_text() + '\n[[boards]]\nname = "esp32-a"\nkind = "esp32"\n'
                      'port = "/dev/ttyUSB-not-here"\nflash = false\n')
    proc = hil("run", "--hil", "--mode", "ca", "--no-negative", "--no-resilience", config=config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "esp32-a: " in proc.stdout and "/dev/ttyUSB-not-here does not exist" in proc.stdout
