"""Secrets stay out of what gets printed: a Setting's repr, and the tests' own leak check. (The
reprs of what the rig builds from hil.toml and its PKI: tests/integration/test_secrets_pki.py;
a real `pytest -l` report: tests/cli/test_secrets_pytest.py.)"""

from __future__ import annotations

import pytest

from rig.device.provision import Setting
from tests.support import assert_no_secret

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
