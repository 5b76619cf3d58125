"""Each broker mode with real peers: the paho observer (preflight) and mosquitto_pub, plus the
refusals the rig must tell apart (client without certificate, wrong PSK, unknown CA, wrong
host), each asserted on both the client's error and the broker's logged reason."""

from __future__ import annotations

import dataclasses
import subprocess
import uuid
from collections.abc import Callable

import pytest

from rig.broker import Broker
from rig.config import HilConfig, Mode
from rig.observer import Observer, ObserverError, preflight, tls_handshake
from rig.peers import Target, mosquitto_pub_argv
from rig.pki import Pki
from rig.tls import ClientCredentials, credentials


def mosquitto_pub(broker: Broker, host: str, creds: ClientCredentials, topic: str,
                  message: str) -> subprocess.CompletedProcess[str]:
    argv = mosquitto_pub_argv(Target(host, broker.port), creds, topic, message,
                              client_id=f"pub-{uuid.uuid4().hex[:6]}")
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def test_preflight_passes(hil_config: HilConfig, pki: Pki, mode: Mode, broker: Broker) -> None:
    result = preflight(hil_config.broker.host, broker.port, credentials(hil_config, pki, mode))
    assert result.mode == mode
    assert result.protocol in ("TLSv1.2", "TLSv1.3")
    assert result.handshake_ms > 0 and result.roundtrip_ms > 0
    if mode == "psk":
        # server preference: the broker's first suite, which the host also offers
        assert (result.protocol, result.cipher) == ("TLSv1.2", "PSK-AES128-CCM8")


def test_mosquitto_pub_delivers(hil_config: HilConfig, pki: Pki, mode: Mode, broker: Broker,
                                observer: Observer) -> None:
    topic = f"hil/test/{mode}/{uuid.uuid4().hex[:6]}"
    observer.subscribe(topic)
    proc = mosquitto_pub(broker, hil_config.broker.host, credentials(hil_config, pki, mode),
                         topic, f"hello-{mode}")
    assert proc.returncode == 0, proc.stderr
    assert observer.wait_for(topic).payload == f"hello-{mode}".encode()


@pytest.mark.modes("mutual")
def test_mutual_refuses_client_without_certificate(hil_config: HilConfig, pki: Pki,
                                                   mode: Mode, broker: Broker) -> None:
    mark = broker.mark()
    creds = credentials(hil_config, pki, mode, client_cert=None)
    proc = mosquitto_pub(broker, hil_config.broker.host, creds, "hil/x", "x")
    assert proc.returncode != 0
    broker.wait_for_log("peer did not return a certificate", since=mark)
    with pytest.raises(ObserverError):
        Observer(hil_config.broker.host, broker.port, creds, timeout=5).connect()


@pytest.mark.modes("mutual")
def test_mutual_refuses_certificate_from_another_ca(hil_config: HilConfig, pki: Pki,
                                                    mode: Mode, broker: Broker) -> None:
    mark = broker.mark()
    creds = credentials(hil_config, pki, mode, client_cert="other-device")
    assert mosquitto_pub(broker, hil_config.broker.host, creds, "hil/x", "x").returncode != 0
    broker.wait_for_log("certificate verify failed", since=mark)


@pytest.mark.modes("psk")
def test_psk_refuses_wrong_key(hil_config: HilConfig, pki: Pki, mode: Mode,
                               broker: Broker) -> None:
    wrong = dataclasses.replace(credentials(hil_config, pki, mode), psk_hex="00" * 16)
    mark = broker.mark()
    # TLS 1.2, as the device speaks it
    with pytest.raises(OSError, match="bad record mac"):
        tls_handshake(hil_config.broker.host, broker.port, wrong)
    broker.wait_for_log("decryption failed or bad record mac", since=mark)
    # mosquitto_pub negotiates TLS 1.3, where the same mistake has another name
    mark = broker.mark()
    assert mosquitto_pub(broker, hil_config.broker.host, wrong, "hil/x", "x").returncode != 0
    broker.wait_for_log("binder does not verify", since=mark)


@pytest.mark.modes("psk")
def test_psk_refuses_unknown_identity(hil_config: HilConfig, pki: Pki, mode: Mode,
                                      broker: Broker) -> None:
    stranger = dataclasses.replace(credentials(hil_config, pki, mode), psk_identity="stranger")
    mark = broker.mark()
    with pytest.raises(OSError, match="unknown psk identity"):
        tls_handshake(hil_config.broker.host, broker.port, stranger)
    broker.wait_for_log("psk identity not found", since=mark)


@pytest.mark.modes("ca")
def test_client_refuses_broker_from_unknown_ca(hil_config: HilConfig, pki: Pki, mode: Mode,
                                               broker: Broker) -> None:
    distrustful = credentials(hil_config, pki, mode, ca="other-ca")
    unknown_ca = (r"certificate refused: (self-signed certificate in certificate chain"
                  r"|unable to get local issuer certificate)")
    with pytest.raises(ObserverError, match=unknown_ca):
        Observer(hil_config.broker.host, broker.port, distrustful, timeout=5).connect()
    mark = broker.mark()
    assert mosquitto_pub(broker, hil_config.broker.host, distrustful, "hil/x",
                         "x").returncode != 0
    broker.wait_for_log("tlsv1 alert unknown ca", since=mark)


@pytest.fixture
def wronghost_broker(start_broker: Callable[..., Broker]) -> Broker:
    return start_broker("ca", server_cert="broker-wronghost")


def test_client_refuses_broker_for_another_host(hil_config: HilConfig, pki: Pki,
                                                wronghost_broker: Broker) -> None:
    creds = credentials(hil_config, pki, "ca")
    with pytest.raises(ObserverError, match="mismatch"):
        Observer(hil_config.broker.host, wronghost_broker.port, creds, timeout=5).connect()
    proc = mosquitto_pub(wronghost_broker, hil_config.broker.host, creds, "hil/x", "x")
    assert proc.returncode != 0
