"""The console reply parser on its own (what a real board can print that the host agent does
not: other ESP-IDF components' log lines in the middle of a reply)."""

from __future__ import annotations

from rig.device.console import FINAL_RE, ConsoleError, Reply, parse_reply


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


def test_an_ok_with_a_note_is_an_ok_and_the_note_is_kept() -> None:
    """`OK queued 1 of 3` (a QoS 1 publish held while the agent reconnects): a final line
    (FINAL_RE, tagged or not), an OK, and its note for the caller."""
    reply = parse_reply("b1", "mqtt publish t m 1", [], "OK queued 1 of 3\n")
    assert isinstance(reply, Reply) and reply.note == "queued 1 of 3"
    plain = parse_reply("b1", "status", [], "OK\n")
    assert isinstance(plain, Reply) and plain.note == ""
    for line, tag, status in ((b"OK queued 2 of 3\r\n", None, b"OK queued 2 of 3"),
                              (b"@ab.7 OK\n", b"ab.7", b"OK"),
                              (b"@ab.8 ERR offline queue full (3 of 3): not queued\n", b"ab.8",
                               b"ERR offline queue full (3 of 3): not queued")):
        m = FINAL_RE.search(line)
        assert m is not None and (m.group(1), m.group(2)) == (tag, status), line
    assert FINAL_RE.search(b"OKAY\n") is None and FINAL_RE.search(b"status OK\n") is None
