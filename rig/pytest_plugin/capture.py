"""--hil-capture fail|all|off: each board cell's traffic captured (rig/host/capture.py) with the
TLS session secrets of its connections embedded, kept as <run dir>/<board>.<mode>.<case>.pcapng
for a failing cell (for every cell with `all`). The brokers write theirs (rig/broker/keylog.py),
so a cell decrypts whatever firmware the board runs; a board whose profile says `keylog` (the
hil-agent) also exports its own, sealed for the cell (Console.keylog_on); host peers (Python
ssl, curl) write theirs to the file SSLKEYLOGFILE names during the cell. A capture that cannot
start gives one line (a cell property and the summary) and the cell runs without it. A board
that hangs or dies after the cell's last step (no answer to the end's `tls keylog off`) fails
the cell with that, its capture kept, and the cell's end waits for it no second time
(rig/device/strategy.py, BoardStrategy.end)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import Literal

import pytest

from rig.boards import BoardDriver
from rig.broker.mosquitto import Broker
from rig.device.console import Console, ConsoleError
from rig.errors import RigError
from rig.host.capture import CaptureUnavailable, CellCapture, Recorder
from rig.host.cipher_suites import from_iana
from rig.pytest_plugin.inventory import CELL_FAILED, inventory
from rig.pytest_plugin.results import case_name, cell_fields
from rig.pytest_plugin.xdist import shared_run_dir

CaptureMode = Literal["fail", "all", "off"]
CAPTURE = pytest.StashKey[CellCapture]()
UNAVAILABLE = pytest.StashKey[str]()  # why captures cannot start in this session
RECORDER = pytest.StashKey[Recorder]()  # this process's running tcpdumps (rig/host/capture.py)
# pytest-embedded's function-scoped autouse fixtures (2.9): `count` sets what
# `parametrize_fixtures` reads, which fills the cache DutFactory.create needs
EMBEDDED_AUTOUSE = ("close_factory_duts", "count", "parametrize_fixtures")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil")
    group.addoption("--hil-capture", choices=("fail", "all", "off"), default="fail",
                    help="keep each failing board cell's traffic, decryptable, as <run dir>/"
                         "<board>.<mode>.<case>.pcapng (all: every cell's; off: capture "
                         "nothing). Default: fail")


def exports_keys(config: pytest.Config) -> bool:
    """Do this session's brokers write their TLS secrets (Broker tls_keys)? Only while cells
    are captured."""
    return bool(config.getoption("--hil-capture", "off") != "off")


def watch(request: pytest.FixtureRequest, port: int, protocol: str,
          broker: Broker | None = None) -> None:
    """Capture this cell's traffic on `port` too (a port known only during the cell: a
    negative case's own broker, the board's HTTPS server); `protocol` (mqtt, http) is what
    runs inside TLS there, for the file's decode hint; `broker`: the server there, whose TLS
    secrets the capture takes. A capture problem never fails the cell: it is recorded as the
    cell's `capture` property."""
    cap = request.node.stash.get(CAPTURE, None)
    if cap is None:
        return
    try:
        cap.watch(port, protocol, None if broker is None else broker.take_tls_keys)
    except Exception as exc:  # the capture is evidence, never the verdict
        _unavailable(request, exc)
    if broker is not None and broker.tls_keys_unavailable:
        request.node.user_properties.append(
            ("capture_keys", f"the broker writes no TLS secrets: {broker.tls_keys_unavailable}"))


@pytest.fixture
def capture_port(request: pytest.FixtureRequest) -> Callable[[int, str], None]:
    """For a test: `capture_port(port, protocol)` adds a port known only during the cell (the
    board's HTTPS server) to the cell's capture, if any (`watch`)."""
    return functools.partial(watch, request)


WireSuite = Callable[[Broker, str, int], tuple[str, str]]
CLIENT_LINE_TIMEOUT_S = 2.0  # the broker logged the board's connection before its CONNACK


@pytest.fixture
def wire_suite(request: pytest.FixtureRequest) -> WireSuite:
    """For a test of a firmware that prints no ciphersuite line: `wire_suite(broker,
    client_id, since)` is (the mbedTLS name of the suite, where it was read) from the Server
    Hello the broker sent to `client_id`'s last connection after the broker's log mark
    `since`, in the cell's capture; ('', why not) when there is none to read."""
    return functools.partial(read_wire_suite, request)


def read_wire_suite(request: pytest.FixtureRequest, broker: Broker, client_id: str,
                    since: int) -> tuple[str, str]:
    cap = request.node.stash.get(CAPTURE, None)
    if cap is None:
        why = request.config.stash.get(UNAVAILABLE, "") or (
            "--capture off" if request.config.getoption("--hil-capture", "off") == "off"
            else "its capture did not start")
        return "", f"not read: the firmware prints no ciphersuite line and the cell has no " \
                   f"capture ({why})"
    port = broker.client_port(client_id, since, timeout=CLIENT_LINE_TIMEOUT_S)
    if port is None:
        return "", f"not read: the broker's log shows no connection of {client_id}"
    try:
        iana = cap.server_hello_suite(broker.port, port)
    except Exception as exc:  # the capture is evidence, never the verdict
        return "", f"not read from the cell's capture: {exc}"
    if not iana:
        return "", f"not read: no Server Hello to port {port} in the cell's capture"
    return from_iana(iana), (f"read from the wire: the broker's Server Hello to {client_id} "
                             f"(port {port}) in the cell's capture")


def _unavailable(request: pytest.FixtureRequest, exc: Exception) -> None:
    """Record why this cell has no (complete) capture; a permanent reason (a missing tool, a
    refused capture) also stops the session from trying again."""
    text = str(exc) if isinstance(exc, CaptureUnavailable) else f"no capture: {exc!r}"
    if isinstance(exc, CaptureUnavailable) and exc.permanent:
        request.config.stash[UNAVAILABLE] = text
    request.node.user_properties.append(("capture", text))


