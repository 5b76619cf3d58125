"""pytest entry point for the HIL rig: options and the config/PKI/broker/mode fixtures.

    pytest                     every mode against the real Mosquitto
    pytest --mode psk          one mode (or -k psk)
    pytest --hil-config FILE   another inventory (default: ./hil.toml)

One broker per mode is kept for the whole session (start-to-ready is a few ms, but keeping it
spares every test a start and keeps its log in one file under the run directory).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from rig.boards.virtual import VirtualBoard
from rig.broker import Broker, child_brokers, start_for_mode
from rig.config import MODES, ConfigError, HilConfig, Mode, load
from rig.console import Console
from rig.firmware import Variant, build_host_agent
from rig.observer import Observer
from rig.pki import Pki
from rig.runs import new_run_dir
from rig.tls import credentials

ROOT = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop rig")
    group.addoption("--hil-config", default=None,
                    help="hil.toml to use (default: $HIL_CONFIG or ./hil.toml)")
    group.addoption("--mode", action="append", choices=MODES, default=None,
                    help="broker mode(s) to run: ca, mutual, psk (default: all)")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--hil-config") or os.environ.get("HIL_CONFIG") or ROOT / "hil.toml"
    config.addinivalue_line("markers", "modes(*names): run this test only in these broker modes")
    try:
        config.stash[_CONFIG] = load(path)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


_CONFIG = pytest.StashKey[HilConfig]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`mode` is parametrized over the selected modes (--mode), narrowed by @pytest.mark.modes."""
    if "mode" in metafunc.fixturenames:
        modes = metafunc.config.getoption("--mode") or list(MODES)
        marker = metafunc.definition.get_closest_marker("modes")
        if marker is not None:
            modes = [m for m in modes if m in marker.args]
        metafunc.parametrize("mode", modes, scope="session")


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
def run_dir(hil_config: HilConfig) -> Path:
    return new_run_dir(hil_config.run_dir)


@pytest.fixture(scope="session")
def broker(hil_config: HilConfig, pki: Pki, mode: Mode, run_dir: Path) -> Iterator[Broker]:
    """The real Mosquitto for `mode`, kept for the session."""
    b = start_for_mode(hil_config, pki, mode, run_dir)
    try:
        yield b
    finally:
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
def virtual_board(hil_config: HilConfig, hil_agent: Path, run_dir: Path) -> Iterator[VirtualBoard]:
    """The first virtual board of hil.toml. Its state file (its "flash", which may hold saved
    secrets) lives in the private .hil/boards/, never in the run directory that CI uploads."""
    spec = next((b for b in hil_config.boards if b.kind == "virtual"), None)
    if spec is None:
        pytest.skip(f"no virtual board in {hil_config.source}")
    board = VirtualBoard(spec.name, hil_agent, hil_config.base_dir / ".hil" / "boards", run_dir)
    try:
        yield board
    finally:
        board.close()


@pytest.fixture
def agent(hil_config: HilConfig, virtual_board: VirtualBoard) -> Iterator[Console]:
    """A fresh agent on the virtual board, reached through a pytest-embedded serial Dut.

    The port is opened first, then the board is reset (opening a port flushes what the device
    printed before), then the rig waits for the boot line."""
    from pytest_embedded.dut_factory import DutFactory

    dut: Any = DutFactory.create(embedded_services="serial", port=virtual_board.port)
    virtual_board.reset()
    console = Console(dut, virtual_board.name, hil_config.timeouts.command)
    console.wait_ready(hil_config.timeouts.board_boot)
    yield console
    virtual_board.stop()
    report = virtual_board.sanitizer_report()
    assert not report, f"sanitizer report from {virtual_board.name}:\n{report}"
