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

from rig.boards import BoardDriver
from rig.broker.mosquitto import Broker
from rig.config import HilConfig, Mode, ResilienceSection
from rig.device import boot_connect, mongoose
from rig.device.console import Console, ConsoleError, log_text
from rig.device.mos_rpc import RpcError
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
    return [Setting("mqtt.reconnect_timeout_min", seconds(r.reconnect_timeout_min).encode()),
            Setting("mqtt.reconnect_timeout_max", seconds(r.reconnect_timeout_max).encode()),
            Setting("mqtt.keep_alive", str(keep_alive).encode()),
            Setting("mqtt.max_queue_length", str(r.max_queue_length).encode())]


def seconds(value: float) -> str:
    """Seconds as the agent takes them: at most 3 decimals, none trailing (1000.125, 0.2, 1)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def reconnect_bound(hil_config: HilConfig) -> float:
    """The longest a reconnect may take once the broker is back: the back-off's cap, then a
    connect (hil.toml [timeouts] connect)."""
    return hil_config.resilience.reconnect_timeout_max + hil_config.timeouts.connect


def within(console: Console, broker: Broker, pattern: str, bound: float, what: str,
           since: float | None = None) -> tuple[re.Match[str], float]:
    """The board's next log line matching `pattern`, and the seconds from `since` (default: now)
    to it; fails naming by how much a line that came later than `bound` was late (it is waited
    for up to twice the bound), or that none came, with the board's and the broker's last
    lines."""
    t0 = time.monotonic() if since is None else since
    try:
        with work("timer"):  # the board's keep-alive or back-off: what the cell is there to see
            text = console.expect_log(pattern,
                                      timeout=max(0.1, 2 * bound - (time.monotonic() - t0)))
    except ConsoleError as exc:
        raise AssertionError(f"{what}: none within {2 * bound:g} s (twice its bound): {exc}"
                             f"{broker_tail(broker)}") from exc
    took = time.monotonic() - t0
    m = re.search(pattern, text)
    assert m is not None, text
    assert took <= bound, (f"{what} took {took:.2f} s, {took - bound:.2f} s over its bound of "
                           f"{bound:g} s: {text}{broker_tail(broker)}")
    return m, took


def new_client(hil_config: HilConfig) -> str:
    """The broker's line for the board's connection."""
    return rf"New client connected from \S+ as {re.escape(hil_config.device.id)} "


def broker_tail(broker: Broker, n: int = 6) -> str:
    lines = broker.log_lines()[-n:]
    return ("\n  the broker's last lines:\n    " + "\n    ".join(lines)) if lines else ""


class Way:
    """How the cell drives the board: over its console (settings = "console": `config set`,
    `mqtt connect`, `mqtt subscribe`, `mqtt publish`, `mqtt disconnect`) or the Mongoose OS
    way (settings = "mongoose-rpc": Config.Set and a reboot after which it connects by itself,
    RPC MQTT.Pub, and at the end mqtt.enable false with a reboot)."""

    def __init__(self, hil_config: HilConfig, console: Console, driver: BoardDriver,
                 profile: Profile) -> None:
        self.hil, self.console, self.driver, self.profile = hil_config, console, driver, profile

    @property
    def subscribes(self) -> bool:
        """Can the rig make the firmware subscribe? (A Mongoose OS app subscribes in its own
        code.)"""
        return not self.profile.connects_at_boot

    def connect(self, settings: list[Setting]) -> None:
        if self.profile.connects_at_boot:
            since = boot_connect.provision(self.console, self.driver, self.profile, settings,
                                           self.hil.timeouts.board_boot)
            reply = boot_connect.outcome(self.console, self.profile, since,
                                         self.hil.timeouts.connect)
            reply.log(self.profile.lines.connected.pattern)
        else:
            provision(self.console, settings)
            connect(self.console, self.hil.timeouts.connect, clock=self.profile.clock)

    def publish(self, topic: str, message: str) -> None:
        """A QoS 1 publish, through while connected."""
        if self.profile.connects_at_boot:
            boot_connect.publish(self.console, self.profile, topic, message,
                                 self.hil.timeouts.message)
        else:
            self.console.send(f"mqtt publish {topic} {message} 1")

    def publish_offline(self, topic: str, message: str, k: int, n: int) -> None:
        """A QoS 1 publish while the connection is down: queued as k of n."""
        since = len(self.console.lines)
        if self.profile.connects_at_boot:
            self.console.rpc_open()
            result = self.console.rpc(self.profile.rpc_publish,
                                      {"topic": topic, "message": message, "qos": 1})
            assert isinstance(result, dict) and result.get("queued") is True, result
        else:
            reply = self.console.send(f"mqtt publish {topic} {message} 1")
            assert reply.note == f"queued {k} of {n}", reply.note
        # printed before the answer
        texts = [t for t in (log_text(ln) for ln in self.console.lines[since:]) if t]
        assert f"MQTT0 queued PUBLISH topic:{topic} ({k} of {n})" in texts, texts

    def refused_offline(self, topic: str, n: int) -> str:
        """One QoS 1 publish more than the queue holds: the refusal's text."""
        with pytest.raises((ConsoleError, RpcError)) as refused:
            if self.profile.connects_at_boot:
                self.console.rpc(self.profile.rpc_publish,
                                 {"topic": topic, "message": "one-too-many", "qos": 1})
            else:
                self.console.send(f"mqtt publish {topic} one-too-many 1")
        err = refused.value
        return err.reason if isinstance(err, ConsoleError) else str(err)

    def end(self, quiet: bool = False) -> None:
        """No more connecting: the broker goes with the cell. A failure to stop fails the cell
        (the board would go on connecting to the next cell's broker), unless `quiet` (the cell
        failed already)."""
        if self.console.broken:
            return
        with contextlib.suppress(*((ConsoleError, RpcError) if quiet else ())):
            if self.profile.connects_at_boot:
                mongoose.disable(self.console, self.hil.timeouts.board_boot)
            else:
                self.console.send("mqtt disconnect")


