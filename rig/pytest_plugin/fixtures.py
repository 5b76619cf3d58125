"""The rig's fixtures: the inventory, PKI, run directory, brokers (one session broker at a time,
replaced when it died), the host observer, the boards (one driver and one strategy per board
for the session, holding its lock: rig/device/strategy.py resets a board only when a cell needs
it) and a board's console per cell; and, for tests of the agent itself, a virtual board of its
own whose agent restarts for every test (`agent`).

    hil_config  pki  run_dir  mode  broker  start_broker  observer
    board_driver  board_strategy  board_console  virtual_board  agent
    hil_agent (the host build of the firmware, for tests of the agent itself)
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import multiprocessing.resource_tracker
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rig.boards import BoardDriver, BoardUnavailable, make_board
from rig.boards.farm import HeldPlace
from rig.boards.host_build import build_for, build_host_agent
from rig.boards.serial_reader import console_port, use_blocking_reader
from rig.boards.virtual import VirtualBoard
from rig.broker.mosquitto import Broker, SessionBrokers, child_brokers, start_for_mode
from rig.config import Board, HilConfig, Mode
from rig.device.console import Console
from rig.device.profile import Profile
from rig.device.strategy import BoardStrategy
from rig.errors import RigError
from rig.host.observer import Observer
from rig.host.tls import credentials
from rig.local.locks import BoardBusy, board_lock
from rig.local.user_tmp import note_children, sweep_private_dirs
from rig.pki import Pki
from rig.pytest_plugin.capture import exports_keys, watch
from rig.pytest_plugin.farm import farm_place
from rig.pytest_plugin.inventory import (
    BROKER_MARKS,
    CELL_FAILED,
    CONSOLE,
    FLASH,
    OBSERVER,
    inventory,
    rig_in_use,
)
from rig.pytest_plugin.inventory import board_profile as profile_for
from rig.pytest_plugin.results import case_name, cell_fields
from rig.pytest_plugin.xdist import broker_port, shared_run_dir, worker
from rig.report.run_dir import RESETS_FILE, SESSION_FAULTS, TRANSCRIPTS


@pytest.fixture(scope="session", autouse=True)
def _no_broker_left_behind(pytestconfig: pytest.Config) -> Iterator[None]:
    """In the rig's runs: sweeps what killed runs left (their private dirs); fails the session
    if any Mosquitto this process started is still alive at the end."""
    mine = rig_in_use(pytestconfig)
    if mine:
        sweep_private_dirs()
    yield
    leaked = child_brokers() if mine else []
    assert not leaked, f"mosquitto processes left behind: {leaked}"


@pytest.fixture(scope="session")
def hil_config(pytestconfig: pytest.Config) -> HilConfig:
    """hil.toml (--hil-config, $HIL_CONFIG or ./hil.toml), validated."""
    return inventory(pytestconfig)


@pytest.fixture(scope="session")
def pki(hil_config: HilConfig) -> Pki:
    p = Pki(hil_config)
    p.ensure()
    return p


@pytest.fixture(scope="session")
def run_dir(pytestconfig: pytest.Config) -> Path:
    """Broker and board logs. With -n, each worker writes into <run dir>/<worker id>/."""
    worker_id, _ = worker(pytestconfig)
    if not worker_id or "hil_run_dir" not in pytestconfig.workerinput:  # type: ignore[attr-defined]
        return shared_run_dir(pytestconfig)
    path = Path(pytestconfig.workerinput["hil_run_dir"]) / worker_id  # type: ignore[attr-defined]
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def _session_brokers(pytestconfig: pytest.Config, hil_config: HilConfig, pki: Pki,
                     run_dir: Path) -> Iterator[SessionBrokers]:
    brokers = SessionBrokers(lambda mode: start_for_mode(
        hil_config, pki, mode, run_dir, tls_keys=exports_keys(pytestconfig),
        **broker_port(pytestconfig, 0)))
    yield brokers
    faults = brokers.close()
    if faults:  # after its mode's last cell: no cell to name it in, but the run must say it
        with (run_dir / SESSION_FAULTS).open("a") as fh:
            fh.writelines(f"{fault}\n" for fault in faults)


@pytest.fixture
def broker(request: pytest.FixtureRequest, _session_brokers: SessionBrokers,
           mode: Mode) -> Iterator[Broker]:
    """The real Mosquitto for `mode`, kept for the session (port: see broker_port). A broker
    of this mode found dead before a cell is replaced for it, and the cell records that as a
    `fault`; one of another mode that died after its last cell is a fault of the run
    (session-faults.txt), not this cell's."""
    b, died = _session_brokers.get(mode)
    if died:
        request.node.user_properties.append(
            ("fault", f"{died.splitlines()[0]}; a fresh broker was started for this cell"))
    yield b
    b.take_tls_keys()  # what the cell's capture did not take goes with the cell
    if b.death() and request.node.stash.get(CELL_FAILED, False):
        _session_brokers.named_by_a_cell(b)  # this cell's failure names it (hooks.py)


