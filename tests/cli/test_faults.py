"""Faults injected into a real `hil run` (real Mosquitto, real agents on ptys, loopback only):
a broker or an agent killed, garbage on a board's console, the run interrupted or killed.

Each run must: fail the cell the fault hit and name the cause there; leave every other cell's
verdict alone; write results.json and junit.xml; exit non-zero; leave no Mosquitto, hil-agent
or private (PSK) directory behind.

To hit a cell for sure, the test freezes the run's pytest process or the board's agent
(SIGSTOP) at a moment it chooses, does the damage, and lets it go on (SIGCONT). A board is reset
only at its first use and after a failed cell (rig/device/strategy.py), so a fault's cell is
followed by a reset and the cells after it run on a fresh board."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rig.config import HilConfig
from rig.local.user_tmp import sweep_private_dirs, user_tmp
from tests.support import ROOT, tmp_config

RUN_TIMEOUT = 180.0


# ------------------------------------------------------------------ processes, from /proc

def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a live process, None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else (fields[0], int(fields[1]))


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] == pid:
                found.append(int(entry.name))
    return found


def _children_running(pid: int, program: str) -> list[int]:
    """Children of `pid` whose program's path ends with `program` (one read of each cmdline:
    processes come and go while we look)."""
    return [c for c in _children(pid) if (argv := _cmdline(c)) and argv[0].endswith(program)]


def _wait_for(what: str, find: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.002)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """The process stands still for the block (SIGSTOP ... SIGCONT)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


# ------------------------------------------------------------------ a run under test