@contextlib.contextmanager
def connected(hil_config: HilConfig, pki: Pki, mode: Mode, broker: Broker, way: Way,
              extra: list[Setting]) -> Iterator[None]:
    """The board given its settings for `broker` and `extra`, connected; at the end it stops
    connecting (Way.end)."""
    way.connect(mqtt_settings(hil_config, pki, mode, broker.port) + extra)
    try:
        yield
    except BaseException:
        way.end(quiet=True)  # the cell's own failure is what it reports
        raise
    way.end()


@pytest.fixture
def way(hil_config: HilConfig, board_console: Console, board_driver: BoardDriver,
        board_profile: Profile) -> Way:
    return Way(hil_config, board_console, board_driver, board_profile)


def observer_for(hil_config: HilConfig, pki: Pki, mode: Mode, broker: Broker,
                 **kwargs: object) -> Observer:
    return Observer(hil_config.broker.host, broker.port, credentials(hil_config, pki, mode),
                    timeout=hil_config.timeouts.connect, **kwargs)  # type: ignore[arg-type]


def reconnected(console: Console, hil_config: HilConfig, broker: Broker, since: float,
                mark: int, record_property: Callable[[str, object], None],
                broker_mark: int | None = None) -> re.Match[str]:
    """The board's reconnect within the bound (from `since`, when the broker was back), its
    attempts since `mark` (a length of console.lines before the loss) at the back-off the
    settings say (min, doubled after each failure, capped at max), and the broker's side: the
    board's client id connected again (in its log after `broker_mark`; by default since the
    broker's last start). Records reconnect_ms (the rig's clock), offline_ms (the board's),
    reconnect_attempts and broker_saw."""
    m, took = within(console, broker, RECONNECTED, reconnect_bound(hil_config),
                     "the reconnect", since)
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
    saw = broker.wait_for_log(new_client(hil_config), timeout=hil_config.timeouts.message,
                              since=broker.started_mark if broker_mark is None else broker_mark)
    record_property("broker_saw", saw)
    return m


