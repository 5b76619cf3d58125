"""The RFC 2217 bridge (rig/boards/rfc2217.py), with real parts only: real ptys, the real virtual
board (hil-agent behind a pty), pyserial's own rfc2217 client, pytest-embedded's serial service
and the rig's Console. Everything stays on 127.0.0.1. (The reset circuit model and a missing
device: tests/unit/test_rfc2217_model.py.)"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import statistics
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from rig.boards.rfc2217 import HOST, BridgeError, Rfc2217Bridge
from rig.boards.serial_reader import BlockingRedirect, use_blocking_reader
from rig.boards.virtual import VirtualBoard
from rig.device.console import Console

# pyserial 3.5's rfc2217 client calls Thread.setDaemon/setName
pytestmark = pytest.mark.filterwarnings(
    "ignore:set(Daemon|Name)\\(\\) is deprecated:DeprecationWarning")

READY = re.compile(rb"I \(\d+\) hil: hil-agent \S+ ready[^\r\n]*\r?\n")
TIMEOUT = 10.0


def read_until(ser: Any, pattern: re.Pattern[bytes], timeout: float = TIMEOUT) -> bytes:
    """Reads from a pyserial port until `pattern` matches what arrived; returns all of it."""
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        buf += bytes(ser.read(max(1, ser.in_waiting)))
        if pattern.search(buf):
            return buf
    raise AssertionError(f"{pattern.pattern!r} did not arrive within {timeout}s; got {buf!r}")


def read_master(master: int, size: int, timeout: float = TIMEOUT) -> bytes:
    """What the device side of a pty received: `size` bytes, or what came within `timeout`."""
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([master], [], [], left)[0]:
            break
        got += os.read(master, size - len(got))
    return got


def bridge_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rfc2217-")]


def fds_on(path: str) -> int:
    """How many of this process's file descriptors are open on `path`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == path:
                count += 1
        except OSError:
            pass
    return count


