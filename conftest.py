"""pytest entry point for the HIL rig: options, and the board / broker / mode fixtures.

    pytest                       virtual boards from hil.toml, every broker mode
    pytest --hil                 physical boards only (skipped, with the reason, when none)
    pytest --board NAME          some boards;   --mode psk (or -k psk)   some modes
    pytest --hil-config FILE     another inventory (default: $HIL_CONFIG or ./hil.toml)
    pytest -n 2                  boards in parallel, one pytest-xdist worker per board
    pytest --erase-nvs y         (or --erase-all y) every board's first open starts erased

Brokers: the session keeps one mode's Mosquitto at a time (SessionBrokers: the next mode's
replaces it, and a dead one is replaced for the next cell, which records the `fault`).
Start-to-ready measured ~6-9 ms (bench/matrix.py), so restarting per test would also be cheap;
keeping it means one log file per mode per run, and tests see only their own slice of it
(Broker.mark()).
Boards: one driver per board for the session, holding the board's lock; each test opens its
port, resets the board, waits for the boot line and a first tagged answer, and ends with one
more round trip that collects what reached the console during the cell (rig/console.py).
With -n, each worker has its own brokers and logs to <run dir>/gw<N>/ (rig/parallel.py).
Faults: a failing cell whose board died, whose console carried lines the rig did not ask for,
or whose broker or observer died gets that cause in front of its symptom (_name_the_cause).
SIGTERM and SIGHUP stop the session like Ctrl-C, so fixtures always tear down.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.resource_tracker
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from rig.boards import BoardDriver, BoardError, BoardUnavailable, make_board
from rig.boards.flashing import FlashOptions
from rig.boards.serial_reader import use_blocking_reader
from rig.boards.virtual import WHAT_IT_IS, VirtualBoard
from rig.broker import Broker, SessionBrokers, child_brokers, start_for_mode
from rig.config import MODES, Board, ConfigError, HilConfig, Mode, load
from rig.console import Console
from rig.firmware import Variant, build_host_agent
from rig.junit import add_suite_property, name_case
from rig.locks import BoardBusy, board_lock
from rig.matrix import case_name, cell_fields, cell_identity
from rig.negative import CASES
from rig.observer import Observer
from rig.parallel import GROUPS_DIR, BoardScheduling, write_groups
from rig.pki import Pki
from rig.procs import interrupt_on_termination, note_children, sweep_private_dirs
from rig.runs import SESSION_FAULTS, new_run_dir
from rig.tls import credentials
from rig.web import WEB_MODES

ROOT = Path(__file__).resolve().parent
_CONFIG = pytest.StashKey[HilConfig]()
_CONSOLE = pytest.StashKey[Console]()
_BROKER_MARKS = pytest.StashKey[list[tuple[Broker, int]]]()
_RUN_DIR = pytest.StashKey[Path]()
_FLASH = pytest.StashKey[FlashOptions]()
_OBSERVER = pytest.StashKey[Observer]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop rig")
    group.addoption("--hil", action="store_true", default=False,
                    help="run on the physical (esp32) boards of hil.toml instead of virtual ones")
    group.addoption("--board", action="append", default=None, metavar="NAME",
                    help="board(s) from hil.toml to run on (default: all of the selected kind)")
    group.addoption("--mode", action="append", choices=MODES + WEB_MODES, default=None,
                    help="mode(s) to run: broker modes ca, mutual, psk; device HTTPS server "
                         "modes https, https-mutual (default: all)")
    group.addoption("--hil-config", default=None,
                    help="hil.toml to use (default: $HIL_CONFIG or ./hil.toml)")
    group.addoption("--hil-run-dir", default=None,
                    help="directory for broker logs and board logs (default: a new runs/<id>)")


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM / SIGHUP (and the SIGTERM a dying `hil run` sends, see rig/procs.py) stop the
    # run like Ctrl-C: fixtures tear down, brokers and boards stop, secret files go.
    interrupt_on_termination()
    config.addinivalue_line("markers", "modes(*names): run this test only in these broker modes")
    # also declared by pytest-xdist; here too so that `-p no:xdist` runs without warnings
    config.addinivalue_line("markers", "xdist_group(name): the board a test runs on")
    dist = config.getoption("dist", "no")
    if dist not in ("no", "load", "loadgroup"):
        raise pytest.UsageError(
            f"--dist {dist}: the rig schedules boards itself (one worker per board, "
            "rig/parallel.py); use -n N alone, or --dist load / loadgroup")
    path = config.getoption("--hil-config") or os.environ.get("HIL_CONFIG") or ROOT / "hil.toml"
    try:
        hil = load(path)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    for name in config.getoption("--board") or []:
        try:
            hil.board(name)
        except KeyError as exc:
            raise pytest.UsageError(str(exc.args[0])) from None
    config.stash[_CONFIG] = hil
    config.stash[_FLASH] = _flash_options(config)
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(_JunitNames(config), "hil-junit-names")


def _flash_options(config: pytest.Config) -> FlashOptions:
    """pytest-embedded's own --erase-nvs / --erase-all (y/yes/true, n/no/false) and
    --part-tool, applied by the rig's board drivers on each board's first open."""
    def yes(dest: str) -> bool:
        raw = config.getoption(dest, None)
        if raw is None or str(raw).lower() in ("n", "no", "false"):
            return False
        if str(raw).lower() in ("y", "yes", "true"):
            return True
        raise pytest.UsageError(f"--{dest.replace('_', '-')}: expected y/yes/true or "
                                f"n/no/false, got {raw!r}")

    return FlashOptions(erase_nvs=yes("erase_nvs"), erase_all=yes("erase_all"),
                        part_tool=config.getoption("part_tool", None))


def selected_boards(config: pytest.Config) -> tuple[list[Board], str]:
    """The boards this run uses, and why there are none when the list is empty."""
    hil = config.stash[_CONFIG]
    kind = "esp32" if config.getoption("--hil") else "virtual"
    names = config.getoption("--board")
    boards = [b for b in hil.boards if b.kind == kind and (not names or b.name in names)]
    if boards:
        return boards, ""
    wanted = f" named {', '.join(names)}" if names else ""
    return [], f"no {kind} board{wanted} in {hil.source}" + (
        " (--hil runs physical boards only)" if kind == "esp32" else "")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`mode` over the broker modes (narrowed by @pytest.mark.modes), `web_mode` over the HTTPS
    modes, `negative_case` over the negative matrix; `board_driver` over the selected boards, or
    one skipped case that says why there is none. --mode deselects the rest (see below)."""
    if "mode" in metafunc.fixturenames:
        modes = list(MODES)
        marker = metafunc.definition.get_closest_marker("modes")
        if marker is not None:
            modes = [m for m in modes if m in marker.args]
        metafunc.parametrize("mode", modes, scope="session")
    explicit = {name.strip() for m in metafunc.definition.iter_markers("parametrize")
                for name in (m.args[0].split(",") if isinstance(m.args[0], str) else m.args[0])}
    if "web_mode" in metafunc.fixturenames and "web_mode" not in explicit:
        metafunc.parametrize("web_mode", WEB_MODES)
    if "negative_case" in metafunc.fixturenames:
        metafunc.parametrize("negative_case", CASES, ids=[c.id for c in CASES])
    if "board_driver" in metafunc.fixturenames:
        boards, why = selected_boards(metafunc.config)
        if boards:
            metafunc.parametrize("board_driver", [
                pytest.param(b.name, marks=pytest.mark.xdist_group(b.name)) for b in boards],
                indirect=True, scope="session")
        else:
            metafunc.parametrize("board_driver", [pytest.param(
                None, marks=pytest.mark.skip(reason=why), id="no-board")], indirect=True,
                scope="session")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of the virtual agent itself (fixture `virtual_board`) join the xdist group of the
    board they use. --mode M: tests that run in another mode are deselected (tests without a
    mode stay)."""
    agent_board = next((b.name for b in config.stash[_CONFIG].boards if b.kind == "virtual"), None)
    for item in items:
        if agent_board and "virtual_board" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(agent_board))
    wanted = config.getoption("--mode")
    if not wanted:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        mode, _, _ = cell_identity(item)
        (keep if mode is None or mode in wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", autouse=True)
def _no_broker_left_behind() -> Iterator[None]:
    """Sweeps what killed runs left (their private dirs); fails the session if any Mosquitto
    this process started is still alive at the end."""
    sweep_private_dirs()
    yield
    leaked = child_brokers()
    assert not leaked, f"mosquitto processes left behind: {leaked}"


@pytest.fixture(scope="session")
def hil_config(pytestconfig: pytest.Config) -> HilConfig:
    return pytestconfig.stash[_CONFIG]


@pytest.fixture(scope="session")
def pki(hil_config: HilConfig) -> Pki:
    p = Pki(hil_config)
    p.ensure()
    return p


def _shared_run_dir(config: pytest.Config) -> Path:
    """The run's directory (--hil-run-dir, or a new runs/<id>), made once per pytest run."""
    path = config.stash.get(_RUN_DIR, None)
    if path is None:
        given = config.getoption("--hil-run-dir")
        if given:
            path = Path(given)
            path.mkdir(parents=True, exist_ok=True)
        else:
            path = new_run_dir(config.stash[_CONFIG].run_dir)
        shutil.rmtree(path / GROUPS_DIR, ignore_errors=True)  # a reused dir's earlier workers
        config.stash[_RUN_DIR] = path
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: every worker writes into the same run directory."""
    node.workerinput["hil_run_dir"] = str(_shared_run_dir(node.config))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist controller: one worker per board (rig/parallel.py)."""
    return BoardScheduling(config, log, _shared_run_dir(config))


