"""Resilience cells: what happens after the first connect, in every broker mode.

Each cell has a broker of its own (the mode's config, on this process's extra broker port), so
that stopping, freezing or renewing it touches no other cell. The board gets its mode's
settings plus the reconnect settings below, connects, and then:

- broker_restart: the broker stops (gracefully, as for an upgrade) and starts again on the same
  port; the board reconnects within its back-off, re-subscribes, and a message published to it
  after the restart arrives;
- silent_link: the broker is frozen (SIGSTOP: no FIN, no RST, a half-open link as after a Wi-Fi
  drop); the board detects it by its keep-alive within 1.5 x keep_alive (MQTT 3.1.1, 3.1.2.10)
  and, once the broker runs again, reconnects and publishes;
- qos1_outage: QoS 1 publishes issued while the broker is down are queued (up to
  mqtt.max_queue_length; one more is refused, never dropped in silence); the broker stays down
  until a reconnect attempt has failed (the back-off doubles); after the reconnect each is
  delivered at least once: the observer's persistent session gets each, duplicates counted;
- cert_renewed (ca, mutual): the broker's certificate is renewed (same CA, new key and serial)
  and the broker restarted; the board reconnects with no provisioning in between.

The settings come from hil.toml's [resilience], and the bounds from them: detection within
1.5 x keep_alive, a reconnect within reconnect_timeout_max plus [timeouts] connect of the broker
being back. A cell over a bound fails saying by how much. Runs on boards whose profile says
`reconnect = true` (rig/device/profile.py); the others have no such cells."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rig.broker.mosquitto import Broker
from rig.config import HilConfig, Mode, ResilienceSection
from rig.device.console import Console, ConsoleError
from rig.device.profile import Profile
from rig.device.provision import Setting, connect, mqtt_settings, provision
from rig.host.observer import Observer, tls_handshake
from rig.host.tls import credentials
from rig.local.spans import work
from rig.pki import Pki

pytestmark = pytest.mark.resilience

LOST = r"MQTT0 (?:connection lost: .+|keep-alive timeout: .+)"
ATTEMPT = r"MQTT0 reconnect attempt (?P<n>\d+) in (?P<ms>\d+) ms"
RECONNECTED = (r"MQTT0 reconnected after (?P<attempts>\d+) attempt\(s\), offline (?P<ms>\d+) ms, "
               r"session present (?P<present>[01])")


def reconnect_settings(r: ResilienceSection, keep_alive: int = 60) -> list[Setting]:
    """[resilience] as the board's settings; the keep-alive only where a cell needs a short
    one (the agent's default, 60 s, elsewhere)."""
    return [Setting("mqtt.reconnect_timeout_min", f"{r.reconnect_timeout_min:g}".encode()),
            Setting("mqtt.reconnect_timeout_max", f"{r.reconnect_timeout_max:g}".encode()),
            Setting("mqtt.keep_alive", str(keep_alive).encode()),
            Setting("mqtt.max_queue_length", str(r.max_queue_length).encode())]


def reconnect_bound(hil_config: HilConfig) -> float:
    """The longest a reconnect may take once the broker is back: the back-off's cap, then a
    connect (hil.toml [timeouts] connect)."""
    return hil_config.resilience.reconnect_timeout_max + hil_config.timeouts.connect


def within(console: Console, pattern: str, bound: float, what: str,
           since: float | None = None) -> tuple[re.Match[str], float]:
    """The board's next log line matching `pattern`, and the seconds from `since` (default: now)
    to it; fails naming by how much a line that came later than `bound` was late (it is waited
    for up to twice the bound)."""
    t0 = time.monotonic() if since is None else since
    with work("timer"):  # the board's keep-alive or back-off: what the cell is there to see
        text = console.expect_log(pattern, timeout=max(0.1, 2 * bound - (time.monotonic() - t0)))
    took = time.monotonic() - t0
    m = re.search(pattern, text)
    assert m is not None, text
    assert took <= bound, (f"{what} took {took:.2f} s, {took - bound:.2f} s over its bound of "
                           f"{bound:g} s: {text}")
    return m, took


@contextlib.contextmanager
def connected(hil_config: HilConfig, pki: Pki, mode: Mode, broker: Broker, console: Console,
              profile: Profile, extra: list[Setting]) -> Iterator[None]:
    """The board provisioned for `broker` with `extra`, connected; at the end `mqtt disconnect`
    (which also stops its reconnecting: the broker goes with the cell)."""
    provision(console, mqtt_settings(hil_config, pki, mode, broker.port) + extra)
    connect(console, hil_config.timeouts.connect, clock=profile.clock)
    try:
        yield
    finally:
        if not console.broken:
            with contextlib.suppress(ConsoleError):
                console.send("mqtt disconnect")


def observer_for(hil_config: HilConfig, pki: Pki, mode: Mode, broker: Broker,
                 **kwargs: object) -> Observer:
    return Observer(hil_config.broker.host, broker.port, credentials(hil_config, pki, mode),
                    timeout=hil_config.timeouts.connect, **kwargs)  # type: ignore[arg-type]


def reconnected(console: Console, hil_config: HilConfig, since: float, mark: int,
                record_property: Callable[[str, object], None]) -> re.Match[str]:
    """The board's reconnect within the bound (from `since`, when the broker was back), and
    its attempts since `mark` (a length of console.lines before the loss) at the back-off the
    settings say: min, doubled after each failure, capped at max. Records reconnect_ms (the
    rig's clock), offline_ms (the board's) and reconnect_attempts."""
    m, took = within(console, RECONNECTED, reconnect_bound(hil_config), "the reconnect", since)
    r = hil_config.resilience
    attempts = [(int(a["n"]), int(a["ms"])) for ln in console.lines[mark:]
                if (a := re.search(ATTEMPT, ln))]
    backoff = [(i + 1, round(min(r.reconnect_timeout_min * 2 ** i, r.reconnect_timeout_max)
                             * 1000))
               for i in range(len(attempts))]
    assert attempts and attempts == backoff, \
        f"attempts (number, wait ms) {attempts}; the settings' back-off: {backoff}"
    assert int(m["attempts"]) == len(attempts), (m[0], attempts)
    record_property("reconnect_ms", round(took * 1000, 1))
    record_property("offline_ms", int(m["ms"]))
    record_property("reconnect_attempts", len(attempts))
    return m


def round_trip(console: Console, observer: Observer, topic: str, hil_config: HilConfig) -> None:
    """The board publishes (QoS 1) and the observer gets it: the session works."""
    message = f"after-{uuid.uuid4().hex[:6]}"
    with work("mqtt"):
        console.send(f"mqtt publish {topic} {message} 1")
        assert observer.wait_for(topic, timeout=hil_config.timeouts.message).payload == \
            message.encode()


def test_broker_restart(hil_config: HilConfig, pki: Pki, mode: Mode,
                        start_broker: Callable[..., Broker], board_console: Console,
                        board_profile: Profile,
                        record_property: Callable[[str, object], None]) -> None:
    broker = start_broker(mode)
    topic = f"hil/{board_console.board}/{mode}/{uuid.uuid4().hex[:8]}/in"
    with connected(hil_config, pki, mode, broker, board_console, board_profile,
                   reconnect_settings(hil_config.resilience)):
        board_console.send(f"mqtt subscribe {topic} 1")
        mark = len(board_console.lines)
        down_s = broker.restart()
        back = time.monotonic()
        record_property("broker_down_ms", round(down_s * 1000, 1))
        board_console.expect_log(LOST, timeout=hil_config.timeouts.connect)
        m = reconnected(board_console, hil_config, back, mark, record_property)
        if m["present"] == "0":  # a clean session: the board subscribes again
            board_console.expect_log(rf"MQTT0 resubscribed {re.escape(topic)} qos 1",
                                     timeout=hil_config.timeouts.message)
        message = f"to-board-{uuid.uuid4().hex[:6]}"
        with observer_for(hil_config, pki, mode, broker) as obs:
            obs.publish(topic, message)
        board_console.expect_log(rf"MQTT0 message topic:{re.escape(topic)} msg:{message}$",
                                 timeout=hil_config.timeouts.message)


def test_silent_link(hil_config: HilConfig, pki: Pki, mode: Mode,
                     start_broker: Callable[..., Broker], board_console: Console,
                     board_profile: Profile,
                     record_property: Callable[[str, object], None]) -> None:
    broker = start_broker(mode)
    topic = f"hil/{board_console.board}/{mode}/{uuid.uuid4().hex[:8]}"
    keep_alive = hil_config.resilience.keep_alive
    bound = 1.5 * keep_alive
    with connected(hil_config, pki, mode, broker, board_console, board_profile,
                   reconnect_settings(hil_config.resilience, keep_alive)):
        mark = len(board_console.lines)
        broker.freeze()
        try:
            m, took = within(board_console, r"MQTT0 keep-alive timeout: nothing from the broker "
                             r"for (?P<ms>\d+) ms", bound,
                             f"detecting the silent broker (keep_alive {keep_alive} s)")
            record_property("detect_ms", round(took * 1000, 1))
            record_property("silent_ms", int(m["ms"]))  # the board's: since its last byte in
        finally:
            broker.thaw()
        back = time.monotonic()
        reconnected(board_console, hil_config, back, mark, record_property)
        with observer_for(hil_config, pki, mode, broker) as obs:
            obs.subscribe(topic)
            round_trip(board_console, obs, topic, hil_config)


def test_qos1_outage(hil_config: HilConfig, pki: Pki, mode: Mode,
                     start_broker: Callable[..., Broker], board_console: Console,
                     board_profile: Profile, tmp_path: Path,
                     record_property: Callable[[str, object], None]) -> None:
    broker = start_broker(mode, persistence_dir=tmp_path)
    topic = f"hil/{board_console.board}/{mode}/{uuid.uuid4().hex[:8]}"
    observer_id = f"hil-observer-{uuid.uuid4().hex[:8]}"
    # a persistent session: the broker keeps the observer's subscription and queues its
    # messages while it is away (and, with persistence, across the restart)
    with observer_for(hil_config, pki, mode, broker, client_id=observer_id,
                      clean_session=False) as obs:
        obs.subscribe(topic)
    queue = hil_config.resilience.max_queue_length
    sent = [f"queued-{i}-{uuid.uuid4().hex[:6]}" for i in range(queue)]
    with connected(hil_config, pki, mode, broker, board_console, board_profile,
                   reconnect_settings(hil_config.resilience)):

        def offline_publishes() -> None:
            board_console.expect_log(LOST, timeout=hil_config.timeouts.connect)
            for i, message in enumerate(sent, 1):
                reply = board_console.send(f"mqtt publish {topic} {message} 1")
                assert reply.note == f"queued {i} of {queue}", reply.note
                reply.log(rf"MQTT0 queued PUBLISH topic:{re.escape(topic)} \({i} of {queue}\)")
            with pytest.raises(ConsoleError) as full:
                board_console.send(f"mqtt publish {topic} one-too-many 1")
            assert full.value.reason == f"offline queue full ({queue} of {queue}): not queued", \
                full.value.reason
            # the broker stays away until an attempt has failed: the back-off is seen doubling
            board_console.expect_log(r"MQTT0 reconnect attempt 2 in \d+ ms",
                                     timeout=reconnect_bound(hil_config))

        mark = len(board_console.lines)
        record_property("broker_down_ms", round(broker.restart(offline_publishes) * 1000, 1))
        back = time.monotonic()
        reconnected(board_console, hil_config, back, mark, record_property)
        board_console.expect_log(rf"MQTT0 sending {queue} queued message\(s\)",
                                 timeout=hil_config.timeouts.message)
        for _ in sent:
            board_console.expect_log(r"MQTT0 PUBACK id \d+ \(queued\)",
                                     timeout=hil_config.timeouts.message)
    with observer_for(hil_config, pki, mode, broker, client_id=observer_id,
                      clean_session=False) as obs:
        for message in sent:
            obs.wait_for(topic, message.encode(), timeout=hil_config.timeouts.message)
        time.sleep(0.1)  # a duplicate right behind its original is counted too
        got = [m.payload.decode() for m in obs.messages() if m.topic == topic]
    assert "one-too-many" not in got, got
    assert [m for m in got if m not in sent] == [], got
    duplicates = len(got) - len(set(got))
    record_property("duplicates", duplicates)  # MQTT 3.1.1 QoS 1: at least once


@pytest.mark.modes("ca", "mutual")
def test_cert_renewed(hil_config: HilConfig, pki: Pki, mode: Mode,
                      start_broker: Callable[..., Broker], board_console: Console,
                      board_profile: Profile, tmp_path: Path,
                      record_property: Callable[[str, object], None]) -> None:
    broker = start_broker(mode)
    topic = f"hil/{board_console.board}/{mode}/{uuid.uuid4().hex[:8]}"
    cert, key, serial = pki.renewed("broker", tmp_path)
    with connected(hil_config, pki, mode, broker, board_console, board_profile,
                   reconnect_settings(hil_config.resilience)):
        sent_before, mark = len(board_console.transcript), len(board_console.lines)
        broker.restart(certfile=cert, keyfile=key)
        back = time.monotonic()
        reconnected(board_console, hil_config, back, mark, record_property)
        served = tls_handshake(hil_config.broker.host, broker.port,
                               credentials(hil_config, pki, mode), hil_config.timeouts.connect)
        assert served.peer_serial == serial, \
            f"the broker serves serial {served.peer_serial}, the renewed certificate is {serial}"
        record_property("broker_serial", f"{serial:x}")
        with observer_for(hil_config, pki, mode, broker) as obs:
            obs.subscribe(topic)
            round_trip(board_console, obs, topic, hil_config)
        commands = [ln for ln in board_console.transcript[sent_before:]
                    if ln.startswith("> ") and "config " in ln]
        assert commands == [], f"the board was provisioned again: {commands}"
