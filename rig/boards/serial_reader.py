"""A lower-latency reader for pytest-embedded's serial Dut, and a console stream fed by it.

pytest-embedded-serial 2.9 moves bytes from the port to its message queue in a thread that
sleeps 50 ms between reads, so every console round trip costs ~50 ms (measured: 48 ms for
`status`). The rig sends dozens of commands per matrix cell, so this replaces that thread with
one that blocks on the port and forwards bytes as soon as they arrive: to pytest-embedded's
queue (its log listener and log file stay its own), and to a PortStream the rig's console
waits on, without the queue -> listener process -> file -> pexpect poll hops (~1.3 ms per
round trip through them, ~0.2 ms without).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from typing import Any

import pexpect

log = logging.getLogger(__name__)


class PortStream:
    """What the port said, for the console, as it arrives. pytest-embedded hands the port's
    bytes to a log-listener process through a queue, which appends them to a file that pexpect
    polls: ~1.3 ms per console round trip, and a busy poll while the console waits. The rig's
    reader also appends them here, and `expect` waits on a condition that the reader notifies.
    The face is the part of pytest-embedded's Dut the console uses (`expect` raising pexpect's
    TIMEOUT, `write`, `pexpect_proc.before` / `.buffer`), the rest is the Dut's; the log file
    still gets everything."""

    LIMIT = 1 << 20  # unread bytes kept; older ones go (a board that talks to nobody)

    def __init__(self, dut: Any) -> None:
        self._dut = dut
        self._cond = threading.Condition()
        self._buf = b""
        self.before = b""  # what came before the last match (pexpect's `before`)
        self.dropped = 0  # unread bytes dropped past LIMIT
        self.closed = ""  # why the port stopped giving bytes ('' while it gives them)

    @property
    def pexpect_proc(self) -> PortStream:
        return self

    @property
    def buffer(self) -> bytes:
        """What came and no expect has taken yet."""
        with self._cond:
            return self._buf

    def feed(self, data: bytes) -> None:
        with self._cond:
            self._buf += data
            if len(self._buf) > self.LIMIT:  # keep whole lines: a cut one could match
                cut = self._buf.find(b"\n", len(self._buf) - self.LIMIT // 2) + 1
                cut = cut or len(self._buf)
                self._buf = self._buf[cut:]
                self.dropped += cut
            self._cond.notify_all()

    def close(self, why: str) -> None:
        """The port gives no more bytes (it was closed, or it failed): an expect that finds
        nothing more in what came raises pexpect.EOF."""
        with self._cond:
            self.closed = why or "port closed"
            self._cond.notify_all()

    def expect(self, pattern: re.Pattern[bytes], timeout: float) -> re.Match[bytes]:
        """The first match of `pattern` in what came and no expect has taken: it and what
        came before it are taken. pexpect.TIMEOUT after `timeout` s without one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = pattern.search(self._buf)
                if m is not None:
                    self.before = self._buf[:m.start()]
                    self._buf = self._buf[m.end():]
                    return m
                if self.closed:
                    raise pexpect.EOF(self.closed)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise pexpect.TIMEOUT(f"no match for {pattern.pattern!r} within {timeout} s")
                self._cond.wait(left)

    def write(self, data: str) -> None:
        self._dut.write(data)

    def __getattr__(self, name: str) -> Any:
        """Anything else is the Dut's (its serial port, its log file)."""
        if name == "_dut":  # not set yet (a copy): no Dut to ask
            raise AttributeError(name)
        return getattr(self._dut, name)


class BlockingRedirect(threading.Thread):
    """Port -> message queue (and PortStream), blocking on the port (its read timeout bounds
    the stop latency)."""

    def __init__(self, msg_queue: Any, port: Any, stream: PortStream | None = None) -> None:
        super().__init__(name="hil-serial-reader", daemon=True)
        self._q = msg_queue
        self._port = port
        self._stream = stream
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                data = self._port.read(1)
                if data:
                    waiting = self._port.in_waiting
                    if waiting:
                        data += self._port.read(waiting)
            except (OSError, TypeError, AttributeError) as exc:
                # the port closed under us (the Dut torn down, the USB device gone, the
                # RFC 2217 connection lost): whoever waits on the stream hears it at once
                if self._stream is not None and not self._stop_event.is_set():
                    self._stream.close(f"the serial port failed: {exc}")
                return
            if data:
                if self._stream is not None:
                    self._stream.feed(data)
                try:
                    self._q.put(data)
                except (OSError, EOFError, BrokenPipeError):
                    return

    # the interface pytest-embedded's Serial expects of its redirect thread
    def terminate(self) -> None:
        self._stop_event.set()
        if threading.current_thread() is not self:
            self.join(timeout=2)


