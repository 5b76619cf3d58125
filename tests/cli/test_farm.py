"""Boards on a labgrid farm, for real on loopback: a real labgrid-coordinator and labgrid-exporter
(ser2net serving each virtual board's pty as RFC 2217) stand in for a farm of remote ESP32s
(tests/farm.py; the power switches are the stand-in). `hil run --hil` acquires the places named
in hil.toml (by name, or by tags through a reservation), runs the matrix on them and releases
them however it ends. What this cannot cover: esptool flashing over RFC 2217 and a real EN line
(a pty has no modem lines, so these boards are reset through their power switch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rig.boards.host_build import build_host_agent
from rig.config import HilConfig
from tests.farm import FarmBoard, LoopbackFarm
from tests.support import ROOT, committed_toml


@pytest.fixture
def agent(request: pytest.FixtureRequest) -> Path:
    if request.config.getoption("--hil"):
        pytest.skip("runs a nested `hil run --hil` against a loopback farm; not under --hil")
    # what a chip runs: 32-bit, mbedTLS 3.6, no clock until set (sanitized: a test of the rig)
    return build_host_agent("esp-asan")


def _config(tmp_path: Path, hil_config: HilConfig, farm: LoopbackFarm, boards: str,
            acquire_timeout: float = 30.0) -> Path:
    text = committed_toml(hil_config)
    head, _, _ = text.partition("\n[[boards]]")
    text = head.replace('run_dir = "runs"', f'run_dir = "{tmp_path}/runs"')
    text = text.replace('dir = "pki"', f'dir = "{hil_config.pki_dir}"')
    assert 'coordinator = ""' in text and "acquire_timeout = 300.0" in text
    text = text.replace('coordinator = ""', f'coordinator = "{farm.address}"')
    text = text.replace("acquire_timeout = 300.0", f"acquire_timeout = {acquire_timeout}")
    text += boards
    path = tmp_path / "hil.toml"
    path.write_text(text)
    return path


def _board(name: str, selector: str) -> str:
    return (f'\n[[boards]]\nname = "{name}"\nkind = "esp32"\n{selector}\nflash = false\n'
            'address = "127.0.0.1"\n')


def _env(config: Path) -> dict[str, str]:
    """The rig's labgrid state (place locks, markers) next to the test's hil.toml, not in the
    user's ~/.cache."""
    return {**os.environ, "HIL_CACHE_DIR": str(config.parent / "cache")}


def _hil_run(config: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rig.cli", "--config", str(config), "run",
                           "--hil", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=_env(config))


def _results(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "runs" / "latest" / "results.json")
                                      .read_text())
    return data


@pytest.fixture
def two_places(tmp_path: Path, agent: Path) -> Iterator[LoopbackFarm]:
    with LoopbackFarm(tmp_path / "farm", [
            FarmBoard("virt-a", agent),
            FarmBoard("virt-b", agent, tags={"board": "esp32-virtual", "slot": "b"})]) as farm:
        yield farm


def test_hil_run_on_two_farm_places(tmp_path: Path, hil_config: HilConfig,
                                    two_places: LoopbackFarm) -> None:
    """The whole matrix on two places, one by name and one by tags, one worker each; both
    released at the end, no reservation left."""
    farm = two_places
    config = _config(tmp_path, hil_config, farm,
                     _board("farm-a", 'place = "virt-a"') +
                     _board("farm-b", 'tags = { board = "esp32-virtual", slot = "b" }'))
    t0 = time.monotonic()
    proc = _hil_run(config)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    print(f"hil run --hil on two farm places: {elapsed:.1f} s")
    data = _results(tmp_path)
    cells = data["cells"]
    for name, place in (("farm-a", "virt-a"), ("farm-b", "virt-b")):
        mine = [c for c in cells if c["board"] == name]
        assert {c["mode"] for c in mine} == {"ca", "mutual", "psk", "https", "https-mutual"}
        assert all(c["verdict"] == "pass" for c in mine), [c for c in mine
                                                           if c["verdict"] != "pass"]
        assert {(c["properties"]["place"], c["properties"]["exporter"]) for c in mine} == {
            (place, "bench1")}
        assert len({c["worker"] for c in mine}) == 1
        assert data["farm"][name]["place"] == place
        assert f"board {name}: labgrid place {place} on exporter bench1" in proc.stdout
    assert {c["worker"] for c in cells if c["board"] == "farm-a"} != {
        c["worker"] for c in cells if c["board"] == "farm-b"}
    psk = next(c for c in cells if (c["board"], c["mode"], c["case"]) ==
               ("farm-a", "psk", "connect_publish"))
    assert psk["cipher_suite"] == "TLS-PSK-WITH-AES-128-CCM-8"
    clock = next(c for c in cells if c["board"] == "farm-b" and c["case"] == "clock_unset")
    assert "starts in the future" in clock["device_reason"], clock
    junit = (tmp_path / "runs" / "latest" / "junit.xml").read_text()
    assert 'name="place" value="virt-a"' in junit and 'name="exporter" value="bench1"' in junit
    # reset through the place's power (a pty has no EN line): first use and the clock cell
    assert data["resets"] == {"farm-a": 2, "farm-b": 2}, data["resets"]
    assert [b.power_ons for b in farm.boards] == [3, 3]  # the farm's start, then two resets
    assert data["recovery"] == []
    assert farm.holder("virt-a") == "" and farm.holder("virt-b") == ""
    assert "Reservation" not in farm.reservations()
    for b in farm.boards:
        assert b.board is not None and b.board.sanitizer_report() == ""