@pytest.fixture(autouse=True)
def _broker_log_slice(request: pytest.FixtureRequest) -> None:
    """Remembers where this test's part of the broker log starts (for failure reports)."""
    request.node.stash[BROKER_MARKS] = []
    if "broker" in request.fixturenames:
        b: Broker = request.getfixturevalue("broker")
        request.node.stash[BROKER_MARKS].append((b, b.mark()))
        with contextlib.suppress(ValueError):  # the report links it
            request.node.user_properties.append(
                ("broker_log", str(b.log_path.relative_to(shared_run_dir(request.config)))))


@pytest.fixture
def start_broker(request: pytest.FixtureRequest, hil_config: HilConfig, pki: Pki,
                 run_dir: Path) -> Iterator[Callable[..., Broker]]:
    """Starts extra brokers for this test only (keyword arguments as
    rig.broker.mosquitto.running; the port defaults to this worker's extra broker port, see
    broker_port); each is stopped after the test and its log is in a failure's report."""
    started: list[Broker] = []

    def start(mode: Mode, **kwargs: Any) -> Broker:
        if "port" not in kwargs:
            kwargs.update(broker_port(request.config, 1))
        kwargs.setdefault("tls_keys", exports_keys(request.config))
        b = start_for_mode(hil_config, pki, mode, run_dir, **kwargs)
        started.append(b)
        watch(request, b.port, "mqtt", b)  # into the cell's capture, if any
        request.node.stash[BROKER_MARKS].append((b, 0))
        return b

    try:
        yield start
    finally:
        for b in started:
            b.stop()


@pytest.fixture
def observer(request: pytest.FixtureRequest, hil_config: HilConfig, pki: Pki, mode: Mode,
             broker: Broker) -> Iterator[Observer]:
    """A host MQTT client connected to this mode's broker with the device's credentials."""
    with Observer(hil_config.broker.host, broker.port, credentials(hil_config, pki, mode),
                  timeout=hil_config.timeouts.connect) as obs:
        request.node.stash[OBSERVER] = obs
        yield obs


def _sanitized() -> bool:
    """Virtual boards run sanitized builds (ASan+UBSan) unless HIL_AGENT_VARIANT=plain (as
    `hil run` sets it: the main job runs the plain builds, the rig's tests the sanitized)."""
    return os.environ.get("HIL_AGENT_VARIANT", "asan") != "plain"


@pytest.fixture(scope="session")
def hil_agent() -> Path:
    """The host build of the firmware for a native virtual board, sanitized (ASan+UBSan)
    unless HIL_AGENT_VARIANT=plain."""
    return build_host_agent(build_for("native", _sanitized()))


def _agent_for(hil: HilConfig, spec: Board) -> Path:
    """The hil-agent binary a virtual board runs: its build_dir's, or the rig's build of its
    variant (built or brought up to date here)."""
    if spec.build_dir:
        return hil.path(spec.build_dir) / "hil-agent"
    return build_host_agent(build_for(spec.variant, _sanitized()))


def _hold_board(stack: contextlib.ExitStack, hil_config: HilConfig, name: str) -> None:
    """Locks the board for the session (released with `stack`): no other process (xdist
    worker, run) drives it; fixtures of this process share the lock."""
    try:
        stack.enter_context(board_lock(hil_config.base_dir / ".hil" / "locks", name))
    except BoardBusy as exc:
        pytest.fail(str(exc), pytrace=False)


class _Boards:
    """The session's boards, by name: one driver (holding the board's lock) and one strategy
    each, kept for the whole session even when pytest switches between parametrized boards,
    so two boards in one process do not reset each other at every switch."""

    def __init__(self, hil: HilConfig, run_dir: Path, options: Any,
                 places: Callable[[str], HeldPlace | str | None]) -> None:
        self.hil, self.run_dir, self.options, self.places = hil, run_dir, options, places
        self.stack = contextlib.ExitStack()
        self.drivers: dict[str, BoardDriver] = {}
        self.strategies: dict[str, BoardStrategy] = {}

    def driver(self, name: str, agent: Path | None) -> BoardDriver:
        if name not in self.drivers:
            spec = self.hil.board(name)
            _hold_board(self.stack, self.hil, spec.name)
            driver = make_board(spec, self.hil, agent=agent, run_dir=self.run_dir,
                                options=self.options, farm=self.places(name))
            self.stack.callback(driver.close)
            self.drivers[name] = driver
        return self.drivers[name]

    def strategy(self, driver: BoardDriver) -> BoardStrategy:
        if driver.name not in self.strategies:
            def make_console(dut: Any) -> Console:
                use_blocking_reader(dut)
                note_children(_helper_processes())
                return Console(console_port(dut), driver.name, self.hil.timeouts.command,
                               health=driver.death)

            self.strategies[driver.name] = BoardStrategy(
                driver, make_console, self.hil.timeouts.board_boot, self.run_dir)
        return self.strategies[driver.name]

    def close(self) -> None:
        """Power every board off; what that (or a restart) found goes to session-faults.txt,
        which fails the run at its end (no cell saw it, so no cell is blamed)."""
        try:
            for name, strategy in self.strategies.items():
                problems = strategy.close()
                if strategy.opened:  # a board never opened (its place not held) had no boot
                    with (self.run_dir / RESETS_FILE).open("a") as fh:
                        fh.write(f"{name} {strategy.resets}\n")
                if problems:
                    with (self.run_dir / SESSION_FAULTS).open("a") as fh:
                        for line in problems.splitlines()[:1]:
                            fh.write(f"board {name}: {line}\n")
        finally:
            self.stack.close()


