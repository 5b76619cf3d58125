"""pytest entry point for the HIL rig: options, and the board / broker / mode fixtures.

    pytest                       virtual boards from hil.toml, every broker mode
    pytest --hil                 physical boards only (skipped, with the reason, when none)
    pytest --board NAME          some boards;   --mode psk (or -k psk)   some modes
    pytest --hil-config FILE     another inventory (default: $HIL_CONFIG or ./hil.toml)

Brokers: one Mosquitto per mode is kept for the whole session. Start-to-ready measured ~6-9 ms
(bench/matrix.py), so restarting per test would also be cheap; keeping it means one log file per
mode per run, and tests see only their own slice of it (Broker.mark()).
Boards: one driver per board for the session; each test opens its port, resets the board and
waits for the boot line (opening a port flushes what the board printed before).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from rig.boards import BoardDriver, BoardUnavailable, make_board
from rig.boards.serial_reader import use_blocking_reader
from rig.boards.virtual import WHAT_IT_IS, VirtualBoard
from rig.broker import Broker, child_brokers, running, start_for_mode
from rig.config import MODES, Board, ConfigError, HilConfig, Mode, load
from rig.console import Console
from rig.firmware import Variant, build_host_agent
from rig.matrix import cell_identity
from rig.negative import CASES
from rig.observer import Observer
from rig.pki import Pki
from rig.runs import new_run_dir
from rig.tls import credentials
from rig.web import WEB_MODES

ROOT = Path(__file__).resolve().parent
_CONFIG = pytest.StashKey[HilConfig]()
_CONSOLE = pytest.StashKey[Console]()
_BROKER_MARKS = pytest.StashKey[list[tuple[Broker, int]]]()


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
    config.addinivalue_line("markers", "modes(*names): run this test only in these broker modes")
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
            metafunc.parametrize("board_driver", [b.name for b in boards], indirect=True,
                                 scope="session")
        else:
            metafunc.parametrize("board_driver", [pytest.param(
                None, marks=pytest.mark.skip(reason=why), id="no-board")], indirect=True,
                scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--mode M: tests that run in another mode are deselected (tests without a mode stay)."""
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
    """Fails the session if any Mosquitto this process started is still alive at the end."""
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


@pytest.fixture(scope="session")
def run_dir(pytestconfig: pytest.Config, hil_config: HilConfig) -> Path:
    given = pytestconfig.getoption("--hil-run-dir")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return new_run_dir(hil_config.run_dir)


@pytest.fixture(scope="session")
def broker(hil_config: HilConfig, pki: Pki, mode: Mode, run_dir: Path) -> Iterator[Broker]:
    """The real Mosquitto for `mode`, kept for the session."""
    with running(hil_config, pki, mode, run_dir) as b:
        yield b


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
    """Starts extra brokers for this test only (keyword arguments as rig.broker.running);
    each is stopped after the test and its log is in a failure's report."""
    started: list[Broker] = []

    def start(mode: Mode, **kwargs: Any) -> Broker:
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
def observer(hil_config: HilConfig, pki: Pki, mode: Mode, broker: Broker) -> Iterator[Observer]:
    """A host MQTT client connected to this mode's broker with the device's credentials."""
    with Observer(hil_config.broker.host, broker.port, credentials(hil_config, pki, mode),
                  timeout=hil_config.timeouts.connect) as obs:
        yield obs


@pytest.fixture(scope="session")
def hil_agent() -> Path:
    """The host build of the firmware, sanitized (ASan+UBSan) unless HIL_AGENT_VARIANT=plain."""
    variant = cast(Variant, os.environ.get("HIL_AGENT_VARIANT", "asan"))
    return build_host_agent(variant)


@pytest.fixture(scope="session")
def board_driver(request: pytest.FixtureRequest, hil_config: HilConfig,
                 run_dir: Path) -> Iterator[BoardDriver]:
    """One board of hil.toml (parametrized by name), for the whole session."""
    spec = hil_config.board(request.param)
    agent = None
    if spec.kind == "virtual":
        agent = (hil_config.path(spec.build_dir) / "hil-agent" if spec.build_dir
                 else request.getfixturevalue("hil_agent"))
    driver = make_board(spec, hil_config, agent=agent, run_dir=run_dir)
    if spec.kind == "virtual":
        request.getfixturevalue("record_testsuite_property")(f"board.{spec.name}", WHAT_IT_IS)
    try:
        yield driver
    finally:
        driver.close()


def _open_console(request: pytest.FixtureRequest, driver: BoardDriver,
                  hil: HilConfig) -> Iterator[Console]:
    try:
        dut: Any = driver.open()
    except BoardUnavailable as exc:
        pytest.skip(str(exc))
    use_blocking_reader(dut)
    console = Console(dut, driver.name, hil.timeouts.command)
    request.node.stash[_CONSOLE] = console
    console.wait_ready(hil.timeouts.board_boot)
    try:
        driver.prepare(console)
    except BoardUnavailable as exc:
        pytest.skip(str(exc))
    yield console
    problem = driver.after_test()
    assert not problem, problem


@pytest.fixture
def board(request: pytest.FixtureRequest, hil_config: HilConfig, board_driver: BoardDriver,
          record_xml_attribute: Any) -> Iterator[Console]:
    """The board's console for this test: port opened, board reset, boot line seen. JUnit names
    the case <board>.<mode>.<case>."""
    mode, case, _ = cell_identity(request.node)
    record_xml_attribute("name", ".".join(p for p in (board_driver.name, mode, case) if p))
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
    board = make_board(spec, hil_config, agent=request.getfixturevalue("hil_agent"),
                       run_dir=run_dir)
    assert isinstance(board, VirtualBoard)
    try:
        yield board
    finally:
        board.close()


@pytest.fixture
def agent(request: pytest.FixtureRequest, hil_config: HilConfig,
          virtual_board: VirtualBoard) -> Iterator[Console]:
    """A fresh agent on the virtual board, reached through a pytest-embedded serial Dut."""
    yield from _open_console(request, virtual_board, hil_config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's report carries the board's last lines and its slice of the broker log."""
    report = yield
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