def use_blocking_reader(dut: Any) -> bool:
    """Swap the Dut's serial reader for BlockingRedirect, feeding a PortStream (`stream_of`);
    False (and the stock reader kept) if this pytest-embedded does not look the way this was
    written against. Call it before the board's reset: what the stock reader took before the
    swap is in pytest-embedded's log and pexpect buffer, not in the stream. Once swapped, a
    second call changes nothing, and a stop and restart of the reader by pytest-embedded
    (esptool's use of the port) restarts this one."""
    serial = getattr(dut, "serial", None)
    if serial is None or not hasattr(serial, "stop_redirect_thread") or \
            not hasattr(serial, "_q") or not hasattr(serial, "proc"):
        log.warning("pytest-embedded serial internals changed; keeping its 50 ms reader")
        return False
    stream = getattr(dut, STREAM, None)
    if stream is not None and isinstance(serial._redirect_thread, BlockingRedirect) and \
            serial._redirect_thread.is_alive():
        return True
    stream = PortStream(dut)
    setattr(dut, STREAM, stream)

    def start() -> None:
        if isinstance(serial._redirect_thread, BlockingRedirect) and \
                serial._redirect_thread.is_alive():
            return  # one reader per port
        reader = BlockingRedirect(serial._q, serial.proc, stream)
        serial._redirect_thread = reader
        reader.start()

    serial.stop_redirect_thread()
    stream.feed(_taken_before(dut, serial._q))
    serial.start_redirect_thread = start
    start()
    return True


def _taken_before(dut: Any, msg_queue: Any, settle_s: float = 0.2) -> bytes:
    """What pytest-embedded's own reader took from the port and no expect has read: it went
    through the queue to the log listener, which appends it to the file pexpect reads. Read
    once the queue is empty (bounded by `settle_s`); b"" if pytest-embedded's internals are
    not the ones this was written against."""
    proc = getattr(dut, "pexpect_proc", None)
    if proc is None or not hasattr(proc, "read_nonblocking"):
        return b""
    deadline = time.monotonic() + settle_s
    # pytest-embedded's queue and listener give no sign when a message is in the file, so
    # this polls (once per Dut, bounded by settle_s); qsize() is unsupported on some
    # platforms (NotImplementedError): then only the reads below wait
    with contextlib.suppress(NotImplementedError, OSError):
        while msg_queue.qsize() and time.monotonic() < deadline:
            time.sleep(0.001)
    taken = bytes(getattr(proc, "buffer", b"") or b"")
    proc.buffer = b""
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:  # the listener's last write may be late
        try:
            data = proc.read_nonblocking(65536, timeout=0)
        except (pexpect.EOF, pexpect.TIMEOUT, OSError, ValueError):
            break
        if data:
            taken += data if isinstance(data, bytes) else data.encode()
            quiet = 0
        else:
            quiet += 1
            time.sleep(0.001)
    return taken


STREAM = "_hil_port_stream"


def console_port(dut: Any) -> Any:
    """What a console reads and writes: the Dut's PortStream (use_blocking_reader), else the
    Dut itself (pytest-embedded's own reader)."""
    return getattr(dut, STREAM, None) or dut


def keep_for_session(dut: Any) -> list[Any]:
    """Take the Dut (and what pytest-embedded made for it: serial, log listener) out of
    pytest-embedded's DutFactory, whose autouse fixture closes every Dut it made after each
    test; returns those objects for `close_kept` at the end of the session."""
    from pytest_embedded.dut_factory import DutFactory

    for layout in list(DutFactory.obj_stack):
        if layout and layout[-1] is dut:
            DutFactory.obj_stack.remove(layout)
            return list(layout)
    return [dut]


def close_kept(objects: list[Any]) -> None:
    """Close what keep_for_session returned, the Dut first (as DutFactory.close would)."""
    for obj in reversed(objects):
        if obj is None:
            continue
        try:
            if hasattr(obj, "close"):
                obj.close()
            elif hasattr(obj, "terminate"):
                obj.terminate()
        except Exception as exc:  # one object's trouble must not keep the others open
            log.debug("closing %r: %s", obj, exc)
        if hasattr(obj, "kill") and hasattr(obj, "is_alive") and obj.is_alive():
            obj.kill()  # the log listener process