@pytest.fixture(scope="session")
def _boards(request: pytest.FixtureRequest, hil_config: HilConfig,
            run_dir: Path) -> Iterator[_Boards]:
    boards = _Boards(hil_config, run_dir, request.config.stash[FLASH],
                     lambda name: farm_place(request.config, name))
    yield boards
    boards.close()


@pytest.fixture(scope="session")
def board_driver(request: pytest.FixtureRequest, hil_config: HilConfig,
                 _boards: _Boards) -> BoardDriver:
    """One board of hil.toml (parametrized by name), for the whole session."""
    spec = hil_config.board(request.param)
    agent = _agent_for(hil_config, spec) if spec.kind == "virtual" else None
    return _boards.driver(spec.name, agent)


@pytest.fixture(scope="session")
def board_profile(pytestconfig: pytest.Config, board_driver: BoardDriver) -> Profile:
    """The device profile of the board's firmware (hil.toml `profile`; rig/device/profile.py)."""
    return profile_for(pytestconfig, board_driver.name)


def _helper_processes() -> list[int]:
    """pytest-embedded's log listener (a multiprocessing 'spawn' child) and multiprocessing's
    resource tracker: they outlive a killed pytest, so the sweep must know them."""
    pids = [p.pid for p in multiprocessing.active_children() if p.pid]
    tracker = getattr(getattr(multiprocessing, "resource_tracker", None), "_resource_tracker",
                      None)
    pid = getattr(tracker, "_pid", None)
    return pids + ([pid] if isinstance(pid, int) else [])


def _open_console(request: pytest.FixtureRequest, driver: BoardDriver,
                  hil: HilConfig) -> Iterator[Console]:
    try:
        dut: Any = driver.open()
    except RigError as exc:  # not there: skip, with the reason; unusable: fail, with it
        if exc.outcome == "skip":
            pytest.skip(str(exc))
        pytest.fail(str(exc), pytrace=False)
    use_blocking_reader(dut)
    note_children(_helper_processes())
    console = Console(console_port(dut), driver.name, hil.timeouts.command, health=driver.death)
    request.node.stash[CONSOLE] = console
    try:
        with console.doing("booting"):
            console.wait_ready(hil.timeouts.board_boot)
        with console.doing("bringing its network up"):
            driver.prepare(console)
    except BoardUnavailable as exc:
        driver.after_test()
        pytest.skip(str(exc))
    except BaseException:
        driver.after_test()  # power off: a board that failed to come up is not left running
        raise
    yield console
    try:
        if driver.powered and not driver.death() and not console.broken:
            # one more round trip, so that whatever reached the console during this cell
            # (garbage among it) is read and counted in this cell, not lost with the next reset
            with console.doing("ending the cell"):
                console.send("version", timeout=hil.timeouts.command)
    finally:
        problem = driver.after_test()  # power off; names an agent that died on its own
    noise = console.noise_summary()
    # a death the cell's own failure already named is not reported twice
    assert not problem or (console.broken and console.broken in problem), problem
    assert not noise, noise


_SHA256: dict[Path, str] = {}


