"""Secrets stay out of what gets printed: the repr of everything in rig/ that carries one (what
pytest shows for locals with -l and in assertion reports), and the tests' own leak check."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rig.broker import broker_settings
from rig.config import HilConfig
from rig.peers import PubResult
from rig.pki import Pki
from rig.provision import Setting, mqtt_settings
from rig.tls import credentials
from tests.support import ROOT, assert_no_secret

KEY = "0123456789abcdef0123456789abcdef"


def test_setting_repr_shows_key_and_length_only() -> None:
    s = Setting("mqtt.ssl_psk_key", KEY.encode())
    assert_no_secret(KEY, "mqtt.ssl_psk_key",  # first: the asserts below show these when failing
                     {"repr(s)": repr(s), "repr([s])": repr([s]), "f'{s}'": f"{s}"})
    assert repr(s) == "Setting(key='mqtt.ssl_psk_key', value=<32 bytes>)"
    assert str(s) == repr(s)
    # every key alike, whatever it holds
    assert repr(Setting("mqtt.server", b"host:1")) == "Setting(key='mqtt.server', value=<6 bytes>)"
    # still a value: equal, hashable, usable as before
    assert s == Setting("mqtt.ssl_psk_key", KEY.encode()) != Setting("mqtt.ssl_psk_key", b"x")
    assert len({s, Setting("mqtt.ssl_psk_key", KEY.encode())}) == 1


def test_nothing_in_rig_shows_a_secret_in_its_repr(hil_config: HilConfig, pki: Pki) -> None:
    key = pki.psk_hex()
    private_key = pki.key("device").read_text()
    body = [ln for ln in private_key.splitlines() if not ln.startswith("-----")]
    shown = repr([
        mqtt_settings(hil_config, pki, "psk", 8883),
        mqtt_settings(hil_config, pki, "mutual", 8883),  # the device's private key
        credentials(hil_config, pki, "psk"),
        broker_settings(hil_config, pki, "psk"),
        PubResult(("mosquitto_pub",), 1, "", "Error: <redacted>"),
    ])
    assert_no_secret(key, "the PSK", {"the reprs": shown})
    for number, line in enumerate(body, 2):  # each line of its body, however short
        assert_no_secret(line, f"line {number} of the device's private key", {"the reprs": shown})
    assert "Setting(key='mqtt.ssl_psk_key', value=<32 bytes>)" in shown
    assert "ClientCredentials(mode='psk'" in shown and "psk_identity='hil-device-01'" in shown


def test_pytest_report_with_locals_shows_no_secret(tmp_path: Path) -> None:
    """A failing test run with `pytest -l` (locals in the report) and failed `==` of settings
    and credentials (pytest drills into dataclasses with a generated __eq__): no key."""
    test = tmp_path / "test_leaky.py"
    # the keys are computed, so the source lines pytest quotes do not hold them
    test.write_text(textwrap.dedent("""
        from rig.provision import Setting
        from rig.tls import ClientCredentials

        KEY = "0123456789abcdef" * 2

        def test_settings():
            mine = Setting("mqtt.ssl_psk_key", KEY.encode())
            theirs = Setting("mqtt.ssl_psk_key", KEY[::-1].encode())
            assert mine == theirs

        def test_credentials():
            mine = ClientCredentials("psk", psk_identity="me", psk_hex=KEY)
            theirs = ClientCredentials("psk", psk_identity="me", psk_hex=KEY[::-1])
            assert [mine] == [theirs]
    """))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the checkout's conftest/config
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-l", "-vv", "-p", "no:cacheprovider", str(test)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    out = proc.stdout + proc.stderr
    lines = out.splitlines()
    assert_no_secret(KEY, "KEY", {"the pytest run's output": lines})  # before `out` is shown
    assert_no_secret(KEY[::-1], "KEY reversed", {"the pytest run's output": lines})
    assert proc.returncode == 1 and "2 failed" in out, out
    assert "mine       = Setting(key='mqtt.ssl_psk_key', value=<32 bytes>)" in out  # -l at work


def test_leak_check_names_the_place_and_never_the_secret() -> None:
    transcript = ["> config set mqtt.server h:1", "OK", f"E (5) hil: bad key {KEY.upper()}",
                  "OK"]
    with pytest.raises(AssertionError) as info:
        assert_no_secret(KEY.encode(), "mqtt.ssl_psk_key",
                         {"the error": f"ERR mqtt.ssl_psk_key: {KEY} is wrong",
                          "the console transcript": transcript})
    msg = str(info.value)
    assert_no_secret(KEY, "mqtt.ssl_psk_key", {"assert_no_secret's own message": msg})
    assert msg == ("mqtt.ssl_psk_key leaked (value not shown) in:\n"
                   "  the error: 'ERR mqtt.ssl_psk_key: <secret> is wrong'\n"
                   "  the console transcript line 3: 'E (5) hil: bad key <secret>'")
    assert_no_secret(KEY, "mqtt.ssl_psk_key", {"the error": "fine", "lines": ["fine"]})


def test_leak_check_catches_one_line_of_a_private_key(pki: Pki) -> None:
    pem = pki.key("device").read_bytes()
    line = pem.decode().splitlines()[1]
    with pytest.raises(AssertionError) as info:
        assert_no_secret(pem, "mqtt.ssl_key", {"log": ["ok", f"dump: {line}"]})
    assert_no_secret(line, "line 2 of the device's private key",
                     {"assert_no_secret's own message": str(info.value)})
    assert str(info.value).endswith("log line 2: 'dump: <secret>'")