def hard_reset(ser: Any) -> None:
    """esptool's HardReset over the wire: RTS asserted (EN low) 100 ms, then released, DTR
    not asserted."""
    ser.dtr = False
    ser.rts = True
    time.sleep(0.1)
    ser.rts = False


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """A raw pty: (master fd, slave path); the test plays the device on the master."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        yield master, path
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def board(hil_agent: Path, tmp_path: Path) -> Iterator[VirtualBoard]:
    """A virtual board of our own (pty created, agent not started yet)."""
    vb = VirtualBoard("rfc2217-vb", hil_agent, tmp_path / "state", tmp_path / "logs")
    vb.port  # noqa: B018 - creates the pty
    try:
        yield vb
        report = vb.after_test()
        assert not report, report
    finally:
        vb.close()


@pytest.fixture
def bridge(board: VirtualBoard) -> Iterator[Rfc2217Bridge]:
    with Rfc2217Bridge(board.port, on_reset=board.reset) as b:
        yield b
    assert not b.errors, b.errors


# ---------------------------------------------------------------------- the virtual board


def test_version_round_trip_and_reset_pulse(board: VirtualBoard,
                                            bridge: Rfc2217Bridge) -> None:
    ser = serial.serial_for_url(bridge.url, timeout=0.2)
    try:
        board.start()  # after the port is open: its boot line is not flushed away
        read_until(ser, READY)
        ser.write(b"version\n")
        reply = read_until(ser, re.compile(rb"(?m)^OK\r?\n"))
        assert re.search(rb"(?m)^version=\d+\.\d+\.\d+\r?$", reply), reply

        pid = board.pid
        hard_reset(ser)
        assert bridge.resets == 1
        assert bridge.downloads == 0
        boot = read_until(ser, READY)
        assert len(READY.findall(boot)) == 1, boot
        assert board.pid is not None and board.pid != pid  # the agent was restarted
        ser.write(b"version\n")
        read_until(ser, re.compile(rb"(?m)^OK\r?\n"))
    finally:
        ser.close()
    assert bridge.resets == 1  # closing the port is not a pulse


def test_next_client_is_served_after_one_leaves(board: VirtualBoard,
                                               bridge: Rfc2217Bridge) -> None:
    board.start()
    for n in range(3):
        ser = serial.serial_for_url(bridge.url, timeout=0.2)
        try:
            ser.write(b"version\n")
            reply = read_until(ser, re.compile(rb"(?m)^OK\r?\n"))
            assert b"version=" in reply, (n, reply)
        finally:
            ser.close()
    assert bridge.clients == 3
    assert bridge.resets == 0


def test_classic_reset_into_download_mode_is_ignored(board: VirtualBoard,
                                                    bridge: Rfc2217Bridge) -> None:
    board.start()
    ser = serial.serial_for_url(bridge.url, timeout=0.2)
    try:
        pid = board.pid
        # esptool's ClassicReset: IO0 high, EN low; 100 ms; IO0 low, EN released; IO0 high
        ser.dtr = False
        ser.rts = True
        time.sleep(0.1)
        ser.dtr = True
        ser.rts = False
        time.sleep(0.05)
        ser.dtr = False
        assert (bridge.resets, bridge.downloads) == (0, 1)
        assert board.pid == pid
        ser.write(b"version\n")
        read_until(ser, re.compile(rb"(?m)^OK\r?\n"))
    finally:
        ser.close()


def test_control_requests_are_acknowledged(board: VirtualBoard,
                                           bridge: Rfc2217Bridge) -> None:
    """Without ign_set_control pyserial waits for each SET_CONTROL answer and checks it."""
    board.start()
    ser = serial.serial_for_url(f"rfc2217://{HOST}:{bridge.port}", timeout=0.2)
    try:
        hard_reset(ser)
        read_until(ser, READY)
    finally:
        ser.close()
    assert bridge.resets == 1


def test_pytest_embedded_serial_dut_and_console(board: VirtualBoard,
                                                bridge: Rfc2217Bridge) -> None:
    """The way a physical board is opened: pytest-embedded's `serial` service on the URL, the
    rig's blocking reader, the rig's Console; reset by esptool's pulse over the wire."""
    from pytest_embedded.dut_factory import DutFactory

    dut = DutFactory.create(embedded_services="serial", port=bridge.url)
    try:
        assert use_blocking_reader(dut)
        assert isinstance(dut.serial._redirect_thread, BlockingRedirect)
        console = Console(dut, "rfc2217-vb", timeout=TIMEOUT)
        hard_reset(dut.serial.proc)
        console.wait_ready(TIMEOUT)
        data = dict(line.split("=", 1) for line in console.send("version").data)
        assert re.fullmatch(r"\d+\.\d+\.\d+", data["version"])
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            console.send("version")
            times.append(time.perf_counter() - t0)
        median_ms = statistics.median(times) * 1000
        print(f"console round trip over rfc2217 (blocking reader): median {median_ms:.2f} ms")
        assert median_ms < 25, f"median round trip {median_ms:.1f} ms (the 50 ms poll?)"
    finally:
        DutFactory.close()
    assert bridge.resets == 1


# ---------------------------------------------------------------------- a plain pty


def test_bound_to_loopback_only(pty_pair: tuple[int, str]) -> None:
    _, path = pty_pair
    with Rfc2217Bridge(path) as b:
        assert b.listening_on == (HOST, b.port)
        assert b.url == f"rfc2217://127.0.0.1:{b.port}?ign_set_control"
        # another loopback address reaches the same interface, but nothing listens there
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", b.port), timeout=2).close()


def test_binary_data_crosses_both_ways(pty_pair: tuple[int, str]) -> None:
    """0xff is the Telnet IAC byte: it must be escaped one way and unescaped the other."""
    master, path = pty_pair
    payload = bytes(range(256)) * 4
    with Rfc2217Bridge(path) as b:
        ser = serial.serial_for_url(b.url, timeout=0.2)
        try:
            ser.write(payload)
            assert read_master(master, len(payload)) == payload
            deadline = time.monotonic() + TIMEOUT
            os.write(master, payload)
            back = b""
            while len(back) < len(payload) and time.monotonic() < deadline:
                back += ser.read(len(payload) - len(back))
            assert back == payload
            assert not b.has_modem_lines
            assert b.lines[-1].dtr and b.lines[-1].rts  # pyserial's open asserts both
        finally:
            ser.close()


