"""redact(): what errors, transcripts and reports show of a console line. It must hide a secret
however the line is spelled, as long as the agent would take it as that command: the agent
splits tokens on runs of spaces and tabs, drops a trailing CR and ignores an `@tag` prefix."""

from __future__ import annotations

import base64
import zlib

import pytest

from rig.device.console import SECRET_KEYS, redact, set_commands

SECRET = "c0ffee00deadbeef0123456789abcdef"
PEM_KEY = ("-----BEGIN EC PRIVATE KEY-----MHcCAQEEIBsecretsecretsecret"
           "-----END EC PRIVATE KEY-----")


@pytest.mark.parametrize("line", [
    f"config set mqtt.ssl_psk_key {SECRET}",
    f"config  set mqtt.ssl_psk_key {SECRET}",
    f"config set   mqtt.ssl_psk_key {SECRET}",
    f"config\tset\tmqtt.ssl_psk_key\t{SECRET}",
    f"  \t config \t set mqtt.ssl_psk_key  {SECRET}\r",
    f"@ab12cd.7 config set mqtt.ssl_psk_key {SECRET}",
    f"@x\tconfig\t set mqtt.ssl_psk_key {SECRET} trailing words",
])
def test_secret_values_are_hidden_however_the_line_is_spaced(line: str) -> None:
    shown = redact(line)
    assert SECRET not in shown
    assert shown == "config set mqtt.ssl_psk_key <secret>"


@pytest.mark.parametrize("key", sorted(SECRET_KEYS))
def test_every_secret_key_is_hidden(key: str) -> None:
    assert redact(f"config set {key} {SECRET}") == f"config set {key} <secret>"


def test_an_unknown_key_hides_its_value_too() -> None:
    # a typo in a secret key's name must not print the secret
    shown = redact(f"config set mqtt.ssl_pskkey {SECRET}")
    assert SECRET not in shown and "<secret>" in shown


def test_plain_settings_stay_readable() -> None:
    line = "config set mqtt.server 127.0.0.1:8883"
    assert redact(line) == line
    assert redact("status") == "status"


def test_chunks_never_show_their_bytes_or_crc() -> None:
    raw = PEM_KEY.encode()
    for cmd in set_commands("mqtt.ssl_key", raw):
        assert "PRIVATE" not in cmd.shown and f"{zlib.crc32(raw):08x}" not in cmd.shown
    chunk = base64.b64encode(SECRET.encode()).decode()
    line = f"config  data\t3 {chunk} {zlib.crc32(SECRET.encode()):08x}"
    shown = redact(line)
    assert chunk not in shown and f"{zlib.crc32(SECRET.encode()):08x}" not in shown
    assert shown.startswith("config data 3 <")
    load = redact(f"config load mqtt.ssl_key {len(raw)} {zlib.crc32(raw):08x}")
    assert load == f"config load mqtt.ssl_key {len(raw)}"


def test_a_line_that_still_names_a_secret_key_or_holds_a_private_key_is_cut() -> None:
    # not a `config set` the agent would run, but it still must not show the value
    assert SECRET not in redact(f"config\x0bset mqtt.ssl_psk_key {SECRET}")
    assert "secretsecret" not in redact(f"config set mqtt.ssl_cert {PEM_KEY}")
    assert "secretsecret" not in redact(f"echo {PEM_KEY}")


@pytest.mark.parametrize("line", [
    f"tls keylog {SECRET * 2}",
    f"@ab12cd.9 tls\tkeylog  {SECRET * 2}",
    f"tls keylog {SECRET * 2} extra",
])
def test_the_keylog_sealing_key_is_hidden(line: str) -> None:
    shown = redact(line)
    assert SECRET not in shown and shown == "tls keylog <sealing key>"
    assert redact("tls keylog off") == "tls keylog off"