def _firmware_sha256(path: Path | None) -> str:
    """SHA-256 of the board's firmware file (a virtual board's hil-agent, an esp32's ELF),
    once per process; '' when there is none."""
    if path is None or not path.is_file():
        return ""
    if path not in _SHA256:
        _SHA256[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _SHA256[path]


def _record_firmware(request: pytest.FixtureRequest, driver: BoardDriver,
                     console: Console) -> None:
    """The cell's board as results.json and JUnit show it: its kind (a virtual board with its
    variant), the firmware its `version` reported at boot, and the SHA-256 of the firmware
    file the rig ran or flashed."""
    spec = request.getfixturevalue("hil_config").board(driver.name)
    kind = f"virtual {spec.variant}" if spec.kind == "virtual" else spec.kind
    request.node.user_properties.append(("board_kind", kind))
    request.node.user_properties.append(("firmware", console.identity()))
    sha = _firmware_sha256(getattr(driver, "firmware_file", None))
    if sha:
        request.node.user_properties.append(("firmware_sha256", sha))


@pytest.fixture(scope="session")
def board_strategy(board_driver: BoardDriver, _boards: _Boards) -> BoardStrategy:
    """The board's states for the session (rig/device/strategy.py): reset at its first use,
    after a failed cell, or when a test asks (`@pytest.mark.fresh_board`)."""
    return _boards.strategy(board_driver)


@pytest.fixture
def board_console(request: pytest.FixtureRequest, hil_config: HilConfig,
                  board_strategy: BoardStrategy) -> Iterator[Console]:
    """The board's console for this test, the board booted and its network up; a board is
    reset only when it needs to be (rig/device/strategy.py). The cell's end closes its MQTT
    connection and HTTPS server; a failed cell leaves the board to be reset."""
    cell = request.node.nodeid.rsplit("/", 1)[-1]
    fresh = request.node.get_closest_marker("fresh_board") is not None
    place = getattr(board_strategy.driver, "place", None)
    if isinstance(place, HeldPlace):  # a farm board: where it is (results.json, JUnit)
        request.node.user_properties.append(("place", place.place))
        request.node.user_properties.append(("exporter", place.exporter))
    try:
        console = board_strategy.begin(cell, fresh)
    except RigError as exc:  # not there: skip, with the reason; unusable: fail, with it
        if exc.outcome == "skip":
            board_strategy.unavailable = str(exc)
            pytest.skip(str(exc))
        board_strategy.dirty = f"previous cell: {exc}"
        pytest.fail(str(exc), pytrace=False)
    except BaseException:
        board_strategy.dirty = "previous cell: the board did not come up"
        raise
    request.node.stash[CONSOLE] = console
    _record_firmware(request, board_strategy.driver, console)
    if fresh:  # its reset is the test's, not a failure's (bench/matrix.py counts them)
        request.node.user_properties.append(("fresh_board", "asked by the test"))
    mark = max(len(console.transcript) - 1, 0)  # from this cell's "--- <cell>" on
    transcript = Path(TRANSCRIPTS) / f"{case_name(cell_fields(request.node)) or cell}.txt"
    request.node.user_properties.append(("transcript", str(transcript)))
    yield console
    try:
        failed = request.node.stash.get(CELL_FAILED, False)
        board_strategy.end(cell, failed, hil_config.timeouts.command)
        death = board_strategy.driver.death()
        noise = console.noise_summary()
        # a death the cell's own failure already named is not reported twice
        assert not death or (console.broken and console.broken in death), \
            f"board {board_strategy.driver.name}: {death}"
        assert not noise, noise
        assert not console.unexpected_reboot, (
            f"board {board_strategy.driver.name} rebooted during the cell (a watchdog, a "
            f"panic, a brown-out?): {console.unexpected_reboot}")
    finally:  # the cell's console with what its end collected: commands (secrets redacted)
        # and what the board printed; evidence, so a disk problem never fails the cell
        with contextlib.suppress(OSError):
            path = shared_run_dir(request.config) / transcript
            path.parent.mkdir(exist_ok=True)
            path.write_text("\n".join(console.transcript[mark:]) + "\n")


@pytest.fixture(scope="session")
def virtual_board(request: pytest.FixtureRequest, hil_config: HilConfig,
                  run_dir: Path) -> Iterator[VirtualBoard]:
    """The first virtual board of hil.toml, for tests of the agent itself."""
    if request.config.getoption("--hil"):
        pytest.skip("--hil runs physical boards only (the virtual agent's tests run without it)")
    spec = next((b for b in hil_config.boards if b.kind == "virtual"), None)
    if spec is None:
        pytest.skip(f"no virtual board in {hil_config.source}")
    agent = _agent_for(hil_config, spec)
    # its own name, state file and logs: the board's own agent may be up at the same time
    # (rig/device/strategy.py keeps it between cells), and the two must not share anything
    name = f"{spec.name}-agent-tests"
    with contextlib.ExitStack() as stack:
        _hold_board(stack, hil_config, name)
        board = VirtualBoard(name, agent, hil_config.base_dir / ".hil" / "boards", run_dir,
                             erase=bool(request.config.stash[FLASH].erases))
        stack.callback(board.close)
        yield board


@pytest.fixture
def agent(request: pytest.FixtureRequest, hil_config: HilConfig,
          virtual_board: VirtualBoard) -> Iterator[Console]:
    """A fresh agent on the virtual board, reached through a pytest-embedded serial Dut."""
    yield from _open_console(request, virtual_board, hil_config)