def round_trip(way: Way, observer: Observer, topic: str) -> None:
    """The board publishes (QoS 1) and the observer gets it: the session works."""
    message = f"after-{uuid.uuid4().hex[:6]}"
    with work("mqtt"):
        way.publish(topic, message)
        assert observer.wait_for(topic, timeout=way.hil.timeouts.message).payload == \
            message.encode()


def test_broker_restart(hil_config: HilConfig, pki: Pki, mode: Mode,
                        start_broker: Callable[..., Broker], way: Way,
                        record_property: Callable[[str, object], None]) -> None:
    broker = start_broker(mode)
    console = way.console
    topic = f"hil/{console.board}/{mode}/{uuid.uuid4().hex[:8]}"
    with connected(hil_config, pki, mode, broker, way, reconnect_settings(hil_config.resilience)):
        if way.subscribes:
            console.send(f"mqtt subscribe {topic}/in 1")
        mark = len(console.lines)
        down_s = broker.restart()
        back = time.monotonic()
        record_property("broker_down_ms", round(down_s * 1000, 1))
        console.expect_log(LOST, timeout=hil_config.timeouts.connect)
        m = reconnected(console, hil_config, broker, back, mark, record_property)
        with observer_for(hil_config, pki, mode, broker) as obs:
            if way.subscribes:  # subscribed again (a clean session), a message gets to it
                if m["present"] == "0":
                    console.expect_log(rf"MQTT0 resubscribed {re.escape(topic)}/in qos 1",
                                       timeout=hil_config.timeouts.message)
                message = f"to-board-{uuid.uuid4().hex[:6]}"
                obs.publish(f"{topic}/in", message)
                console.expect_log(rf"MQTT0 message topic:{re.escape(topic)}/in msg:{message}$",
                                   timeout=hil_config.timeouts.message)
            obs.subscribe(topic)
            round_trip(way, obs, topic)


def test_silent_link(hil_config: HilConfig, pki: Pki, mode: Mode,
                     start_broker: Callable[..., Broker], way: Way,
                     record_property: Callable[[str, object], None]) -> None:
    broker = start_broker(mode)
    console = way.console
    topic = f"hil/{console.board}/{mode}/{uuid.uuid4().hex[:8]}"
    keep_alive = hil_config.resilience.keep_alive
    bound = 1.5 * keep_alive
    with connected(hil_config, pki, mode, broker, way,
                   reconnect_settings(hil_config.resilience, keep_alive)):
        broker.wait_for_log(new_client(hil_config), timeout=hil_config.timeouts.message)
        mark, broker_mark = len(console.lines), broker.mark()  # after its first connection
        broker.freeze()
        try:
            m, took = within(console, broker, r"MQTT0 keep-alive timeout: nothing from the broker "
                             r"for (?P<ms>\d+) ms", bound,
                             f"detecting the silent broker (keep_alive {keep_alive} s)")
            record_property("detect_ms", round(took * 1000, 1))
            record_property("silent_ms", int(m["ms"]))  # the board's: since its last byte in
        finally:
            broker.thaw()
        back = time.monotonic()
        reconnected(console, hil_config, broker, back, mark, record_property, broker_mark)
        # the broker's side of the half-open link: the old connection goes when it reads the
        # board's close (`closed its connection`, or `disconnected: Protocol error` when the
        # close comes right behind a PINGREQ it had not read yet), or when the board's new one
        # takes its client id
        old = [ln for ln in broker.log_since(broker_mark) if hil_config.device.id in ln and (
            "already connected" in ln or "closed its connection" in ln
            or "disconnecting" in ln or "Socket error" in ln or "disconnected: " in ln)]
        assert old, f"the broker never dropped the half-open connection{broker_tail(broker)}"
        record_property("broker_old_connection", old[0])
        with observer_for(hil_config, pki, mode, broker) as obs:
            obs.subscribe(topic)
            round_trip(way, obs, topic)


