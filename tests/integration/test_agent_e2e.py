"""The firmware agent (host build = virtual board) end to end: through a pytest-embedded serial
Dut on its pseudo-terminal, against the real Mosquitto in every mode."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from rig.boards.virtual import VirtualBoard
from rig.broker.mosquitto import Broker
from rig.config import DEFAULT_PSK_SUITES, HilConfig, Mode
from rig.device.console import Console, ConsoleError
from rig.device.provision import Setting, connect, mqtt_settings, provision
from rig.host.observer import Observer
from rig.pki import Pki
from tests.support import assert_no_secret


def test_boots_and_reports_versions(agent: Console) -> None:
    data = dict(line.split("=", 1) for line in agent.send("version").data)
    assert re.fullmatch(r"\d+\.\d+\.\d+", data["version"])
    assert data["mbedtls"].startswith("2.28")
    assert data["build"]
    assert agent.status()["mqtt"] == "disconnected"


def test_connects_and_publishes_in_each_mode(hil_config: HilConfig, pki: Pki, mode: Mode,
                                            broker: Broker, observer: Observer,
                                            agent: Console) -> None:
    provision(agent, mqtt_settings(hil_config, pki, mode, broker.port))
    topic = f"hil/e2e/{mode}/{uuid.uuid4().hex[:6]}"
    observer.subscribe(topic)
    mark = broker.mark()

    reply = connect(agent, hil_config.timeouts.connect)

    host = hil_config.broker.host
    reply.log(rf"^MQTT0 connecting to {re.escape(host)}:{broker.port}$")
    suite = reply.log(r"^ciphersuite: (\S+)$").group(1)
    reply.log(r"^MQTT0 handshake \d+ ms$")
    reply.log(r"^MQTT0 TCP connect ok \(0\)$")
    reply.log(r"^MQTT0 CONNACK 0$")
    order = [t.split(":")[0].split(" ")[0:2] for t in reply.logs]
    assert order.index(["ciphersuite"]) < order.index(["MQTT0", "TCP"]) < order.index(
        ["MQTT0", "CONNACK"]), reply.logs
    if mode == "psk":
        # The device offers the articles' list; Mosquitto picks by its own order: CCM-8.
        assert hil_config.modes.psk.device_cipher_suites == DEFAULT_PSK_SUITES
        assert suite == "TLS-PSK-WITH-AES-128-CCM-8"
    else:
        key = "ECDSA" if hil_config.pki.key_type == "ec-p256" else "RSA"
        assert suite.startswith(f"TLS-ECDHE-{key}-WITH-AES-"), suite

    pub = agent.send(f"mqtt publish {topic} hello-{mode} 1")
    pub.log(rf"^Published:OK topic:{re.escape(topic)} msg:hello-{mode}$")
    assert observer.wait_for(topic).payload == f"hello-{mode}".encode()

    # The broker saw the device under its identity (mutual: certificate CN; psk: identity).
    who = broker.wait_for_log(rf"New client connected .* as {hil_config.device.id}\b",
                              since=mark)
    if mode == "mutual":
        assert f"u'{hil_config.device.id}'" in who
    elif mode == "psk":
        assert f"u'{hil_config.device.psk_identity}'" in who
    agent.send("mqtt disconnect")
    assert agent.status()["mqtt"] == "disconnected"


@pytest.mark.modes("psk")
def test_receives_what_it_subscribed_to(hil_config: HilConfig, pki: Pki, mode: Mode,
                                        broker: Broker, observer: Observer,
                                        agent: Console) -> None:
    provision(agent, mqtt_settings(hil_config, pki, mode, broker.port))
    connect(agent, hil_config.timeouts.connect)
    topic = f"hil/down/{uuid.uuid4().hex[:6]}"
    agent.send(f"mqtt subscribe {topic} 1")
    observer.publish(topic, b"to-the-device")
    text = agent.expect_log(rf"MQTT0 message topic:{re.escape(topic)} msg:to-the-device")
    assert text.endswith("msg:to-the-device")


def test_psk_key_of_wrong_length_is_refused(agent: Console) -> None:
    with pytest.raises(ConsoleError) as info:
        agent.send("config set mqtt.ssl_psk_key 0011223344")
    assert_no_secret("0011223344", "mqtt.ssl_psk_key", {"the ConsoleError": str(info.value)})
    assert "16 or 32 bytes" in info.value.reason
    assert agent.send("config get mqtt.ssl_psk_key").data == ["mqtt.ssl_psk_key=<unset>"]


def test_unknown_cipher_suite_is_refused(agent: Console) -> None:
    with pytest.raises(ConsoleError, match="unknown cipher suite 'TLS-NOPE'"):
        agent.send("config set mqtt.ssl_cipher_suites TLS-PSK-WITH-AES-128-CCM-8:TLS-NOPE")


def test_secrets_read_back_masked(hil_config: HilConfig, pki: Pki, agent: Console) -> None:
    provision(agent, mqtt_settings(hil_config, pki, "mutual", 8883))
    key_line = agent.send("config get mqtt.ssl_key").data[0]
    assert_no_secret(pki.key("device").read_bytes(), "mqtt.ssl_key",
                     {"`config get mqtt.ssl_key`": key_line})  # before its line is shown
    assert re.fullmatch(r"mqtt\.ssl_key=<set, \d+ bytes>", key_line)
    cert_line = agent.send("config get mqtt.ssl_cert").data[0]
    assert re.fullmatch(r"mqtt\.ssl_cert=<pem \d+ bytes crc32 [0-9a-f]{8}>", cert_line)
    provision(agent, mqtt_settings(hil_config, pki, "psk", 8883))
    psk_reply = agent.send("config get mqtt.ssl_psk_key").data
    assert_no_secret(pki.psk_hex(), "mqtt.ssl_psk_key", {"the console transcript": agent.lines})
    assert psk_reply == [f"mqtt.ssl_psk_key=<set, {hil_config.device.psk_bytes} bytes>"]


def test_chunk_with_bad_crc_is_refused_and_nothing_stored(pki: Pki, agent: Console) -> None:
    import base64
    import zlib

    pem = pki.cert("ca").read_bytes()
    agent.send(f"config load mqtt.ssl_ca_cert {len(pem)} {zlib.crc32(pem):08x}")
    chunk = pem[:96]
    with pytest.raises(ConsoleError, match="crc"):
        agent.send(f"config data 0 {base64.b64encode(chunk).decode()} "
                   f"{zlib.crc32(chunk) ^ 1:08x}")
    agent.send("config clear mqtt.ssl_ca_cert")
    assert agent.send("config get mqtt.ssl_ca_cert").data == ["mqtt.ssl_ca_cert=<unset>"]


def test_saved_settings_survive_a_reset(hil_config: HilConfig, agent: Console,
                                        virtual_board: VirtualBoard) -> None:
    agent.send("config clear")
    agent.send("config set mqtt.server broker.example:8883")
    agent.send("config save")
    agent.send("config set mqtt.client_id not-saved")
    virtual_board.reset()
    agent.wait_ready(hil_config.timeouts.board_boot)
    assert agent.send("config get mqtt.server").data == ["mqtt.server=broker.example:8883"]
    assert agent.send("config get mqtt.client_id").data != ["mqtt.client_id=not-saved"]


def test_reboot_command_restarts_the_agent(hil_config: HilConfig, agent: Console,
                                           virtual_board: VirtualBoard) -> None:
    pid = virtual_board.pid
    agent.send("reboot")
    agent.wait_ready(hil_config.timeouts.board_boot)
    assert agent.send("version").data
    assert virtual_board.pid == pid  # re-exec in place, like a chip reset keeps its port


def test_nothing_listening_gives_an_error_and_the_agent_stays_responsive(
        hil_config: HilConfig, agent: Console) -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provision(agent, [Setting("mqtt.server", f"127.0.0.1:{port}".encode())])
    with pytest.raises(ConsoleError) as info:
        connect(agent, hil_config.timeouts.connect)
    assert info.value.reason == "mqtt connect: TCP connect failed (Connection refused)"
    assert any(line.endswith("MQTT0 TCP connect failed: Connection refused")
               for line in agent.lines), agent.lines
    assert agent.status()["mqtt"] == "disconnected"


def test_sha1_broker_certificate_is_refused_with_the_reason(
        hil_config: HilConfig, pki: Pki, agent: Console,
        start_broker: Callable[..., Broker]) -> None:
    # OpenSSL 3 itself refuses to load a SHA-1 certificate ("ca md too weak") at the default
    # security level, so this listener lowers it.
    broker = start_broker("ca", server_cert="broker-sha1", ciphers="DEFAULT:@SECLEVEL=0")
    provision(agent, mqtt_settings(hil_config, pki, "ca", broker.port))
    with pytest.raises(ConsoleError) as info:
        connect(agent, hil_config.timeouts.connect)
    broker.stop()
    lines = "\n".join(agent.lines)
    assert "MQTT0 verify: The certificate is signed with an unacceptable hash." in lines
    assert re.search(r"MQTT0 TLS handshake failed: -0x2700", lines), lines
    assert "mqtt connect" in str(info.value)
    assert agent.status()["mqtt"] == "disconnected"


def test_flash_state_is_private_and_outside_the_run_dir(hil_config: HilConfig, pki: Pki,
                                                        run_dir: Path, agent: Console,
                                                        virtual_board: VirtualBoard) -> None:
    provision(agent, mqtt_settings(hil_config, pki, "psk", 8883))
    agent.send("config save")
    state = virtual_board.state_path
    assert state.exists() and run_dir not in state.parents
    assert state.stat().st_mode & 0o077 == 0 and state.parent.stat().st_mode & 0o077 == 0
    agent.send("config clear")
    agent.send("config save")


def test_pipelined_commands_keep_their_answers_in_order(agent: Console) -> None:
    from rig.device.console import Command

    lines = ["config set mqtt.server pipelined.example:1",
             "config set mqtt.ssl_psk_key 00",
             "config get mqtt.server",
             "config set mqtt.ssl_cipher_suites TLS-NOPE",
             "version"]
    results = agent.send_many([Command(line, line) for line in lines])
    assert [type(r).__name__ for r in results] == [
        "Reply", "ConsoleError", "Reply", "ConsoleError", "Reply"]
    assert "16 or 32 bytes" in str(results[1])
    assert results[2].data == ["mqtt.server=pipelined.example:1"]  # type: ignore[union-attr]
    assert "TLS-NOPE" in str(results[3])
    assert any(d.startswith("version=") for d in results[4].data)  # type: ignore[union-attr]
    assert agent.status()["server"] == "pipelined.example:1"  # still in step afterwards


def test_a_board_that_stops_answering_is_named_with_its_last_lines(
        agent: Console, virtual_board: VirtualBoard) -> None:
    from rig.device.console import ConsoleTimeout

    agent.send("version")
    virtual_board.stop()  # the board goes silent (power loss, crash, hung firmware)
    with pytest.raises(ConsoleTimeout) as info:
        agent.send("config set mqtt.ssl_psk_key 000102030405060708090a0b0c0d0e0f", timeout=0.5)
    msg = str(info.value)
    assert_no_secret("0001020304", "mqtt.ssl_psk_key", {"the ConsoleTimeout": msg})
    assert f"board {virtual_board.name}" in msg
    assert "`config set mqtt.ssl_psk_key <secret>`" in msg
    assert "version=" in msg  # its last lines
    virtual_board.reset()  # power back on: the cell's tear-down checks the board still answers
