"""Each broker mode with real peers: the paho observer (preflight) and mosquitto_pub, plus the
refusals the rig must tell apart (client without certificate, wrong PSK, unknown CA, wrong
host), each asserted on both the client's error and the broker's logged reason."""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import stat
import threading
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from rig.broker.mosquitto import Broker
from rig.config import HilConfig, Mode
from rig.host.observer import Observer, ObserverError, preflight, tls_handshake
from rig.host.peers import (
    OPTIONS_FILE,
    MosquittoPubError,
    MosquittoPubTimeout,
    PubResult,
    Target,
    run_mosquitto_pub,
)
from rig.host.tls import ClientCredentials, credentials
from rig.pki import Pki
from tests.support import assert_no_secret


def mosquitto_pub(broker: Broker, host: str, creds: ClientCredentials, topic: str,
                  message: str) -> PubResult:
    """mosquitto_pub with the key (psk mode) in a private options file, never in argv."""
    return run_mosquitto_pub(Target(host, broker.port), creds, topic, message,
                             client_id=f"pub-{uuid.uuid4().hex[:6]}", timeout=30)


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


def _children_named(name: bytes) -> list[int]:
    """PIDs of this process's live children whose program is `name`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            exe = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except (OSError, IndexError):
            continue
        if ppid == os.getpid() and exe.rsplit(b"/", 1)[-1] == name:
            found.append(int(entry.name))
    return found


@pytest.mark.modes("psk")
def test_psk_key_is_in_no_command_line_and_no_error(hil_config: HilConfig, pki: Pki,
                                                    mode: Mode) -> None:
    """While mosquitto_pub runs, its command line (what `ps` shows every user) has no key: the
    key is in a 0600 options file in a 0700 directory named by XDG_CONFIG_HOME, removed
    afterwards. A run that times out fails with a message that has no key either. The peer
    here accepts the connection and says nothing, so mosquitto_pub waits mid-handshake."""
    creds = credentials(hil_config, pki, mode)
    key = pki.psk_hex()
    with socket.create_server((hil_config.broker.bind, 0)) as silent:
        outcome: list[BaseException | PubResult] = []

        def publish() -> None:
            try:
                outcome.append(run_mosquitto_pub(Target(hil_config.broker.bind,
                                                        silent.getsockname()[1]),
                                                 creds, "hil/x", "x", timeout=3))
            except BaseException as exc:  # handed to the test's thread
                outcome.append(exc)

        worker = threading.Thread(target=publish)
        worker.start()
        try:
            silent.settimeout(5)
            conn, _ = silent.accept()  # mosquitto_pub is connected and waits for our answer
            with conn:
                conn.settimeout(5)
                assert conn.recv(1) == b"\x16"  # a TLS record (ClientHello): psk options read
                (pid,) = _children_named(b"mosquitto_pub")
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                # the key in any case, argument by argument (the argv is shown, key hidden);
                # first, so that the next assert, which shows cmdline, cannot show the key
                assert_no_secret(key, "the PSK", {"mosquitto_pub's command line (argv)": [
                    arg.decode(errors="replace") for arg in cmdline.split(b"\0")]})
                assert b"--psk" not in cmdline
                environ = dict(e.split(b"=", 1) for e in
                               Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if e)
                assert_no_secret(key, "the PSK", {
                    f"mosquitto_pub's environment variable {name.decode(errors='replace')}":
                    value.decode(errors="replace") for name, value in environ.items()})
                home = Path(environ[b"XDG_CONFIG_HOME"].decode())
                options = home / OPTIONS_FILE
                assert stat.S_IMODE(home.lstat().st_mode) == 0o700
                assert stat.S_IMODE(options.lstat().st_mode) == 0o600
                # a bool: a failing `==` would show both sides, the key with them
                as_expected = options.read_text() == (f"--psk {key}\n"
                                                      f"--psk-identity {creds.psk_identity}\n")
                assert as_expected, (f"{options} does not read `--psk <the key>` then "
                                     "`--psk-identity <the identity>`, one a line")
                worker.join(10)
        finally:
            worker.join(10)
    (exc,) = outcome
    report = ("".join(traceback.format_exception(exc)) if isinstance(exc, BaseException)
              else "") + repr(exc)
    assert_no_secret(key, "the PSK", {"the outcome (traceback and repr)": report.splitlines()})
    assert isinstance(exc, MosquittoPubTimeout), exc  # shown: its traceback has no key
    assert "did not finish within 3 s" in report and "mosquitto_pub -h" in report
    assert not home.exists()  # the options file went with its directory


@pytest.mark.modes("psk")
def test_failing_mosquitto_pub_never_shows_the_key(hil_config: HilConfig, pki: Pki,
                                                   mode: Mode, broker: Broker) -> None:
    """Even when mosquitto_pub prints the key (here: a throwaway key, also put in the topic it
    refuses), the result and the error carry <redacted> instead, in repr and in str."""
    throwaway = secrets.token_hex(16)
    creds = dataclasses.replace(credentials(hil_config, pki, mode), psk_hex=throwaway)
    target = Target(hil_config.broker.host, broker.port)
    result = run_mosquitto_pub(target, creds, f"{throwaway.upper()}/#", "x")
    # first: the asserts below show the result (its repr holds stderr) when they fail
    assert_no_secret(throwaway, "the throwaway PSK", {"repr(PubResult)": repr(result)})
    assert result.returncode != 0
    assert "Invalid publish topic '<redacted>/#'" in result.stderr
    assert "'-t', '<redacted>/#'" in repr(result)
    with pytest.raises(MosquittoPubError) as info:
        run_mosquitto_pub(target, creds, f"{throwaway}/#", "x", check=True)
    report = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert_no_secret(throwaway, "the throwaway PSK",
                     {"the error (traceback and repr)": report.splitlines()})
    assert "exited with code 1: Error: Invalid publish topic '<redacted>/#'" in report
    # the real key, from the options file: accepted
    good = credentials(hil_config, pki, mode)
    assert run_mosquitto_pub(target, good, "hil/ok", "x", check=True).returncode == 0
    # and a wrong key's failure (TLS 1.3: the binder does not verify) carries no key either
    with pytest.raises(MosquittoPubError) as info:
        run_mosquitto_pub(target, creds, "hil/x", "x", check=True)
    assert_no_secret(throwaway, "the throwaway PSK", {"the error": str(info.value)})
    assert "exited with code" in str(info.value)
