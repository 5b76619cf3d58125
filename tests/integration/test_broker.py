"""The broker as a process: ready means reachable, errors quote Mosquitto, nothing leaks."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from rig.broker.mosquitto import (
    Broker,
    BrokerConfigRejected,
    BrokerKeyUnreadable,
    BrokerNotInstalled,
    BrokerPortBusy,
    SessionBrokers,
    broker_settings,
    child_brokers,
    free_port,
    start_for_mode,
)
from rig.config import HilConfig
from rig.pki import Pki
from tests.support import assert_no_secret

# a public key's bytes, to compare two (cryptography's Encoding.DER, SubjectPublicKeyInfo)
PUBLIC = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_rendered_configs_follow_the_mode(hil_config: HilConfig, pki: Pki) -> None:
    ca = broker_settings(hil_config, pki, "ca").render(8883, None)
    assert "set_tcp_nodelay true" in ca and f"certfile {pki.cert('broker')}" in ca
    assert "require_certificate" not in ca and "psk_file" not in ca
    mutual = broker_settings(hil_config, pki, "mutual").render(8883, None)
    assert "require_certificate true" in mutual and "use_identity_as_username true" in mutual
    psk_settings = broker_settings(hil_config, pki, "psk")
    psk = psk_settings.render(8883, Path("/x/psk"))
    assert_no_secret(pki.psk_hex(), "the PSK", {"the psk mode's mosquitto.conf": psk,
                                                "repr(BrokerSettings)": repr(psk_settings)})
    assert "psk_file /x/psk" in psk and "psk_hint" in psk and "certfile" not in psk
    assert "ciphers PSK-AES128-CCM8:" in psk


def test_ready_means_accepting_and_stop_reaps(hil_config: HilConfig, pki: Pki,
                                              tmp_path: Path) -> None:
    with Broker(broker_settings(hil_config, pki, "ca"), tmp_path) as b:
        pid = b.pid
        assert pid is not None and b.running
        socket.create_connection((hil_config.broker.bind, b.port), timeout=1).close()
        assert any("running" in line for line in b.log_lines())
        assert 0 < b.start_to_ready_s < hil_config.timeouts.broker_start
    assert not alive(pid)
    log = b.log_path.read_text()
    assert "running" in log and "terminating" in log  # the log outlives the broker
    # a graceful stop, woken by a connection of the rig's: said in the log, and not a client
    assert log.index("### rig: stopping") < log.index("terminating")
    assert b.client_connections() == [], b.log_lines()  # TCP only: no TLS, no client


def test_exception_inside_context_still_stops_it(hil_config: HilConfig, pki: Pki,
                                                 tmp_path: Path) -> None:
    b = Broker(broker_settings(hil_config, pki, "psk"), tmp_path)
    pids: list[int | None] = []
    with pytest.raises(RuntimeError), b:
        pids.append(b.pid)
        raise RuntimeError("test body failed")
    assert pids[0] is not None and not alive(pids[0])
    assert b.pid is None and pids[0] not in child_brokers()


def test_unresponsive_broker_is_killed(hil_config: HilConfig, pki: Pki, tmp_path: Path) -> None:
    b = Broker(broker_settings(hil_config, pki, "ca"), tmp_path, stop_timeout=0.3).start()
    pid = b.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # SIGTERM now stays pending: only SIGKILL ends it
    b.stop()
    assert not alive(pid)


def test_busy_port_is_named(hil_config: HilConfig, pki: Pki, tmp_path: Path) -> None:
    before = set(child_brokers())
    with socket.socket() as squatter:
        squatter.bind((hil_config.broker.bind, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = broker_settings(hil_config, pki, "ca", port=port)
        with pytest.raises(BrokerPortBusy) as info:
            Broker(settings, tmp_path).start()
    msg = str(info.value)
    assert f":{port} is busy" in msg and "Address already in use" in msg
    assert set(child_brokers()) <= before  # the failed broker was reaped


def test_missing_mosquitto_says_how_to_install(hil_config: HilConfig, pki: Pki,
                                               tmp_path: Path) -> None:
    b = Broker(broker_settings(hil_config, pki, "ca"), tmp_path, mosquitto="mosquitto-nope")
    with pytest.raises(BrokerNotInstalled, match="apt-get install mosquitto"):
        b.start()


@pytest.mark.parametrize(("binary", "problem"), [
    ("/tmp/hil-nope/mosquitto", "does not exist"),
    ("/tmp", "is a directory, not an executable file"),
])
def test_missing_mosquitto_path_is_named(hil_config: HilConfig, pki: Pki, tmp_path: Path,
                                         binary: str, problem: str) -> None:
    """A path in [broker] mosquitto that is not a program: the path and what is wrong with it,
    not 'not on PATH' (a path is never looked up there)."""
    b = Broker(broker_settings(hil_config, pki, "ca"), tmp_path, mosquitto=binary)
    with pytest.raises(BrokerNotInstalled) as info:
        b.start()
    msg = str(info.value)
    assert f"{binary} ([broker] mosquitto in hil.toml) {problem}" in msg
    assert "PATH" not in msg and "apt-get install mosquitto" in msg


def test_mosquitto_path_that_is_not_executable_is_named(hil_config: HilConfig, pki: Pki,
                                                        tmp_path: Path) -> None:
    binary = tmp_path / "mosquitto"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o644)
    b = Broker(broker_settings(hil_config, pki, "ca"), tmp_path, mosquitto=str(binary))
    with pytest.raises(BrokerNotInstalled, match="is not executable"):
        b.start()


def test_a_binary_that_exits_at_once_is_named(hil_config: HilConfig, pki: Pki,
                                              tmp_path: Path) -> None:
    """[broker] mosquitto = "/bin/false": the error names the binary that exited."""
    b = Broker(broker_settings(hil_config, pki, "ca"), tmp_path, mosquitto="/bin/false")
    with pytest.raises(BrokerConfigRejected) as info:
        b.start()
    msg = str(info.value)
    assert "broker-ca: /bin/false exited with code 1 at start-up" in msg
    assert "It printed nothing: is /bin/false Mosquitto?" in msg


def test_unreadable_key_is_reported(hil_config: HilConfig, pki: Pki, tmp_path: Path) -> None:
    key = tmp_path / "broker.key"
    shutil.copy(pki.key("broker"), key)
    key.chmod(0o600)
    settings = dataclasses.replace(broker_settings(hil_config, pki, "ca"), keyfile=key)
    if os.geteuid() == 0:
        # root reads anything: reproduce the real trap instead, a broker that drops to the
        # `mosquitto` user in front of a root-owned 0600 key (see DESIGN.md)
        settings = dataclasses.replace(settings, user="mosquitto")
    else:
        key.chmod(0)
    with pytest.raises(BrokerKeyUnreadable) as info:
        Broker(settings, tmp_path).start()
    msg = str(info.value)
    assert "cannot read its key" in msg and "Permission denied" in msg and str(key) in msg


def test_rejected_config_quotes_the_broker(hil_config: HilConfig, pki: Pki,
                                          tmp_path: Path) -> None:
    settings = broker_settings(hil_config, pki, "psk", ciphers="NOT-A-CIPHER")
    with pytest.raises(BrokerConfigRejected, match='Check cipher list "NOT-A-CIPHER"'):
        Broker(settings, tmp_path).start()


def test_psk_file_is_private_and_removed(hil_config: HilConfig, pki: Pki, tmp_path: Path) -> None:
    with Broker(broker_settings(hil_config, pki, "psk"), tmp_path) as b:
        conf = b.config_path.read_text()
        psk_file = Path(conf.split("psk_file ", 1)[1].split()[0])
        assert psk_file.stat().st_mode & 0o777 == 0o600
        assert_no_secret(pki.psk_hex(), "the PSK", {"mosquitto.conf": conf})
    assert not psk_file.exists()
    assert_no_secret(pki.psk_hex(), "the PSK", {"the broker log": b.log_path.read_text()})


def test_fixed_port_is_used(hil_config: HilConfig, pki: Pki, tmp_path: Path) -> None:
    port = free_port(hil_config.broker.bind)
    with Broker(broker_settings(hil_config, pki, "ca", port=port), tmp_path) as b:
        assert b.port == port


def test_a_preferred_port_is_kept_and_a_busy_one_replaced(hil_config: HilConfig, pki: Pki,
                                                          tmp_path: Path) -> None:
    """`[broker] port = 0`: a test process's picked port is used at every start while it is
    free (its capture goes on); taken meanwhile, any free port is."""
    port = free_port(hil_config.broker.bind)
    settings = broker_settings(hil_config, pki, "ca", preferred_port=port)
    for _ in range(2):  # stopped and started again on the same port
        with Broker(settings, tmp_path) as b:
            assert b.port == port
    with socket.socket() as squatter:
        squatter.bind((hil_config.broker.bind, port))
        squatter.listen()
        with Broker(settings, tmp_path) as b:
            assert b.port not in (port, 0) and b.running


def test_a_dead_session_broker_is_named_and_replaced(hil_config: HilConfig, pki: Pki,
                                                     tmp_path: Path) -> None:
    brokers = SessionBrokers(lambda mode: start_for_mode(hil_config, pki, mode, tmp_path,
                                                         port=0))
    try:
        first, died = brokers.get("psk")
        assert died == "" and first.running
        assert brokers.get("psk") == (first, "")  # alive: kept
        private = first._private
        assert private is not None and (private / "psk").stat().st_mode & 0o777 == 0o600
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not first.death() and time.monotonic() < deadline:
            time.sleep(0.01)
        second, died = brokers.get("psk")
        assert second is not first and second.running
        assert died.startswith("broker psk: mosquitto exited (signal 9 (SIGKILL)) while in "
                               f"use; log: {first.log_path}"), died
        assert not private.exists()  # the dead one's PSK directory went with it
        third, died = brokers.get("ca")  # another mode: the psk one is stopped, not "dead"
        assert died == "" and not second.running and third.mode == "ca"
    finally:
        brokers.close()
    assert not third.running


def _kill(broker: Broker) -> None:
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while not broker.death() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert broker.death(), f"{broker.name} did not die"


def test_a_broker_dead_after_its_last_cell_is_its_modes_fault(hil_config: HilConfig, pki: Pki,
                                                              tmp_path: Path) -> None:
    """Killed between its mode's last cell and the next mode's first: the next mode's broker
    comes with no death (no cell of that mode is to blame), and the dead one is the session's
    fault, naming its mode. A death a failed cell already named is not reported again."""
    before = set(child_brokers())  # the session's own broker may be up (rig/cases)
    brokers = SessionBrokers(lambda mode: start_for_mode(hil_config, pki, mode, tmp_path,
                                                         port=0))
    try:
        ca, _ = brokers.get("ca")
        _kill(ca)
        mutual, died = brokers.get("mutual")
        assert died == "" and mutual.running and mutual.mode == "mutual"
        assert brokers.faults == [
            "broker ca: mosquitto exited (signal 9 (SIGKILL)) after its mode's last cell; "
            f"log: {ca.log_path} (found when mode mutual started)"], brokers.faults
        _kill(mutual)
        brokers.named_by_a_cell(mutual)  # its cell failed naming it: not the run's fault too
        psk, died = brokers.get("psk")
        assert died == "" and len(brokers.faults) == 1, brokers.faults
        _kill(psk)
    finally:
        faults = brokers.close()
    assert faults == [brokers.faults[0],
                      "broker psk: mosquitto exited (signal 9 (SIGKILL)) after its mode's last "
                      f"cell; log: {psk.log_path} (found at the end of the session)"], faults
    assert set(child_brokers()) <= before


def test_a_restart_keeps_the_port_and_a_persistent_session(hil_config: HilConfig, pki: Pki,
                                                            tmp_path: Path) -> None:
    """restart(): the same port, the settings changed as asked, `while_down` called with the
    broker gone; with a persistence_dir the broker keeps an offline client's subscription and
    its QoS 1 messages across the restart (the resilience cells' outage case)."""
    from rig.host.observer import Observer
    from rig.host.tls import credentials

    creds = credentials(hil_config, pki, "ca")
    store = tmp_path / "db"
    store.mkdir()
    b = start_for_mode(hil_config, pki, "ca", tmp_path, persistence_dir=store)
    try:
        assert f"persistence_location {store}/" in b.config_path.read_text()
        port = b.port
        with Observer(hil_config.broker.host, port, creds, client_id="keeps-its-session",
                      clean_session=False) as obs:
            obs.subscribe("hil/kept")
        seen: list[bool] = []
        before = b.mark()
        down = b.restart(lambda: seen.append(b.running))
        assert seen == [False] and b.running and b.port == port and 0 < down < 5
        # the log keeps both processes' lines: a mark from before the restart still shows the
        # first one's end and then the second one's start (a failing cell's report slice)
        lines = b.log_since(0)
        assert b.started_mark > before > 0 and lines[:before] == b.log_lines()[:before]
        ends = [i for i, ln in enumerate(lines) if "terminating" in ln]
        runs = [i for i, ln in enumerate(lines) if "running" in ln]
        assert len(runs) == 2 and ends and runs[0] < ends[0] < runs[1], lines
        assert runs[1] >= b.started_mark
        with Observer(hil_config.broker.host, port, creds) as other:
            other.publish("hil/kept", b"while away")
        with Observer(hil_config.broker.host, port, creds, client_id="keeps-its-session",
                      clean_session=False) as obs:
            assert obs.wait_for("hil/kept", b"while away", timeout=5).qos == 1
    finally:
        b.stop()


def test_a_frozen_broker_answers_nothing_until_thawed(hil_config: HilConfig, pki: Pki,
                                                      tmp_path: Path) -> None:
    """freeze(): the kernel still completes a TCP connect, the broker sends nothing (a TLS
    handshake gets no answer); thaw() and it answers; stop() of a frozen broker is prompt."""
    from rig.host.observer import tls_handshake
    from rig.host.tls import credentials

    creds = credentials(hil_config, pki, "ca")
    b = start_for_mode(hil_config, pki, "ca", tmp_path)
    try:
        b.freeze()
        with pytest.raises(TimeoutError):
            tls_handshake(hil_config.broker.host, b.port, creds, timeout=0.5)
        b.thaw()
        assert tls_handshake(hil_config.broker.host, b.port, creds, timeout=5).cipher
        b.freeze()
        t0 = time.monotonic()
    finally:
        b.stop()
    assert time.monotonic() - t0 < 2 and not b.running
    assert any("freezing" in ln for ln in b.log_path.read_text().splitlines())


def test_a_renewed_certificate_is_served_after_a_restart(hil_config: HilConfig, pki: Pki,
                                                         tmp_path: Path) -> None:
    from cryptography import x509

    from rig.host.observer import tls_handshake
    from rig.host.tls import credentials

    creds = credentials(hil_config, pki, "ca")
    old = x509.load_pem_x509_certificate(pki.cert("broker").read_bytes())
    cert, key, serial = pki.renewed("broker", tmp_path)
    new = x509.load_pem_x509_certificate(cert.read_bytes())
    assert serial == new.serial_number != old.serial_number
    assert (new.subject, new.issuer) == (old.subject, old.issuer)
    assert new.public_key().public_bytes(*PUBLIC) != old.public_key().public_bytes(*PUBLIC)
    assert key.stat().st_mode & 0o777 == 0o600
    assert x509.load_pem_x509_certificate(pki.cert("broker").read_bytes()) == old  # untouched
    b = start_for_mode(hil_config, pki, "ca", tmp_path)
    try:
        assert tls_handshake(hil_config.broker.host, b.port, creds).peer_serial == \
            old.serial_number
        b.restart(certfile=cert, keyfile=key)
        assert tls_handshake(hil_config.broker.host, b.port, creds).peer_serial == serial
    finally:
        b.stop()