class Run:
    """`hil run` in its own process group (as a terminal job), with its progress lines read
    as they come."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rig.cli", "--config", str(config), "run", *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, env={**os.environ, **(env or {})})
        self.progress: list[str] = []
        self.stdout = ""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out: list[str] = []
        self._out_reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._out_reader.start()
        _runs.append(self)
        self.pytest_pid = _wait_for("the run's pytest", self._find_pytest)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._lock:
                self.progress.append(line.rstrip("\n"))

    def _find_pytest(self) -> int | None:
        if self.proc.poll() is not None:
            self._out_reader.join(timeout=5)
            raise AssertionError(f"hil run ended before its pytest started: {self._out} "
                                 f"{self.progress}")
        return next((c for c in _children(self.proc.pid) if "pytest" in _cmdline(c)), None)

    def saw(self, text: str) -> bool:
        with self._lock:
            return any(text in line for line in self.progress)

    def cell_ended(self, board: str) -> bool:
        """Whether a cell of `board` has ended (rig/device/strategy.py's steps.jsonl)."""
        for steps in (self.config.parent / "runs").glob("*/**/steps.jsonl"):
            for line in steps.read_text().splitlines():
                step = json.loads(line)
                if step["board"] == board and step["reason"] == "cell ended":
                    return True
        return False

    def agents(self) -> list[int]:
        return _children_running(self.pytest_pid, "hil-agent")

    def brokers(self) -> list[int]:
        return _children_running(self.pytest_pid, "mosquitto")

    def board_pty(self) -> str:
        """The board's serial port, as the run's pytest holds it open."""
        for fd in Path(f"/proc/{self.pytest_pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("/dev/pts/"):
                    return target
        raise AssertionError("the run holds no pty")

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        self._out.append(self.proc.stdout.read())

    def finish(self) -> int:
        try:
            self.proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._reader.join(timeout=5)
        self._out_reader.join(timeout=5)
        self.stdout = "".join(self._out)
        return self.proc.returncode

    def kill(self) -> None:
        """A test that failed half-way must not leave its run going."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def results(self) -> dict[str, Any]:
        runs = sorted((self.config.parent / "runs").glob("*/results.json"))
        assert runs, f"no results.json; output:\n{self.stdout}\n" + "\n".join(self.progress)
        data: dict[str, Any] = json.loads(runs[-1].read_text())
        junit = runs[-1].parent / "junit.xml"
        assert junit.exists(), "no junit.xml"
        data["_junit"] = ET.parse(junit).getroot()
        return data


_runs: list[Run] = []


@pytest.fixture(autouse=True)
def _no_run_left_going() -> Iterator[None]:
    yield
    while _runs:
        _runs.pop().kill()


def _nothing_left(run: Run) -> None:
    """No Mosquitto or hil-agent of this run alive, no private dir of its pytest left."""
    state_dir = str(run.config.parent)

    def leftovers() -> list[str]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or _stat(int(entry.name)) is None:
                continue
            argv = _cmdline(int(entry.name))
            text = " ".join(argv)
            if argv and argv[0].endswith("hil-agent") and state_dir in text:
                found.append(f"hil-agent pid {entry.name}")
            if argv and argv[0].endswith("mosquitto") and f"/{run.pytest_pid}-" in text:
                found.append(f"mosquitto pid {entry.name}")
            # a cell's capture (--hil-capture fail, the default): its tcpdump writes into the
            # run's pytest's secret capture dir (only this run's, whatever its parent now)
            if argv and argv[0].endswith("tcpdump") and _captures_for(run.pytest_pid, argv):
                found.append(f"tcpdump pid {entry.name}")
        found += [f"private dir {p}" for p in user_tmp().glob(f"{run.pytest_pid}-*")]
        return found

    deadline = time.monotonic() + 10
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leftovers(), leftovers()


def _captures_for(pid: int, argv: list[str]) -> bool:
    """Whether a tcpdump's arguments write into a capture dir of process `pid`
    (`<user_tmp>/<pid>-capture-XXXX/segment-N.pcap`, rig/host/capture.py)."""
    mark = f"{user_tmp()}/{pid}-capture-"
    return any(a.startswith(mark) for a in argv)


def _tcpdumps_of(pid: int) -> dict[int, list[str]]:
    """The live tcpdumps capturing for process `pid`, whoever their parent is now (none of
    another test's run: their capture dirs are their own pytest's): pid -> arguments."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _stat(int(entry.name)) is not None:
            argv = _cmdline(int(entry.name))
            if argv and argv[0].endswith("tcpdump") and _captures_for(pid, argv):
                found[int(entry.name)] = argv
    return found


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _verdicts(data: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {f"{c['board']}.{c['mode']}.{c['case']}": (c["verdict"], c["reason"])
            for c in data["cells"]}


def _only_these_failed(data: dict[str, Any], cause: str) -> list[str]:
    """The names of the failed cells: each names `cause`; every other cell passed."""
    failed = [name for name, (verdict, reason) in _verdicts(data).items() if verdict != "pass"]
    for name in failed:
        verdict, reason = _verdicts(data)[name]
        assert cause in reason, f"{name} failed without naming {cause!r}: {verdict} {reason}"
    junit_failures = [f.get("message", "") for f in data["_junit"].iter()
                      if f.tag in ("failure", "error")]
    assert all(cause in m for m in junit_failures), junit_failures
    return failed


@pytest.fixture
def config(tmp_path: Path, hil_config: HilConfig, hil_agent: Path) -> Path:
    """The committed hil.toml in a temporary directory, its virtual board on the agent the
    tests use (already built)."""
    path = tmp_config(tmp_path, hil_config)
    text = path.read_text().replace('kind = "virtual"',
                                    f'kind = "virtual"\nbuild_dir = "{hil_agent.parent}"', 1)
    path.write_text(text)
    return path


# ------------------------------------------------------------------ the faults

def test_a_killed_session_broker_is_named_and_replaced(config: Path) -> None:
    """Two boards, one after the other: the psk broker is killed while virtual-0's cell uses
    it. virtual-0's agent starts at that cell's set-up (its first use), after the cell got the
    broker and the observer; the test stops the agent there, so the cell is certainly in
    progress, kills the broker, and lets the agent go on. That cell fails naming the broker;
    virtual-1's cell gets a fresh broker, passes, and records the fault."""
    build = next(ln for ln in config.read_text().splitlines() if ln.startswith("build_dir"))
    config.write_text(config.read_text() +
                      f'\n[[boards]]\nname = "virtual-1"\nkind = "virtual"\n{build}\n')
    run = Run(config, "--mode", "psk", "--no-negative", "--no-resilience", "-j", "1")
    _wait_for("the psk preflight", lambda: run.saw("broker_preflight"))
    broker = _wait_for("the psk session broker", run.brokers)[0]
    agent = _wait_for("virtual-0's agent", lambda: [
        a for a in run.agents() if "virtual-0.state" in " ".join(_cmdline(a))])[0]
    with frozen(agent):
        assert not run.cell_ended("virtual-0"), "virtual-0's cell ended before the fault"
        os.kill(broker, signal.SIGKILL)
    assert run.finish() == 1
    data = run.results()
    cause = "broker psk: mosquitto exited (signal 9 (SIGKILL)) while in use"
    assert _only_these_failed(data, cause) == ["virtual-0.psk.connect_publish"], _verdicts(data)
    other = next(c for c in data["cells"] if c["board"] == "virtual-1")
    assert other["verdict"] == "pass"
    assert str(other["properties"]["fault"]).startswith(cause), other["properties"]
    assert "a fresh broker was started for this cell" in other["properties"]["fault"]
    assert f"fault seen by virtual-1 psk connect_publish: {cause}" in run.stdout
    # one process, two boards: each boots once (no reset when pytest switches between them);
    # virtual-0 again only if a cell came after its failed one
    assert data["resets"] == {"virtual-0": 1, "virtual-1": 1}, data["resets"]
    _nothing_left(run)


def test_a_board_that_dies_mid_provisioning_fails_only_its_cell(config: Path,
                                                               tmp_path: Path) -> None:
    """The virtual board's power switch (HIL_AGENT_POWER_CUT_FILE, firmware/host): the first
    agent to read a `config` command after the file appears dies by SIGKILL. Armed after the
    first negative cell, it cuts the next cell's board while the rig provisions it, with
    commands still on the wire: that cell names the death; the next cell, on a fresh boot,
    must not see those commands."""
    cut = tmp_path / "power-cut"
    run = Run(config, "--mode", "ca", env={"HIL_AGENT_POWER_CUT_FILE": str(cut)})
    _wait_for("a first negative cell", lambda: run.saw("refused-unknown-ca"))
    cut.touch()
    assert run.finish() == 1
    assert not cut.exists(), "no agent took the power cut"
    data = run.results()
    failed = _only_these_failed(data, "agent exited (signal 9 (SIGKILL)) while provisioning")
    assert len(failed) == 1, _verdicts(data)
    assert "board virtual-0: agent exited (signal 9 (SIGKILL)) while provisioning mqtt." in \
        _verdicts(data)[failed[0]][1]
    _nothing_left(run)


def test_garbage_on_a_console_fails_only_the_cell_it_hit(config: Path) -> None:
    """64 KB of random bytes written into the board's serial port while the run's pytest
    stands still, after the board's first cell: the agent (it stays up from cell to cell)
    reads all of it before anything the rig sends next, so the cell that talks to the board
    next sees all the noise and fails naming it; the board is reset after that cell, and no
    other cell changes verdict."""
    run = Run(config, "--mode", "psk")
    _wait_for("the first board cell", lambda: run.saw("virtual-0"))
    garbage = random.Random(7).randbytes(64 * 1024)
    with frozen(run.pytest_pid):
        fd = os.open(run.board_pty(), os.O_WRONLY | os.O_NOCTTY)
        written = 0
        try:
            while written < len(garbage):
                written += os.write(fd, garbage[written:written + 4096])
        finally:
            os.close(fd)
    assert run.finish() == 1
    data = run.results()
    failed = _only_these_failed(data, "answered no command of the rig")
    assert len(failed) == 1, _verdicts(data)
    assert data["resets"]["virtual-0"] == 2, data["resets"]  # its first use, after the hit
    _nothing_left(run)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_run_cleans_up_and_says_so(config: Path, sig: signal.Signals) -> None:
    """The whole run takes about a second now, so the stop must land while it certainly still
    runs: the board's agent stands still, so the rig waits on its console, when the signal
    reaches the run (as a terminal's Ctrl-C reaches the whole job)."""
    run = Run(config, "--mode", "ca")
    _wait_for("a few cells", lambda: run.saw("refused-unknown-ca"))
    (agent,) = run.agents()
    with frozen(agent):
        time.sleep(0.3)  # whatever the rig does next, it ends up waiting on the board
        os.killpg(run.proc.pid, sig)
        time.sleep(0.2)
    code = run.finish()
    assert code == 1, (code, run.stdout, run.progress)
    assert f"hil run stopped by {sig.name}" in "\n".join(run.progress)
    data = run.results()
    assert data["exitstatus"] == 2, "pytest was not interrupted"  # pytest's INTERRUPTED
    passed = [c for c in data["cells"] if c["verdict"] == "pass"]
    assert passed, "results.json lost the cells that ran"
    total = int(next(ln for ln in run.progress if ln.startswith("[")).split("/")[1].split("]")[0])
    assert len(passed) < total, f"the run went on to its end: {len(passed)} of {total} passed"
    _nothing_left(run)


def test_a_killed_hil_run_takes_its_pytest_and_children_along(config: Path) -> None:
    run = Run(config, "--mode", "ca")
    _wait_for("a few cells", lambda: run.saw("refused-unknown-ca"))
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.wait(timeout=10)
    _wait_for("the run's pytest to stop", lambda: _stat(run.pytest_pid) is None, 30)
    _nothing_left(run)


def test_a_killed_broker_up_leaves_no_broker_and_its_psk_dir_is_swept(config: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", "--config", str(config), "broker", "up",
         "--mode", "psk"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Ctrl-C stops it" in line:
                break
        broker = _children(proc.pid)
        assert broker and _cmdline(broker[0])[0].endswith("mosquitto")
        private = list(user_tmp().glob(f"{proc.pid}-broker-psk-*"))
        assert len(private) == 1 and (private[0] / "psk").exists()
        assert (private[0] / "psk").stat().st_mode & 0o777 == 0o600
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        _wait_for("the broker to die with its parent", lambda: _stat(broker[0]) is None, 10)
        assert private[0] in sweep_private_dirs()
        assert not private[0].exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_killed_pytest_leaves_nothing_the_next_start_does_not_sweep(config: Path) -> None:
    """kill -9 of pytest itself: the agent dies with it (PR_SET_PDEATHSIG); pytest-embedded's
    log listener and multiprocessing's resource tracker cannot, so the rig noted them and the
    next start's sweep stops them."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hil-config",
         str(config), "rig/cases/test_negative.py"], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        note = user_tmp() / f"{proc.pid}-children"
        _wait_for("the rig's note of its helper processes", note.exists)
        agent = _wait_for("a board's agent",
                          lambda: _children_running(proc.pid, "hil-agent"))[0]
        helpers = [int(line.split()[0]) for line in note.read_text().splitlines()]
        assert helpers, "no helper process noted"
    finally:
        proc.kill()
        proc.wait()
    _wait_for("the agent to die with pytest", lambda: _stat(agent) is None, 10)
    assert note in sweep_private_dirs()
    _wait_for("the noted helpers to be gone",
              lambda: all(_stat(pid) is None for pid in helpers), 10)
    assert not note.exists()


def test_a_pytest_killed_mid_capture_leaves_no_tcpdump(config: Path) -> None:
    """kill -9 of pytest while a cell's capture runs (--hil-capture all: a tcpdump in every
    board cell): its tcpdump dies with it (PR_SET_PDEATHSIG) or, where the death signal is
    lost (a tcpdump with file capabilities), is stopped by the next start's sweep, and the
    capture's secret dir (raw segments, key log) goes with it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hil-config",
         str(config), "--hil-capture", "all", "rig/cases/test_mqtt_modes.py"], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def capturing() -> dict[int, list[str]]:
        """Its tcpdumps past their start (their file holds a packet: the start probe), so
        what kills them is the fault, not a pipe closed under a starting tcpdump."""
        return {pid: argv for pid, argv in _tcpdumps_of(proc.pid).items()
                if any(_captures_for(proc.pid, [a]) and _size(a) > 24 for a in argv)}

    try:
        tcpdumps = _wait_for("a tcpdump of a cell's capture", capturing)
    finally:
        proc.kill()
        proc.wait()
    # the secret dir each one writes into (its -w file's)
    capture_dirs = {Path(a).parent for argv in tcpdumps.values() for a in argv
                    if _captures_for(proc.pid, [a])}
    assert capture_dirs, tcpdumps
    sweep_private_dirs()  # what the next start does first
    _wait_for("the capture's tcpdumps to be gone", lambda: not _tcpdumps_of(proc.pid) and
              all(_stat(pid) is None for pid in tcpdumps), 10)
    assert not [d for d in capture_dirs if d.exists()], capture_dirs