def test_a_place_held_by_another_client_fails_with_who_holds_it(
        tmp_path: Path, hil_config: HilConfig, two_places: LoopbackFarm) -> None:
    farm = two_places
    farm.as_other("nightly-other", "acquire", place="virt-a")
    config = _config(tmp_path, hil_config, farm, _board("farm-a", 'place = "virt-a"'),
                     acquire_timeout=2)
    t0 = time.monotonic()
    proc = _hil_run(config, "--mode", "ca", "--no-negative", "--no-resilience")
    waited = time.monotonic() - t0
    assert proc.returncode == 1, proc.stdout[-3000:]
    holder = farm.holder("virt-a")
    assert holder.endswith("/nightly-other")  # still theirs: the rig waited, never kicked
    cells = [c for c in _results(tmp_path)["cells"] if c["board"] == "farm-a"]
    assert cells and all(c["verdict"] in ("FAIL", "ERROR") for c in cells), cells
    want = f"place virt-a is acquired by {holder}; waited 2 s (hil.toml [labgrid] acquire_timeout)"
    assert all(c["reason"].startswith(f"board farm-a: {want}") for c in cells), cells[0]["reason"]
    assert want in proc.stdout
    assert waited < 60
    _never_touched(_results(tmp_path), "farm-a")
    assert "Reservation" not in farm.reservations()
    farm.as_other("nightly-other", "release", place="virt-a")


def _never_touched(data: dict[str, Any], board: str) -> None:
    """A board whose place the run never had: no recovery step, no reset, no quarantine."""
    assert [r for r in data["recovery"] if r["board"] == board] == [], data["recovery"]
    assert data["resets"].get(board, 0) == 0, data["resets"]
    assert not [c for c in data["cells"] if "quarantined" in c.get("reason", "")]


def _labgrid_clients(farm: LoopbackFarm) -> list[int]:
    """labgrid-client processes talking to this farm's coordinator."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"labgrid-client") for a in argv[:2]) and (
                farm.address.encode() in argv):
            pids.append(int(proc.name))
    return pids


def _pytest_hil(config: Path, tmp_path: Path) -> subprocess.Popen[str]:
    """pytest --hil on the farm board, as a runner's nightly calls it."""
    argv = [sys.executable, "-m", "pytest", "-p", "no:labgrid", "-p", "no:cacheprovider", "-q",
            "--pyargs", "rig.cases.test_mqtt_modes", "--hil", "--hil-config", str(config),
            "--board", "farm-a", "-c", os.devnull, "--rootdir", str(tmp_path)]
    return subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env(config))


