"""The chip's clock. An ESP32 boots with no clock (1970-01-01 plus its uptime) and its mbedTLS
checks certificate dates against that clock; the rig sets it (`clock set`) before every connect.
This proves both halves on the boards that follow the chip's rules (esp32, and the virtual board
with variant = "esp"): right after a boot the board says its clock is unset, a connect then is
refused because the broker's certificate "starts in the future", with a warning that names the
unset clock; with the clock set, the same settings connect.

JUnit: <board>.ca.clock_unset, with device_reason."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rig.broker.mosquitto import Broker
from rig.config import HilConfig, Mode
from rig.device.console import Console, ConsoleError, log_text
from rig.device.provision import connect, mqtt_settings, provision
from rig.pki import Pki

UNSET_WARNING = "clock not set"
NOT_YET_VALID = "MQTT0 verify: The certificate validity starts in the future"


def board_clock(console: Console) -> dict[str, str]:
    """The board's `clock` reply: clock (Unix seconds) and clock_set (yes/no)."""
    reply = console.send("clock")
    return dict(line.split("=", 1) for line in reply.data if "=" in line)


@pytest.mark.chip_clock
@pytest.mark.fresh_board
@pytest.mark.modes("ca")
def test_clock_unset(hil_config: HilConfig, pki: Pki, mode: Mode, broker: Broker,
                     board_console: Console,
                     record_property: Callable[[str, object], None]) -> None:
    record_property("expected", "refused until the clock is set")
    clock = board_clock(board_console)
    assert clock.get("clock_set") == "no", f"board's clock right after a boot: {clock}"
    assert int(clock["clock"]) < 86400, f"an unset clock counts from 1970-01-01: {clock}"

    provision(board_console, mqtt_settings(hil_config, pki, mode, broker.port))
    start = len(board_console.lines)
    with pytest.raises(ConsoleError) as info, board_console.doing(
            "connecting with its clock unset"):
        board_console.send("mqtt connect", timeout=hil_config.timeouts.connect)
    texts = [t for t in (log_text(line) for line in board_console.lines[start:]) if t]
    warning = [t for t in texts if UNSET_WARNING in t]
    refused = [t for t in texts if NOT_YET_VALID in t]
    assert warning, f"no `{UNSET_WARNING}` warning before the handshake: {texts}"
    assert refused, f"expected `{NOT_YET_VALID}`; device printed {texts}"
    assert "certificate verify failed" in info.value.reason, info.value.reason
    record_property("device_reason", refused[0])

    reply = connect(board_console, hil_config.timeouts.connect)  # sets the clock first
    reply.log(r"^MQTT0 CONNACK 0$")
    assert not [t for t in reply.logs if UNSET_WARNING in t], reply.logs
    assert board_clock(board_console).get("clock_set") == "yes"
    board_console.send("mqtt disconnect")
