"""The mode matrix: every selected board through every broker mode.

Per cell: provision the mode over the console, `mqtt connect`, then the board's log must show
the negotiated suite (in PSK mode exactly the one the broker's list implies), CONNACK 0 and
Published:OK, and the host observer must receive the board's message through the broker.
JUnit: cases are named <board>.<mode>.<case>, with cipher_suite and handshake_ms properties.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from rig.broker.mosquitto import Broker
from rig.config import HilConfig, Mode
from rig.device.console import Console
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


def test_connect_publish(hil_config: HilConfig, pki: Pki, mode: Mode, broker: Broker,
                         observer: Observer, board_console: Console,
                         record_property: Callable[[str, object], None]) -> None:
    mode_cfg = hil_config.modes.get(mode)  # what to expect, before the cell's clock starts
    want = expected_suite(mode_cfg.broker_ciphers, mode_cfg.device_cipher_suites)
    t0 = time.perf_counter()
    provision(board_console, mqtt_settings(hil_config, pki, mode, broker.port))
    record_property("provision_ms", round((time.perf_counter() - t0) * 1000, 1))
    topic = f"hil/{board_console.board}/{mode}/{uuid.uuid4().hex[:8]}"
    observer.subscribe(topic)

    reply = connect(board_console, hil_config.timeouts.connect)

    suite = reply.log(r"^ciphersuite: (\S+)$").group(1)
    handshake_ms = int(reply.log(r"^MQTT0 handshake (\d+) ms$").group(1))
    record_property("cipher_suite", suite)
    record_property("handshake_ms", handshake_ms)
    if want is not None:
        assert suite == want, f"negotiated {suite}, the broker's list implies {want}"
    elif mode == "psk":
        assert "-PSK-" in suite, suite
    else:
        assert re.fullmatch(r"TLS-ECDHE-(ECDSA|RSA)-WITH-\S+", suite), suite
    reply.log(r"^MQTT0 TCP connect ok \(0\)$")
    reply.log(r"^MQTT0 CONNACK 0$")

    message = f"cell-{mode}-{uuid.uuid4().hex[:6]}"
    with work("mqtt"):
        board_console.send(f"mqtt publish {topic} {message} 1").log(
            rf"^Published:OK topic:{re.escape(topic)} msg:{message}$")
        assert observer.wait_for(topic, timeout=hil_config.timeouts.message).payload == \
            message.encode()
    record_property("cell_ms", round((time.perf_counter() - t0) * 1000, 1))
    board_console.send("mqtt disconnect")