@pytest.hookimpl(tryfirst=True)  # before the xdist worker reports its collection
def pytest_collection_finish(session: pytest.Session) -> None:
    worker_id, _ = _worker(session.config)
    if worker_id:
        write_groups(Path(session.config.workerinput["hil_run_dir"]),  # type: ignore[attr-defined]
                     worker_id, session.items)


def _worker(config: pytest.Config) -> tuple[str, int]:
    """This process's xdist worker id and index ("", 0 without -n)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return "", 0
    worker_id = str(workerinput["workerid"])
    return worker_id, int(worker_id.removeprefix("gw") or 0)


@pytest.fixture(scope="session")
def run_dir(pytestconfig: pytest.Config) -> Path:
    """Broker and board logs. With -n, each worker writes into <run dir>/<worker id>/."""
    worker_id, _ = _worker(pytestconfig)
    if not worker_id:
        return _shared_run_dir(pytestconfig)
    path = Path(pytestconfig.workerinput["hil_run_dir"]) / worker_id  # type: ignore[attr-defined]
    path.mkdir(parents=True, exist_ok=True)
    return path


def broker_ports(config: pytest.Config) -> tuple[int, int]:
    """(session broker port, extra broker port) of this process. With a fixed `[broker] port`
    P, worker gwN (N = 0 without -n) owns P + 2N for the mode's session broker and P + 2N + 1
    for a test's own broker (negative cases and the like, one at a time); 0 = any free port."""
    base = config.stash[_CONFIG].broker.port
    if not base:
        return 0, 0
    _, index = _worker(config)
    return base + 2 * index, base + 2 * index + 1


