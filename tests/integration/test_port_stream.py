"""The console's stream on a real pytest-embedded serial Dut over a pty (rig/boards/
serial_reader.py): what pytest-embedded's own reader took before the rig's reader replaced it
is not lost, and a port that fails ends the console's wait at once."""

from __future__ import annotations

import os
import re
import time

import pexpect
import pytest

from rig.boards.serial_reader import close_kept, console_port, keep_for_session, use_blocking_reader


def test_bytes_taken_before_the_swap_reach_the_stream() -> None:
    from pytest_embedded.dut_factory import DutFactory

    master, slave = os.openpty()  # the master stands for a board's UART
    dut = DutFactory.create(embedded_services="serial", port=os.ttyname(slave))
    kept = keep_for_session(dut)
    try:
        os.write(master, b"I (12) hil: hil-agent 1.0.0 ready\r\n")
        deadline = time.monotonic() + 5  # pytest-embedded's reader (50 ms polls) takes them
        while dut.serial.proc.in_waiting and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # and its 50 ms poll has handed them on (nothing to wait on but time)
        assert use_blocking_reader(dut)
        stream = console_port(dut)
        assert stream.expect(re.compile(rb"hil-agent (\S+) ready\r\n"), timeout=2).group(1) \
            == b"1.0.0"
        os.write(master, b"OK\r\n")  # and the rig's own reader takes what follows
        assert stream.expect(re.compile(rb"OK\r\n"), timeout=2)
        assert use_blocking_reader(dut) and console_port(dut) is stream  # once per Dut
    finally:
        close_kept(kept)
        os.close(master)
        os.close(slave)


def test_a_port_that_fails_ends_the_wait_with_why() -> None:
    from pytest_embedded.dut_factory import DutFactory

    master, slave = os.openpty()
    dut = DutFactory.create(embedded_services="serial", port=os.ttyname(slave))
    kept = keep_for_session(dut)
    try:
        assert use_blocking_reader(dut)
        stream = console_port(dut)
        os.close(dut.serial.proc.fd)  # the port goes away under the reader (a USB unplug)
        t0 = time.monotonic()
        with pytest.raises(pexpect.EOF, match="serial port failed"):
            stream.expect(re.compile(rb"never"), timeout=10)
        assert time.monotonic() - t0 < 5
        dut.serial.proc.fd = None  # closed above: not again (the number may be reused)
    finally:
        close_kept(kept)
        os.close(master)
        os.close(slave)
