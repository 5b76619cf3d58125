"""The broker's side of a capture's TLS secrets (rig/broker/keylog.py, tls_keylog.c): the real
Mosquitto with the key-log shim loaded, real TLS sessions from the host's MQTT client, the real
tcpdump/tshark/editcap. With only the broker's secrets embedded, a capture decrypts in every
mode; without them it does not; the secrets live only in the broker's private directory."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from rig.broker import keylog
from rig.broker.mosquitto import start_for_mode
from rig.config import HilConfig, Mode
from rig.host.capture import NSS_LINE, CellCapture, permitted
from rig.host.observer import Observer
from rig.host.tls import credentials
from rig.pki import Pki

pytestmark = [
    pytest.mark.skipif(any(shutil.which(t) is None for t in ("tcpdump", "tshark", "editcap")),
                       reason="tcpdump and tshark are needed (./hil.sh setup installs them)"),
    pytest.mark.skipif(not permitted("lo")[0], reason="this user may not capture on lo"),
]


def mqtt_rows(path: Path, port: int) -> list[str]:
    proc = subprocess.run(["tshark", "-n", "-r", str(path), "-d", f"tls.port=={port},mqtt",
                           "-Y", "mqtt", "-T", "fields", "-e", "mqtt.msgtype",
                           "-e", "mqtt.topic", "-e", "mqtt.msg"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.fixture(autouse=True)
def _no_host_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's client writes no secrets of its own: only the broker's decrypt."""
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)


@pytest.mark.parametrize("tls_mode", ["ca", "mutual", "psk"])
def test_the_brokers_secrets_alone_decrypt_a_cell(hil_config: HilConfig, pki: Pki,
                                                  tmp_path: Path, tls_mode: Mode) -> None:
    mode = tls_mode
    b = start_for_mode(hil_config, pki, mode, tmp_path, tls_keys=True)
    try:
        assert b.tls_keys_unavailable == ""
        private = b._private
        assert private is not None
        b.take_tls_keys()  # the readiness probe's, if any: not this cell's
        outs = {}
        for keyed in (True, False):
            cap = CellCapture(f"cell-{keyed}", "lo", tmp_path / f"{mode}-{keyed}.pcapng")
            cap.watch(b.port, "mqtt")
            with Observer(hil_config.broker.host, b.port, credentials(hil_config, pki, mode)) \
                    as obs:
                obs.publish(f"hil/keys/{mode}", b"decrypted")
            file = private / "tls-keys.log"
            assert stat.S_IMODE(file.stat().st_mode) == 0o600
            lines = b.take_tls_keys()  # secrets: the assertions show counts, never the lines
            assert len(lines) > 0 and sum(not NSS_LINE.match(ln) for ln in lines) == 0
            assert not file.exists()
            assert len(b.take_tls_keys()) == 0  # taken is gone
            if keyed:
                cap.add_keys(lines)
            outs[keyed] = cap.finish(keep=True, comment=cap.decode_hint())
        keyed_file, bare_file = outs[True], outs[False]
        assert keyed_file is not None and bare_file is not None
        rows = mqtt_rows(keyed_file, b.port)
        assert any(r.startswith("1\t") for r in rows), rows  # CONNECT
        assert any(f"hil/keys/{mode}" in r for r in rows), rows  # the PUBLISH, decrypted
        assert mqtt_rows(bare_file, b.port) == []  # the control: no secrets, no MQTT
    finally:
        b.stop()
    assert not private.exists()  # the secrets' directory goes with the broker


def test_a_restarted_broker_keeps_the_stopped_processs_secrets_until_taken(
        hil_config: HilConfig, pki: Pki, tmp_path: Path) -> None:
    b = start_for_mode(hil_config, pki, "ca", tmp_path, tls_keys=True)
    creds = credentials(hil_config, pki, "ca")
    try:
        b.take_tls_keys()
        with Observer(hil_config.broker.host, b.port, creds) as obs:
            obs.publish("hil/keys/before", b"1")
        b.restart()
        with Observer(hil_config.broker.host, b.port, creds) as obs:
            obs.publish("hil/keys/after", b"2")
        randoms = {ln.split()[1] for ln in b.take_tls_keys()}
        assert len(randoms) >= 2  # a session of each process (the randoms are not shown)
    finally:
        b.stop()


def test_a_broker_without_tls_keys_loads_no_shim(hil_config: HilConfig, pki: Pki,
                                                 tmp_path: Path) -> None:
    b = start_for_mode(hil_config, pki, "psk", tmp_path)
    try:
        assert b.pid is not None
        environ = Path(f"/proc/{b.pid}/environ").read_bytes()
        assert keylog.ENV.encode() not in environ and b"tls_keylog" not in environ
        with Observer(hil_config.broker.host, b.port, credentials(hil_config, pki, "psk")) as obs:
            obs.publish("hil/keys/none", b"x")
        assert len(b.take_tls_keys()) == 0
    finally:
        b.stop()


def test_a_shim_that_cannot_be_built_is_named(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, no gcc
    with pytest.raises(keylog.KeylogUnavailable, match="no C compiler"):
        keylog.shim()


def test_a_broker_whose_shim_cannot_be_built_starts_and_says_why(
        monkeypatch: pytest.MonkeyPatch, hil_config: HilConfig, pki: Pki,
        tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")  # the cache directory cannot be made: an OSError, not a crash
    monkeypatch.setenv("HIL_CACHE_DIR", str(blocked))
    with pytest.raises(keylog.KeylogUnavailable, match="building the broker's key-log shim "
                                                       "failed"):
        keylog.shim()
    b = start_for_mode(hil_config, pki, "ca", tmp_path, tls_keys=True)
    try:
        assert b.running and "key-log shim" in b.tls_keys_unavailable
        assert len(b.take_tls_keys()) == 0
    finally:
        b.stop()