@pytest.fixture(scope="session")
def _session_brokers(pytestconfig: pytest.Config, hil_config: HilConfig, pki: Pki,
                     run_dir: Path) -> Iterator[SessionBrokers]:
    brokers = SessionBrokers(lambda mode: start_for_mode(
        hil_config, pki, mode, run_dir, port=broker_ports(pytestconfig)[0]))
    yield brokers
    died = brokers.close()
    if died:  # after its mode's last cell: no cell to name it in, but the run must say it
        with (run_dir / SESSION_FAULTS).open("a") as fh:
            fh.write(f"{died.splitlines()[0]} (after its last cell)\n")


@pytest.fixture
def broker(request: pytest.FixtureRequest, _session_brokers: SessionBrokers,
           mode: Mode) -> Broker:
    """The real Mosquitto for `mode`, kept for the session (port: see broker_ports). A broker
    found dead before a cell is replaced for it, and the cell records that as a `fault`."""
    b, died = _session_brokers.get(mode)
    if died:
        request.node.user_properties.append(
            ("fault", f"{died.splitlines()[0]}; a fresh broker was started for this cell"))
    return b



@pytest.fixture(autouse=True)
def _broker_log_slice(request: pytest.FixtureRequest) -> None:
    """Remembers where this test's part of the broker log starts (for failure reports)."""
    request.node.stash[_BROKER_MARKS] = []
    if "broker" in request.fixturenames:
        b: Broker = request.getfixturevalue("broker")
        request.node.stash[_BROKER_MARKS].append((b, b.mark()))