def test_qos1_outage(hil_config: HilConfig, pki: Pki, mode: Mode,
                     start_broker: Callable[..., Broker], way: Way, tmp_path: Path,
                     record_property: Callable[[str, object], None]) -> None:
    broker = start_broker(mode, persistence_dir=tmp_path)
    console = way.console
    topic = f"hil/{console.board}/{mode}/{uuid.uuid4().hex[:8]}"
    observer_id = f"hil-observer-{uuid.uuid4().hex[:8]}"
    # a persistent session: the broker keeps the observer's subscription and queues its
    # messages while it is away (and, with persistence, across the restart)
    with observer_for(hil_config, pki, mode, broker, client_id=observer_id,
                      clean_session=False) as obs:
        obs.subscribe(topic)
    queue = hil_config.resilience.max_queue_length
    sent = [f"queued-{i}-{uuid.uuid4().hex[:6]}" for i in range(queue)]
    with connected(hil_config, pki, mode, broker, way, reconnect_settings(hil_config.resilience)):

        def offline_publishes() -> None:
            console.expect_log(LOST, timeout=hil_config.timeouts.connect)
            for k, message in enumerate(sent, 1):
                way.publish_offline(topic, message, k, queue)
            refusal = way.refused_offline(topic, queue)
            assert f"offline queue full ({queue} of {queue}): not queued" in refusal, refusal
            # the broker stays away until an attempt has failed: the back-off is seen doubling
            # (the line may have come while the publishes were answered: looked for from mark)
            boot_connect.wait_lines(console, mark, lambda texts: any(
                t.startswith("MQTT0 reconnect attempt 2 in ") for t in texts),
                reconnect_bound(hil_config), "second reconnect attempt")
            # a graceful stop wrote the sessions the broker brings back
            assert (tmp_path / "mosquitto.db").exists(), \
                f"the broker kept no mosquitto.db in {tmp_path}{broker_tail(broker)}"

        mark = len(console.lines)
        record_property("broker_down_ms", round(broker.restart(offline_publishes) * 1000, 1))
        back = time.monotonic()
        reconnected(console, hil_config, broker, back, mark, record_property)
        console.expect_log(rf"MQTT0 sending {queue} queued message\(s\)",
                           timeout=hil_config.timeouts.message)
        for _ in sent:
            console.expect_log(r"MQTT0 PUBACK id \d+ \(queued\)",
                               timeout=hil_config.timeouts.message)
    with observer_for(hil_config, pki, mode, broker, client_id=observer_id,
                      clean_session=False) as obs:
        for message in sent:
            obs.wait_for(topic, message.encode(), timeout=hil_config.timeouts.message)
        time.sleep(0.1)  # a duplicate right behind its original is counted too
        got = [m.payload.decode() for m in obs.messages() if m.topic == topic]
    assert "one-too-many" not in got, got
    assert [m for m in got if m not in sent] == [], got
    record_property("duplicates", len(got) - len(set(got)))  # QoS 1: at least once


@pytest.mark.modes("ca", "mutual")
def test_cert_renewed(hil_config: HilConfig, pki: Pki, mode: Mode,
                      start_broker: Callable[..., Broker], way: Way, tmp_path: Path,
                      record_property: Callable[[str, object], None]) -> None:
    broker = start_broker(mode)
    console = way.console
    topic = f"hil/{console.board}/{mode}/{uuid.uuid4().hex[:8]}"
    cert, key, serial = pki.renewed("broker", tmp_path)
    with connected(hil_config, pki, mode, broker, way, reconnect_settings(hil_config.resilience)):
        mark = len(console.lines)
        broker.restart(certfile=cert, keyfile=key)  # nothing sent to the board meanwhile
        back = time.monotonic()
        reconnected(console, hil_config, broker, back, mark, record_property)
        served = tls_handshake(hil_config.broker.host, broker.port,
                               credentials(hil_config, pki, mode), hil_config.timeouts.connect)
        assert served.peer_serial == serial, \
            f"the broker serves serial {served.peer_serial}, the renewed certificate is {serial}"
        record_property("broker_serial", f"{serial:x}")
        with observer_for(hil_config, pki, mode, broker) as obs:
            obs.subscribe(topic)
            round_trip(way, obs, topic)
