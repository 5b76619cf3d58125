"""rig/boards/serial_reader.py PortStream: what the console waits on, as pexpect would give it
(match, `before`, what stays buffered), without the log listener's hops."""

from __future__ import annotations

import re
import threading
import time

import pexpect
import pytest

from rig.boards.serial_reader import PortStream


class FakeDut:
    """Stands for pytest-embedded's Dut on the write side only (what the stream passes on)."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.serial = "the Dut's own"

    def write(self, data: str) -> None:
        self.written.append(data)


def test_a_match_takes_it_and_what_came_before() -> None:
    s = PortStream(FakeDut())
    s.feed(b"boot noise\r\nOK 1\r\nOK 2\r\n")
    m = s.expect(re.compile(rb"OK (\d)\r\n"), timeout=0)
    assert m.group(1) == b"1" and s.before == b"boot noise\r\n"
    assert s.pexpect_proc.buffer == b"OK 2\r\n"
    with pytest.raises(pexpect.TIMEOUT):
        s.expect(re.compile(rb"OK 3"), timeout=0.01)
    s.write("status")
    assert s._dut.written == ["status"] and s.serial == "the Dut's own"  # the rest is the Dut's


def test_an_expect_wakes_when_its_bytes_come() -> None:
    s = PortStream(FakeDut())
    threading.Timer(0.05, s.feed, args=(b"ready\n",)).start()
    t0 = time.monotonic()
    assert s.expect(re.compile(rb"ready\n"), timeout=5).group(0) == b"ready\n"
    assert time.monotonic() - t0 < 1.0


def test_a_closed_port_ends_a_wait_with_its_reason() -> None:
    s = PortStream(FakeDut())
    s.feed(b"last line\n")
    threading.Timer(0.05, s.close, args=("the serial port failed: gone",)).start()
    assert s.expect(re.compile(rb"last line\n"), timeout=5)  # what came is still read
    with pytest.raises(pexpect.EOF, match="gone"):
        s.expect(re.compile(rb"never"), timeout=5)


def test_a_talkative_board_keeps_whole_recent_lines() -> None:
    s = PortStream(FakeDut())
    line = b"x" * 99 + b"\n"
    for _ in range(2 * PortStream.LIMIT // len(line)):
        s.feed(line)
    buf = s.pexpect_proc.buffer
    assert len(buf) <= PortStream.LIMIT and buf.startswith(b"x" * 99) and s.dropped > 0
    assert len(buf) % len(line) == 0  # cut between lines, never inside one