@pytest.fixture
def start_broker(request: pytest.FixtureRequest, hil_config: HilConfig, pki: Pki,
                 run_dir: Path) -> Iterator[Callable[..., Broker]]:
    """Starts extra brokers for this test only (keyword arguments as rig.broker.running; the
    port defaults to this worker's extra broker port, see broker_ports); each is stopped after
    the test and its log is in a failure's report."""
    started: list[Broker] = []

    def start(mode: Mode, **kwargs: Any) -> Broker:
        kwargs.setdefault("port", broker_ports(request.config)[1])
        b = start_for_mode(hil_config, pki, mode, run_dir, **kwargs)
        started.append(b)
        request.node.stash[_BROKER_MARKS].append((b, 0))
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
        request.node.stash[_OBSERVER] = obs
        yield obs


@pytest.fixture(scope="session")
def hil_agent() -> Path:
    """The host build of the firmware, sanitized (ASan+UBSan) unless HIL_AGENT_VARIANT=plain."""
    variant = cast(Variant, os.environ.get("HIL_AGENT_VARIANT", "asan"))
    return build_host_agent(variant)


def _hold_board(stack: contextlib.ExitStack, hil_config: HilConfig, name: str) -> None:
    """Locks the board for the session (released with `stack`): no other process (xdist
    worker, run) drives it; fixtures of this process share the lock."""
    try:
        stack.enter_context(board_lock(hil_config.base_dir / ".hil" / "locks", name))
    except BoardBusy as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def board_driver(request: pytest.FixtureRequest, hil_config: HilConfig,
                 run_dir: Path) -> Iterator[BoardDriver]:
    """One board of hil.toml (parametrized by name), for the whole session."""
    spec = hil_config.board(request.param)
    agent = None
    if spec.kind == "virtual":
        agent = (hil_config.path(spec.build_dir) / "hil-agent" if spec.build_dir
                 else request.getfixturevalue("hil_agent"))
    with contextlib.ExitStack() as stack:
        _hold_board(stack, hil_config, spec.name)
        driver = make_board(spec, hil_config, agent=agent, run_dir=run_dir,
                            options=request.config.stash[_FLASH])
        stack.callback(driver.close)
        yield driver


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
    except BoardUnavailable as exc:
        pytest.skip(str(exc))
    except BoardError as exc:
        pytest.fail(str(exc), pytrace=False)
    use_blocking_reader(dut)
    note_children(_helper_processes())
    console = Console(dut, driver.name, hil.timeouts.command, health=driver.death)
    request.node.stash[_CONSOLE] = console
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


@pytest.fixture
def board(request: pytest.FixtureRequest, hil_config: HilConfig,
          board_driver: BoardDriver) -> Iterator[Console]:
    """The board's console for this test: port opened, board reset, boot line seen."""
    yield from _open_console(request, board_driver, hil_config)