def _wait_for(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _interrupted_on_both_places(tmp_path: Path, hil_config: HilConfig, farm: LoopbackFarm,
                                ctrl_c: int) -> tuple[Path, subprocess.Popen[str], str]:
    """`hil run --hil` on both places, given `ctrl_c` SIGINTs 0.3 s apart once a first cell
    runs; (its hil.toml, the process, what it printed on stderr)."""
    config = _config(tmp_path, hil_config, farm,
                     _board("farm-a", 'place = "virt-a"') +
                     _board("farm-b", 'tags = { board = "esp32-virtual", slot = "b" }'))
    run = subprocess.Popen([sys.executable, "-m", "rig.cli", "--config", str(config), "run",
                            "--hil"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=_env(config))
    try:
        _wait_for("both places acquired",
                  lambda: farm.holder("virt-a") and farm.holder("virt-b"))
        runs = tmp_path / "runs" / "latest"
        _wait_for("a first cell", lambda: any(runs.glob("gw*/steps.jsonl")))
        for i in range(ctrl_c):
            time.sleep(0.3 if i else 0.0)
            run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    return config, run, err


def test_ctrl_c_releases_both_places_and_a_killed_runs_are_released_next_time(
        tmp_path: Path, hil_config: HilConfig, two_places: LoopbackFarm) -> None:
    farm = two_places
    config, run, err = _interrupted_on_both_places(tmp_path, hil_config, farm, 1)
    assert run.returncode != 0
    assert "stopped by SIGINT" in err, err[-2000:]
    assert farm.holder("virt-a") == "" and farm.holder("virt-b") == ""
    assert "Reservation" not in farm.reservations()

    # A run killed with SIGKILL cannot release: its places stay acquired by this runner until
    # the next run of this runner releases them at its start.
    argv = [sys.executable, "-m", "pytest", "-p", "no:labgrid", "-p", "no:cacheprovider", "-q",
            "--pyargs", "rig.cases.test_mqtt_modes", "--hil", "--hil-config", str(config),
            "--board", "farm-a", "-c", os.devnull, "--rootdir", str(tmp_path)]
    killed = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=_env(config))
    try:
        _wait_for("the place acquired", lambda: farm.holder("virt-a"))
    finally:
        killed.kill()
        killed.wait(30)
    assert farm.holder("virt-a"), "SIGKILL should have left the place acquired"
    proc = _hil_run(config, "--board", "farm-a", "--mode", "ca", "--no-negative", "--no-resilience")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (tmp_path / "runs" / "latest" / "pytest.log").read_text()
    assert f"released place virt-a, left acquired by a run that died (pid {killed.pid}" in log
    assert farm.holder("virt-a") == ""


def test_a_board_that_stops_answering_is_reset_then_quarantined(
        tmp_path: Path, hil_config: HilConfig, agent: Path) -> None:
    """Its firmware hangs at boot from its 3rd power-on (the farm's start, the first use, then
    the reset the clock cell asks for): the reset (its power: no EN line on a pty) does not
    bring it back, it has no other power switch, so it is quarantined; every later cell says
    so, none is skipped, and results.json has each step."""
    with LoopbackFarm(tmp_path / "farm", [FarmBoard("virt-a", agent, hang_from=3)]) as farm:
        config = _config(tmp_path, hil_config, farm, _board("farm-a", 'place = "virt-a"'))
        text = config.read_text().replace("board_boot = 15.0", "board_boot = 3.0")
        config.write_text(text)
        proc = _hil_run(config, "--mode", "ca")
        assert proc.returncode == 1, proc.stdout[-3000:]
        assert farm.holder("virt-a") == ""
    data = _results(tmp_path)
    cells = data["cells"]
    before = [c for c in cells if c["case"] in ("connect_publish", "observer_sees_publish")]
    assert before and all(c["verdict"] == "pass" for c in before), before
    clock = next(c for c in cells if c["case"] == "clock_unset")
    assert clock["verdict"] in ("FAIL", "ERROR")
    assert clock["reason"].startswith("board quarantined: no answer after a reset"), clock
    after = [c for c in cells if c["expected"] == "refused"]
    assert after, "the negative cells ran after the quarantine"
    assert all(c["verdict"] in ("FAIL", "ERROR") and
               c["reason"].startswith("board quarantined: ") for c in after), after
    assert not [c for c in cells if c["verdict"] == "skip"]
    steps = [(s["step"], s["outcome"]) for s in data["recovery"]]
    assert steps == [("reset", "no answer"), ("power cycle", "skipped"),
                     ("quarantine", "quarantined")], data["recovery"]
    assert "board farm-a: quarantine: quarantined" in proc.stdout


def test_doctor_shows_the_coordinator_and_who_holds_each_place(
        tmp_path: Path, hil_config: HilConfig, two_places: LoopbackFarm) -> None:
    farm = two_places

    def doctor(boards: str) -> str:
        config = _config(tmp_path, hil_config, farm, boards)
        proc = subprocess.run([sys.executable, "-m", "rig.cli", "--config", str(config),
                               "doctor"], capture_output=True, text=True, timeout=120, cwd=ROOT)
        rows = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
        return rows["labgrid"]

    farm.as_other("nightly-other", "acquire", place="virt-a")
    try:
        row = doctor(_board("farm-a", 'place = "virt-a"') +
                     _board("farm-b", 'tags = { slot = "b" }'))
        holder = farm.holder("virt-a")
        assert f"farm-a: place virt-a (acquired by {holder})" in row, row
        assert "farm-b: any place with slot=b" in row
        row = doctor(_board("farm-c", 'place = "virt-c"'))
        assert f"coordinator {farm.address} has no place virt-c (board farm-c)" in row, row
    finally:
        farm.as_other("nightly-other", "release", place="virt-a")


def test_a_signal_while_waiting_for_a_place_stops_the_run_at_once(
        tmp_path: Path, hil_config: HilConfig, two_places: LoopbackFarm) -> None:
    """Ctrl-C or SIGTERM while the rig waits for a place someone else holds (acquire_timeout
    300 s): the session ends within seconds, interrupted; its reservation is cancelled; no
    labgrid-client is left; the other holder keeps the place."""
    farm = two_places
    farm.as_other("nightly-other", "acquire", place="virt-a")
    config = _config(tmp_path, hil_config, farm, _board("farm-a", 'place = "virt-a"'),
                     acquire_timeout=300)
    for sig in (signal.SIGINT, signal.SIGTERM):
        run = _pytest_hil(config, tmp_path)
        try:
            _wait_for("the rig's reservation", lambda: "Reservation" in farm.reservations())
            time.sleep(1.0)  # inside `labgrid-client wait` by now
            t0 = time.monotonic()
            run.send_signal(sig)
            out, _ = run.communicate(timeout=60)
            took = time.monotonic() - t0
        finally:
            if run.poll() is None:
                run.kill()
        assert took < 10, f"{sig.name}: the run took {took:.1f} s to stop"
        assert run.returncode == pytest.ExitCode.INTERRUPTED, out[-3000:]
        assert "board farm-a: interrupted during labgrid-client wait" in out, out[-3000:]
        assert "Reservation" not in farm.reservations(), farm.reservations()
        _wait_for("no labgrid-client left", lambda: not _labgrid_clients(farm), timeout=5)
        assert farm.holder("virt-a").endswith("/nightly-other")
        assert not list((config.parent / "cache" / "labgrid").glob("*.claim"))
    farm.as_other("nightly-other", "release", place="virt-a")


def test_a_place_acquired_by_hand_is_never_released_by_the_rig(
        tmp_path: Path, hil_config: HilConfig, two_places: LoopbackFarm) -> None:
    """The runner's own labgrid identity acquires the place by hand (same host/user as the
    rig). A run killed (SIGKILL) while waiting for it leaves no labgrid-client behind; the
    next run sweeps the dead run's reservation, waits its acquire_timeout, fails the board's
    cells naming the holder, and leaves the by-hand acquisition alone (before: released ~8 s
    into the run)."""
    farm = two_places
    farm.client().run("acquire", place="virt-a")  # by hand, as this runner
    mine = farm.holder("virt-a")
    config = _config(tmp_path, hil_config, farm, _board("farm-a", 'place = "virt-a"'),
                     acquire_timeout=300)
    killed = _pytest_hil(config, tmp_path)
    try:
        _wait_for("the rig's reservation", lambda: "Reservation" in farm.reservations())
        time.sleep(1.0)
    finally:
        killed.kill()
        killed.communicate(timeout=30)
    _wait_for("no labgrid-client left", lambda: not _labgrid_clients(farm), timeout=5)
    claims = list((config.parent / "cache" / "labgrid").glob("*.claim"))
    assert len(claims) == 1, "the reservation was recorded before the wait"
    token = json.loads(claims[0].read_text())["token"]
    assert token in farm.reservations()

    config = _config(tmp_path, hil_config, farm, _board("farm-a", 'place = "virt-a"'),
                     acquire_timeout=3)
    proc = _hil_run(config, "--mode", "ca", "--no-negative", "--no-resilience")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert farm.holder("virt-a") == mine, "the by-hand acquisition was released"
    log = (tmp_path / "runs" / "latest" / "pytest.log").read_text()
    assert f"cancelled reservation {token} left by a run that died (pid {killed.pid})" in log
    data = _results(tmp_path)
    cells = [c for c in data["cells"] if c["board"] == "farm-a"]
    want = (f"board farm-a: place virt-a is acquired by {mine}; waited 3 s (hil.toml [labgrid] "
            "acquire_timeout); that is this runner's own labgrid identity, acquired by hand")
    assert cells and all(c["reason"].startswith(want) for c in cells), cells[0]["reason"]
    _never_touched(data, "farm-a")
    assert "Reservation" not in farm.reservations()
    farm.client().run("release", place="virt-a")


def test_a_second_ctrl_c_still_gives_the_places_back(
        tmp_path: Path, hil_config: HilConfig, two_places: LoopbackFarm) -> None:
    """Two Ctrl-C in a row to `hil run` (the second kills pytest's process group at once):
    `hil run` gives back what the killed pytest held before it exits."""
    farm = two_places
    config, run, err = _interrupted_on_both_places(tmp_path, hil_config, farm, 2)
    assert run.returncode != 0
    assert farm.holder("virt-a") == "" and farm.holder("virt-b") == "", err[-3000:]
    assert "Reservation" not in farm.reservations()
    assert "labgrid: released place" in err, err[-3000:]
    assert not list((config.parent / "cache" / "labgrid").glob("*.claim"))
    _wait_for("no labgrid-client left", lambda: not _labgrid_clients(farm), timeout=5)
