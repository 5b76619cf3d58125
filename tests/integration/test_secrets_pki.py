"""Secrets stay out of what gets printed, with the runner's own hil.toml and PKI: the repr of
everything in rig/ that carries one (what pytest shows for locals with -l and in assertion
reports), and the leak check on a line of a real private key."""

from __future__ import annotations

import pytest

from rig.broker.mosquitto import broker_settings
from rig.config import HilConfig
from rig.device.provision import mqtt_settings
from rig.host.peers import PubResult
from rig.host.tls import credentials
from rig.pki import Pki
from tests.support import assert_no_secret


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


def test_leak_check_catches_one_line_of_a_private_key(pki: Pki) -> None:
    pem = pki.key("device").read_bytes()
    line = pem.decode().splitlines()[1]
    with pytest.raises(AssertionError) as info:
        assert_no_secret(pem, "mqtt.ssl_key", {"log": ["ok", f"dump: {line}"]})
    assert_no_secret(line, "line 2 of the device's private key",
                     {"assert_no_secret's own message": str(info.value)})
    assert str(info.value).endswith("log line 2: 'dump: <secret>'")