@pytest.fixture(autouse=True)
def _cell_capture(request: pytest.FixtureRequest) -> Iterator[None]:
    mode: CaptureMode = request.config.getoption("--hil-capture", "off")
    if mode == "off" or "board_console" not in request.fixturenames:
        yield
        return
    # a board opens through pytest-embedded, whose own per-test autouse fixtures must have run
    # first; the order of autouse fixtures from different plugins is not fixed, so ask for them
    for name in EMBEDDED_AUTOUSE:
        if name in request.fixturenames:
            request.getfixturevalue(name)
    console: Console = request.getfixturevalue("board_console")
    driver: BoardDriver = request.getfixturevalue("board_strategy").driver
    cap = _start(request, console)
    if cap is None:
        yield
        return
    before = os.environ.get("SSLKEYLOGFILE")
    os.environ["SSLKEYLOGFILE"] = str(cap.host_keylog)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SSLKEYLOGFILE", None)
        else:
            os.environ["SSLKEYLOGFILE"] = before
        _finish(request, console, driver, cap, mode)


def _start(request: pytest.FixtureRequest, console: Console) -> CellCapture | None:
    why = request.config.stash.get(UNAVAILABLE, "")
    if why:  # said once for the session; each cell says it has none
        request.node.user_properties.append(("capture", why))
        return None
    spec = inventory(request.config).board(console.board)
    name = case_name(cell_fields(request.node)) or request.node.name
    out = shared_run_dir(request.config) / f"{name}.pcapng"
    try:
        recorder = request.config.stash.get(RECORDER, None)
        if recorder is None:
            recorder = request.config.stash[RECORDER] = Recorder()
        recorder.rotate()
        cap = CellCapture(name, "lo" if spec.kind == "virtual" else "any", out, recorder)
    except Exception as exc:  # the capture is evidence, never the verdict
        _unavailable(request, exc)
        return None
    try:
        request.node.stash[CAPTURE] = cap
        if "broker" in request.fixturenames:
            broker: Broker = request.getfixturevalue("broker")
            broker.take_tls_keys()  # earlier cells' sessions: not this cell's
            watch(request, broker.port, "mqtt", broker)
        if request.getfixturevalue("board_profile").keylog:
            _board_keys(request, console)
    except Exception as exc:
        _forget(request)
        cap.finish(keep=False)
        if isinstance(exc, RigError) and not isinstance(exc, CaptureUnavailable):
            raise
        _unavailable(request, exc)
        return None
    except BaseException:  # an interrupt: nothing of the capture stays
        _forget(request)
        cap.finish(keep=False)
        raise
    return cap


def _board_keys(request: pytest.FixtureRequest, console: Console) -> None:
    """The board exports its TLS secrets for the cell (a firmware whose profile says keylog)."""
    try:
        console.keylog_on()
    except ConsoleError as exc:
        if console.broken:  # a dead or hung board: the cell fails with that, as it should
            raise
        # an ERR, e.g. firmware from before `tls keylog`: captured without its secrets
        request.node.user_properties.append(
            ("capture_keys", f"the board exports no TLS secrets: {exc.reason}"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The process's tcpdumps stop with its session (also an interrupted one; after a kill,
    the next run's sweep stops them)."""
    recorder = session.config.stash.get(RECORDER, None)
    if recorder is not None:
        del session.config.stash[RECORDER]
        recorder.close()


def _forget(request: pytest.FixtureRequest) -> None:
    if CAPTURE in request.node.stash:
        del request.node.stash[CAPTURE]


def _finish(request: pytest.FixtureRequest, console: Console, driver: BoardDriver,
            cap: CellCapture, mode: CaptureMode) -> None:
    _forget(request)
    hang = _export_off(console, cap)
    cap.add_keys(console.take_keys())
    try:
        path = cap.finish(_keep(request, console, driver, mode), comment=cap.decode_hint())
    except Exception as exc:  # the capture is evidence, never the verdict
        _unavailable(request, exc)
        path = None
    if path is not None:
        request.node.user_properties.append(("capture", str(path)))
        request.node.user_properties.append(("capture_decode", cap.tshark_args(path)))
        if cap.lost:
            request.node.user_properties.append(("capture_lost", cap.lost))
    if hang is not None:  # the cell fails with it; the capture is named next to it
        raise hang


def _export_off(console: Console, cap: CellCapture) -> ConsoleError | None:
    """The key export off, and the board's last sealed lines read with it: the first command
    of the cell's end. A board that hung or died after the cell's last step stays `broken`
    (the board strategy's end then waits no second time) and is returned, so that the cell
    fails naming it, after its capture is kept; an ERR answer is no fault of the cell."""
    broken = console.broken
    try:
        with console.doing("ending the cell"):
            console.keylog_off()
    except RigError as exc:
        if isinstance(exc, ConsoleError) and console.broken and not broken:
            return exc
        console.broken = broken
    except BaseException:  # an interrupt (Ctrl-C, SIGTERM) while waiting: nothing stays
        cap.finish(keep=False)
        raise
    return None


def _keep(request: pytest.FixtureRequest, console: Console, driver: BoardDriver,
          mode: CaptureMode) -> bool:
    """`all`, or a cell that failed, or one its end fails: a board that died or hung (also
    at the export's end, _export_off), rebooted or printed garbage (checked after this, by
    board_console)."""
    if mode == "all" or request.node.stash.get(CELL_FAILED, False):
        return True
    return bool(console.broken or console.unexpected_reboot or console.noise_summary() or
                driver.death())
