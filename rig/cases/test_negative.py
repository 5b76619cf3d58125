"""The negative matrix (rig/cases/negative.py): every broken configuration must be refused with the
right reason on the device's side and on the broker's side, and leave the agent answering.

Runs on the virtual boards by default and on the physical boards with --hil; each case starts
its own broker (certificates and options differ per case) on loopback."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from rig.boards import BoardDriver
from rig.broker.mosquitto import Broker, free_port
from rig.cases.leaks import assert_no_secret
from rig.cases.negative import NegativeCase, device_settings
from rig.config import HilConfig
from rig.device import boot_connect
from rig.device.console import SECRET_KEYS, Console, ConsoleError, log_text
from rig.device.mos_rpc import RpcError
from rig.device.profile import Profile
from rig.device.provision import Setting, connect, provision
from rig.pki import Pki


def in_order(texts: list[str], wanted: tuple[str, ...]) -> list[str] | None:
    """The lines of `texts` containing each of `wanted`, in that order, or None."""
    found: list[str] = []
    rest = iter(texts)
    for want in wanted:
        line = next((t for t in rest if want in t), None)
        if line is None:
            return None
        found.append(line)
    return found


def device_verdict(c: NegativeCase, texts: list[str], error: str) -> str:
    """Checks the device's lines and ERR against the case; returns the line that says why."""
    for lines, err in c.device_expectations():
        found = in_order(texts, lines)
        if found is not None and err in error:
            return found[-1] if found else f"ERR {error}"
    wanted = " or ".join(f"{list(lines)} with ERR {err!r}"
                         for lines, err in c.device_expectations())
    raise AssertionError(f"device printed {texts} with ERR {error!r}; expected {wanted}")


def refused_on_command(hil_config: HilConfig, c: NegativeCase, console: Console,
                       profile: Profile, settings: list[Setting]) -> tuple[str, str]:
    """Console settings, then `mqtt connect`: (the ERR's reason, the whole error)."""
    if c.fails_at == "provision":
        with pytest.raises(ConsoleError) as info:
            provision(console, settings)
    else:
        provision(console, settings)  # goes through: this case fails at connect
        with pytest.raises(ConsoleError) as info:
            connect(console, hil_config.timeouts.connect, clock=profile.clock)
    return info.value.reason, str(info.value)


def refused_at_boot(hil_config: HilConfig, c: NegativeCase, console: Console, driver: BoardDriver,
                    profile: Profile, settings: list[Setting]) -> tuple[str, str]:
    """A firmware that connects by itself (rig/device/boot_connect.py): a setting refused at
    Config.Set (mongoose-rpc: the RPC error) or at boot (nvs-image: its profile's
    lines.refused_setting, and no connection), or the connection at boot refused (its
    `mqtt.enable:` line, the reason `mqtt connect` would give)."""
    boot = hil_config.timeouts.board_boot
    if c.fails_at == "provision" and profile.settings == "nvs-image":
        refused = profile.lines.refused_setting
        assert refused is not None  # required for nvs-image (rig/device/profile.py)
        since = boot_connect.provision(console, driver, profile, settings, boot)
        texts = boot_connect.wait_lines(console, since, lambda ts: any(
            refused.search(t) for t in ts), hil_config.timeouts.connect,
            f"{refused.pattern!r} line refusing the image's settings ({profile})")
        line = next(t for t in texts if refused.search(t))
        return line, line
    if c.fails_at == "provision":
        with pytest.raises(RpcError) as info:
            boot_connect.provision(console, driver, profile, settings, boot)
        return str(info.value), str(info.value)
    since = boot_connect.provision(console, driver, profile, settings, boot)
    boot_connect.outcome(console, profile, since, hil_config.timeouts.connect)
    # its reason line follows the refused one (wait_lines: at once if it is already there)
    texts = boot_connect.wait_lines(console, since, lambda ts: any(
        t.startswith("mqtt.enable: ") for t in ts), hil_config.timeouts.connect,
        "`mqtt.enable:` line saying why the boot connect failed")
    reason = next(t for t in texts if t.startswith("mqtt.enable: ")).removeprefix(
        "mqtt.enable: ")
    return reason, reason


def test_refused(hil_config: HilConfig, pki: Pki, negative_case: NegativeCase,
                 board_console: Console, board_profile: Profile, board_driver: BoardDriver,
                 start_broker: Callable[..., Broker],
                 record_property: Callable[[str, object], None]) -> None:
    c = negative_case
    record_property("expected", "refused")
    broker = None
    if c.listening:
        broker = start_broker(c.mode, name=f"broker-{c.id}", server_cert=c.broker_cert,
                              ciphers=c.broker_ciphers, allow_anonymous=c.broker_anonymous)
        port = broker.port
    else:
        port = free_port(hil_config.broker.bind)  # free a moment ago: nothing listens there
    settings = device_settings(hil_config, pki, c, port)
    start = len(board_console.lines)

    if board_profile.connects_at_boot:
        error, shown = refused_at_boot(hil_config, c, board_console, board_driver, board_profile,
                                       settings)
    else:
        error, shown = refused_on_command(hil_config, c, board_console, board_profile, settings)
    for s in settings:
        if s.key in SECRET_KEYS:
            assert_no_secret(s.value, s.key, {"the error": shown,
                                              "the console transcript": board_console.transcript})

    texts = [t for t in (log_text(line) for line in board_console.lines[start:]) if t is not None]
    if c.fails_at == "provision" and board_profile.settings == "nvs-image":
        record_property("device_reason", error)  # the image's refusal, in the app's words
    else:
        record_property("device_reason", device_verdict(c, texts, error))
    if c.fails_at == "connect":  # the device's own words for it, as its profile reads them
        assert board_profile.refusal(texts), (
            f"none of the device's lines is a refusal to {board_profile}: {texts}")

    if c.fails_at == "provision" and not board_profile.connects_at_boot:
        # nothing was sent: the agent will not even try without a valid key
        with pytest.raises(ConsoleError, match=r"mqtt\.ssl_psk_key: required"):
            connect(board_console, hil_config.timeouts.connect, clock=board_profile.clock)
    if broker is not None and c.broker_reason is not None:
        seen = broker.wait_for_log(re.escape(c.broker_reason),
                                   timeout=hil_config.timeouts.message)
        record_property("broker_reason", seen.split(": ", 1)[-1])
    elif broker is not None:
        assert not broker.client_connections(), broker.log_lines()

    # no restart needed between cases
    assert board_console.status()["mqtt"] == "disconnected"