def test_second_client_is_refused_while_one_is_connected(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    with Rfc2217Bridge(path) as b:
        first = serial.serial_for_url(b.url, timeout=0.2)
        try:
            with socket.create_connection((HOST, b.port), timeout=5) as second:
                assert second.recv(100) == b""  # accepted, then closed at once
            first.write(b"still here\n")
            assert read_master(master, 11) == b"still here\n"
        finally:
            first.close()
        assert b.clients == 1


def test_stop_is_clean_with_a_client_connected(pty_pair: tuple[int, str]) -> None:
    _, path = pty_pair
    before = fds_on(path)
    b = Rfc2217Bridge(path)
    with b:
        assert fds_on(path) == before + 1
        client = socket.create_connection((HOST, b.port), timeout=5)
        client.recv(100)  # the bridge's Telnet option requests: it is being served
        want = [f"rfc2217-reader:{b.port}", f"rfc2217-server:{b.port}"]
        deadline = time.monotonic() + TIMEOUT
        while sorted(bridge_threads()) != want and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(bridge_threads()) == want
    try:
        client.settimeout(5)
        while client.recv(4096):
            pass  # EOF: the bridge closed it
    finally:
        client.close()
    assert bridge_threads() == []
    assert fds_on(path) == before
    assert b.listening_on is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, b.port), timeout=2).close()
    assert not b.errors
    b.stop()  # twice is fine


def test_busy_port_is_named(pty_pair: tuple[int, str]) -> None:
    _, path = pty_pair
    master, slave = os.openpty()
    try:
        with Rfc2217Bridge(path) as first:
            second = Rfc2217Bridge(os.ttyname(slave), port=first.port)
            with pytest.raises(BridgeError,
                               match=rf"cannot listen on 127\.0\.0\.1:{first.port}"):
                second.start()
    finally:
        os.close(master)
        os.close(slave)
    assert bridge_threads() == []


def test_device_is_held_exclusively(pty_pair: tuple[int, str]) -> None:
    _, path = pty_pair
    with Rfc2217Bridge(path):
        with pytest.raises(BridgeError, match=f"cannot open serial device {path}: .*lock"):
            Rfc2217Bridge(path).start()
        with pytest.raises(serial.SerialException, match="lock"):
            serial.Serial(path, exclusive=True)  # e.g. esptool opening it behind our back
    serial.Serial(path, exclusive=True).close()  # released at stop


def test_device_failure_is_reported_and_stops_listening() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    with Rfc2217Bridge(path) as b:
        ser = serial.serial_for_url(b.url, timeout=0.2)
        try:
            os.close(master)  # the device goes away: reads on its tty fail with EIO
            os.close(slave)
            deadline = time.monotonic() + TIMEOUT
            while b.device_error is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert b.device_error is not None and path in b.device_error, b.errors
            while b.listening_on is not None and time.monotonic() < deadline:
                time.sleep(0.02)
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((HOST, b.port), timeout=2).close()
        finally:
            ser.close()
    assert bridge_threads() == []


def test_on_reset_failure_is_kept_and_serving_goes_on(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair

    def broken() -> None:
        raise RuntimeError("agent binary vanished")

    with Rfc2217Bridge(path, on_reset=broken) as b:
        ser = serial.serial_for_url(b.url, timeout=0.2)
        try:
            hard_reset(ser)
            ser.write(b"x\n")
            assert read_master(master, 2) == b"x\n"
        finally:
            ser.close()
        assert b.resets == 1
        assert len(b.errors) == 1 and "agent binary vanished" in b.errors[0]


def test_malformed_request_drops_only_that_client(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    iac, sb, se, com_port_option, set_parity = 255, 250, 240, 44, 3
    with Rfc2217Bridge(path) as b:
        with socket.create_connection((HOST, b.port), timeout=5) as bad:
            bad.sendall(bytes([iac, sb, com_port_option, set_parity, 9, iac, se]))  # parity 9?
            bad.settimeout(5)
            while bad.recv(4096):
                pass  # EOF: the bridge dropped it
        assert len(b.errors) == 1 and "malformed RFC 2217 request" in b.errors[0], b.errors
        ser = serial.serial_for_url(b.url, timeout=0.2)
        try:
            ser.write(b"next\n")
            assert read_master(master, 5) == b"next\n"
        finally:
            ser.close()