@pytest.fixture(scope="session")
def virtual_board(request: pytest.FixtureRequest, hil_config: HilConfig,
                  run_dir: Path) -> Iterator[VirtualBoard]:
    """The first virtual board of hil.toml, for tests of the agent itself."""
    if request.config.getoption("--hil"):
        pytest.skip("--hil runs physical boards only (the virtual agent's tests run without it)")
    spec = next((b for b in hil_config.boards if b.kind == "virtual"), None)
    if spec is None:
        pytest.skip(f"no virtual board in {hil_config.source}")
    with contextlib.ExitStack() as stack:
        _hold_board(stack, hil_config, spec.name)
        board = make_board(spec, hil_config, agent=request.getfixturevalue("hil_agent"),
                           run_dir=run_dir, options=request.config.stash[_FLASH])
        assert isinstance(board, VirtualBoard)
        stack.callback(board.close)
        yield board


@pytest.fixture
def agent(request: pytest.FixtureRequest, hil_config: HilConfig,
          virtual_board: VirtualBoard) -> Iterator[Console]:
    """A fresh agent on the virtual board, reached through a pytest-embedded serial Dut."""
    yield from _open_console(request, virtual_board, hil_config)


class _JunitNames:
    """junit.xml, written by the process that receives the reports (the xdist controller with
    -n): a board test is named <board>.<mode>.<case> (a host test in a mode host.<mode>.<case>),
    and a suite property board.<name> says what a virtual board stands for."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        boards, _ = selected_boards(self.config)
        for b in boards:
            if b.kind == "virtual":
                add_suite_property(self.config, f"board.{b.name}", WHAT_IT_IS)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cell = getattr(report, "hil_cell", None)
        if report.when == "setup" and cell is not None:
            name = case_name(cell)
            if name:
                name_case(self.config, report, name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Every report carries its matrix cell (`hil_cell`: board, mode, case, expected) for the
    process that reports it; a failed test's report also carries the board's last lines and
    its slice of the broker log."""
    report = yield
    report.hil_cell = cell_fields(item)
    if report.failed and call.when != "teardown":
        _name_the_cause(item, report)
    if report.failed and hasattr(report.longrepr, "addsection"):
        console = item.stash.get(_CONSOLE, None)
        if console is not None:
            report.longrepr.addsection(f"board {console.board}: last lines (> = sent)",
                                       console.tail(40, indent=""))
        for b, mark in item.stash.get(_BROKER_MARKS, []):
            lines = b.log_since(mark)[-40:]
            report.longrepr.addsection(f"{b.name} log during this test ({b.log_path})",
                                       "\n".join(lines) or "(nothing)")
    return report


def _causes(item: pytest.Item) -> list[str]:
    """What broke under a failing cell, named: the board's process died, garbage on its
    console, a broker or the observer gone. Empty when all of them are healthy."""
    causes: list[str] = []
    console = item.stash.get(_CONSOLE, None)
    if console is not None:
        death = console.health()
        if death:
            causes.append(f"board {console.board}: {death}")
        noise = console.noise_summary()
        if noise:
            causes.append(noise)
    for b, _ in item.stash.get(_BROKER_MARKS, []):
        death = b.death()
        if death:
            causes.append(death)
    obs = item.stash.get(_OBSERVER, None)
    if obs is not None and not causes:  # a dead broker also takes the observer with it
        death = obs.death()
        if death:
            causes.append(death)
    return causes


def _name_the_cause(item: pytest.Item, report: pytest.TestReport) -> None:
    """Put the cause in front of the symptom: in the report's message (JUnit, the summary),
    as `hil_cause` on the report, and as a section with the whole text; results.json takes
    it from the message."""
    causes = _causes(item)
    if not causes:
        return
    crash = getattr(report.longrepr, "reprcrash", None)
    symptom = str(getattr(crash, "message", "") or "").strip()
    first = [c.splitlines()[0] for c in causes]
    new = [c for c in first if c not in symptom]
    if not new:
        return
    cause = "; ".join(new)
    report.hil_cause = cause  # type: ignore[attr-defined]
    if crash is not None:
        crash.message = f"{cause} (symptom: {symptom.splitlines()[0] if symptom else '?'})"
    longrepr: Any = report.longrepr
    if hasattr(longrepr, "addsection"):
        longrepr.addsection("cause", "\n\n".join(causes))
