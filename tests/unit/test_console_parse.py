"""The console reply parser on its own (what a real board can print that the host agent does
not: other ESP-IDF components' log lines in the middle of a reply)."""

from __future__ import annotations

from rig.device.console import ConsoleError, Reply, parse_reply


def test_data_log_and_foreign_log_lines_are_told_apart() -> None:
    lines = ["I (100) hil: MQTT0 connecting to 10.0.0.2:8883",
             "W (101) wifi: Haven't to connect to a suitable AP now!",
             "mqtt=connected",
             "E (102) esp-tls-mbedtls: something",
             "free_heap=1234"]
    reply = parse_reply("b1", "status", lines, "OK\r\n")
    assert isinstance(reply, Reply)
    assert reply.data == ["mqtt=connected", "free_heap=1234"]
    assert reply.logs == ["MQTT0 connecting to 10.0.0.2:8883"]


def test_err_carries_the_reason_and_names_board_and_command() -> None:
    err = parse_reply("b1", "config set mqtt.ssl_psk_key <secret>", [], "ERR bad key\n")
    assert isinstance(err, ConsoleError)
    assert err.reason == "bad key"
    assert str(err) == "board b1: `config set mqtt.ssl_psk_key <secret>` failed: bad key"
