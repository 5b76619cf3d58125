"""The host observer: a paho-mqtt client that sees the broker the way the boards do.

Two uses:
- `preflight()` proves a broker mode works (TLS handshake + MQTT round trip) before a board is
  blamed, and reports protocol, cipher suite and handshake time;
- `Observer.wait_for()` waits for a message that a board publishes.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion

from rig.errors import RigError
from rig.host.tls import ClientCredentials, client_context
from rig.local.spans import work


class ObserverError(RigError):
    """The observer could not connect, subscribe or receive; says which and why."""


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True)
class Handshake:
    protocol: str
    cipher: str
    handshake_ms: float
    peer_serial: int | None = None  # the server certificate's serial number (none with PSK)


@dataclass(frozen=True)
class PreflightResult:
    mode: str
    host: str
    port: int
    protocol: str
    cipher: str
    handshake_ms: float
    roundtrip_ms: float


def tls_handshake(host: str, port: int, creds: ClientCredentials, timeout: float = 10.0,
                  server_hostname: str | None = None) -> Handshake:
    """One bare TLS handshake (TCP_NODELAY like the device), timed from TCP connect."""
    ctx = client_context(creds)
    t0 = time.perf_counter()
    with socket.create_connection((host, port), timeout=timeout) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        name = server_hostname or host
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            ms = (time.perf_counter() - t0) * 1000.0
            cipher = tls.cipher()
            der = tls.getpeercert(binary_form=True)
            serial = x509.load_der_x509_certificate(der).serial_number if der else None
            return Handshake(tls.version() or "?", cipher[0] if cipher else "?", ms, serial)


class Observer:
    """A connected paho client. Use as a context manager."""

    def __init__(self, host: str, port: int, creds: ClientCredentials, *,
                 client_id: str | None = None, timeout: float = 10.0,
                 clean_session: bool = True) -> None:
        self.host, self.port, self.creds, self.timeout = host, port, creds, timeout
        self.client_id = client_id or f"hil-observer-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._messages: list[Message] = []
        self._cond = threading.Condition()
        self._connack: int | None = None
        self._subacks: dict[int, list[int]] = {}
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id,
            protocol=mqtt.MQTTv311, clean_session=clean_session,
        )
        self._client.tls_set_context(client_context(creds))
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._started = False
        self._closing = False
        self._lost = ""  # why the connection went away while we did not close it

    # paho callbacks (network thread)
    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        with self._cond:
            self._connack = int(rc.value) if hasattr(rc, "value") else int(rc)
            self._cond.notify_all()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self._messages.append(Message(msg.topic, bytes(msg.payload), msg.qos,
                                          bool(msg.retain)))
            self._cond.notify_all()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, rcs: Any, _p: Any) -> None:
        with self._cond:
            self._subacks[mid] = [int(getattr(r, "value", r)) for r in rcs]
            self._cond.notify_all()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        with self._cond:
            if not self._closing and not self._lost:
                self._lost = str(rc)
            self._cond.notify_all()

    def death(self) -> str:
        """'' while connected; else `observer: lost its connection to <mode> broker at H:P
        (<paho's reason>)`."""
        with self._cond:
            lost = self._lost
        return (f"observer: lost its connection to the {self.creds.mode} broker at "
                f"{self.host}:{self.port} ({lost})") if lost else ""

    def _wait(self, pred: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred():
                if self._lost:
                    raise ObserverError(f"observer {self.host}:{self.port}: connection lost "
                                        f"({self._lost}) while waiting for {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ObserverError(f"observer {self.host}:{self.port}: timed out after "
                                        f"{timeout:.1f}s waiting for {what}")
                self._cond.wait(left)

    def __enter__(self) -> Observer:
        self.connect()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def connect(self) -> None:
        with work("mqtt"):
            self._connect()

    def _connect(self) -> None:
        where = f"{self.creds.mode} broker at {self.host}:{self.port}"
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except ssl.SSLCertVerificationError as exc:
            raise ObserverError(f"TLS to {where}: certificate refused: "
                                f"{exc.verify_message}") from exc
        except (ssl.SSLError, OSError) as exc:
            raise ObserverError(f"TLS/TCP to {where} failed: {exc}") from exc
        self._client.loop_start()
        self._started = True
        self._wait(lambda: self._connack is not None, self.timeout, "CONNACK")
        if self._connack != 0:
            raise ObserverError(f"{where} refused the observer: CONNACK {self._connack}")

    def subscribe(self, topic: str, qos: int = 1) -> None:
        with work("mqtt"):
            self._subscribe(topic, qos)

    def _subscribe(self, topic: str, qos: int) -> None:
        rc, mid = self._client.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise ObserverError(f"subscribe {topic!r} failed: {mqtt.error_string(rc)}")
        self._wait(lambda: mid in self._subacks, self.timeout, f"SUBACK for {topic!r}")
        if any(code >= 0x80 for code in self._subacks[mid]):
            raise ObserverError(f"broker refused subscription to {topic!r}")

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        info = self._client.publish(topic, payload, qos)
        info.wait_for_publish(self.timeout)
        if not info.is_published():
            raise ObserverError(f"publish to {topic!r} not acknowledged within {self.timeout}s")

    def messages(self) -> list[Message]:
        with self._cond:
            return list(self._messages)

    def wait_for(self, topic: str, payload: bytes | None = None,
                 timeout: float | None = None) -> Message:
        """The first message on `topic` (and with `payload`, when given)."""
        found: list[Message] = []

        def match() -> bool:
            for m in self._messages:
                if m.topic == topic and (payload is None or m.payload == payload):
                    found.append(m)
                    return True
            return False

        want = f"a message on {topic!r}" + (f" with payload {payload!r}" if payload else "")
        with work("mqtt"):
            self._wait(match, self.timeout if timeout is None else timeout, want)
        return found[0]

    def close(self) -> None:
        if self._started:
            with self._cond:
                self._closing = True
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False


def preflight(host: str, port: int, creds: ClientCredentials, timeout: float = 10.0) -> \
        PreflightResult:
    """Prove one broker mode works from the host: TLS handshake, then an MQTT round trip."""
    with work("mqtt"):
        hs = tls_handshake(host, port, creds, timeout)
        topic = f"hil/preflight/{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter()
        with Observer(host, port, creds, timeout=timeout) as obs:
            obs.subscribe(topic)
            obs.publish(topic, b"preflight")
            obs.wait_for(topic, b"preflight")
        rt = (time.perf_counter() - t0) * 1000.0
    return PreflightResult(creds.mode, host, port, hs.protocol, hs.cipher, hs.handshake_ms, rt)
