"""The mode matrix: every selected board through every broker mode.

Per cell: provision the mode over the console, `mqtt connect`, then the board's log must show
the negotiated suite (in PSK mode exactly the one the broker's list implies), CONNACK 0 and
Published:OK, and the host observer must receive the board's message through the broker. A
firmware whose profile has no ciphersuite line has its suite read from the wire instead: the
broker's Server Hello in the cell's capture (cipher_suite_from says so).
JUnit: cases are named <board>.<mode>.<case>, with cipher_suite and handshake_ms properties.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from rig.boards import BoardDriver
from rig.broker.mosquitto import Broker
from rig.config import HilConfig, Mode
from rig.device import boot_connect
from rig.device.console import Console
from rig.device.profile import Profile
from rig.device.provision import connect, mqtt_settings, provision
from rig.host.cipher_suites import expected_suite
from rig.host.observer import Observer, preflight
from rig.host.tls import credentials
from rig.local.spans import work
from rig.pki import Pki


def test_broker_preflight(hil_config: HilConfig, pki: Pki, mode: Mode, broker: Broker,
                          record_property: Callable[[str, object], None]) -> None:
    """The broker mode works from the host, so a failing board cell is the board's (JUnit:
    host.<mode>.broker_preflight)."""
    result = preflight(hil_config.broker.host, broker.port, credentials(hil_config, pki, mode),
                       hil_config.timeouts.connect)
    record_property("cipher_suite", result.cipher)
    record_property("handshake_ms", round(result.handshake_ms, 1))
    assert result.roundtrip_ms > 0


def check_suite(suite: str, want: str | None, mode: Mode,
                record_property: Callable[[str, object], None]) -> None:
    """The negotiated suite (mbedTLS name): the one the broker's list implies, else one of the
    mode's kind."""
    record_property("cipher_suite", suite)
    if want is not None:
        assert suite == want, f"negotiated {suite}, the broker's list implies {want}"
    elif mode == "psk":
        assert "-PSK-" in suite, suite
    else:
        assert re.fullmatch(r"TLS-ECDHE-(ECDSA|RSA)-WITH-\S+", suite), suite


def test_connect_publish(hil_config: HilConfig, pki: Pki, mode: Mode, broker: Broker,
                         observer: Observer, board_console: Console, board_profile: Profile,
                         board_driver: BoardDriver,
                         wire_suite: Callable[[Broker, str, int], tuple[str, str]],
                         record_property: Callable[[str, object], None]) -> None:
    broker_mark = broker.mark()
    mode_cfg = hil_config.modes.get(mode)  # what to expect, before the cell's clock starts
    want = expected_suite(mode_cfg.broker_ciphers, mode_cfg.device_cipher_suites)
    lines = board_profile.lines
    settings = mqtt_settings(hil_config, pki, mode, broker.port)
    topic = f"hil/{board_console.board}/{mode}/{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    if board_profile.connects_at_boot:  # settings, a reboot, and it connects by itself
        observer.subscribe(topic)
        since = boot_connect.provision(board_console, board_driver, board_profile, settings,
                                       hil_config.timeouts.board_boot)
        record_property("provision_ms", round((time.perf_counter() - t0) * 1000, 1))
        reply = boot_connect.outcome(board_console, board_profile, since,
                                 hil_config.timeouts.connect)
    else:
        provision(board_console, settings)
        record_property("provision_ms", round((time.perf_counter() - t0) * 1000, 1))
        observer.subscribe(topic)
        reply = connect(board_console, hil_config.timeouts.connect, clock=board_profile.clock)

    for rx in (*lines.on_connect, lines.connected):  # the way there, in the profile's words
        reply.log(rx.pattern)
    if lines.handshake is not None:
        record_property("handshake_ms", int(reply.log(lines.handshake.pattern).group("ms")))
    if lines.ciphersuite is not None:
        check_suite(reply.log(lines.ciphersuite.pattern).group("suite"), want, mode,
                    record_property)
    else:  # the firmware prints none: the broker's Server Hello to it, in the cell's capture
        suite, source = wire_suite(broker, hil_config.device.id, broker_mark)
        record_property("cipher_suite_from", source)
        if suite:
            check_suite(suite, want, mode, record_property)

    message = f"cell-{mode}-{uuid.uuid4().hex[:6]}"
    if board_profile.connects_at_boot and not board_profile.rpc_publish:
        record_property("published", f"not asked: {board_profile} has no way to make the "
                        "firmware publish (rpc_publish = \"\")")
        record_property("cell_ms", round((time.perf_counter() - t0) * 1000, 1))
        return
    with work("mqtt"):
        if board_profile.connects_at_boot:
            boot_connect.publish(board_console, board_profile, topic, message,
                             hil_config.timeouts.message)
        else:
            published = board_console.send(f"mqtt publish {topic} {message} 1")
            if lines.published is not None:
                m = published.log(lines.published.pattern)
                assert (m.group("topic"), m.group("message")) == (topic, message), m.group(0)
        assert observer.wait_for(topic, timeout=hil_config.timeouts.message).payload == \
            message.encode()
    record_property("cell_ms", round((time.perf_counter() - t0) * 1000, 1))
    if not board_profile.connects_at_boot:  # one that does is rebooted by its next cell
        board_console.send("mqtt disconnect")
