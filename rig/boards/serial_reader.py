"""A lower-latency reader for pytest-embedded's serial Dut.

pytest-embedded-serial 2.9 moves bytes from the port to its message queue in a thread that
sleeps 50 ms between reads, so every console round trip costs ~50 ms (measured: 48 ms for
`status`). The rig sends dozens of commands per matrix cell, so this replaces that thread with
one that blocks on the port and forwards bytes as soon as they arrive. Everything downstream
(message queue, log file, pexpect, the Dut API) stays pytest-embedded's own.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class BlockingRedirect(threading.Thread):
    """Port -> message queue, blocking on the port (its read timeout bounds the stop latency)."""

    def __init__(self, msg_queue: Any, port: Any) -> None:
        super().__init__(name="hil-serial-reader", daemon=True)
        self._q = msg_queue
        self._port = port
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                data = self._port.read(1)
                if data:
                    waiting = self._port.in_waiting
                    if waiting:
                        data += self._port.read(waiting)
            except (OSError, TypeError, AttributeError):
                return  # port closed under us: the Dut is being torn down
            if data:
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
    """Swap the Dut's serial reader for BlockingRedirect; False (and the stock reader kept) if
    this pytest-embedded does not look the way this was written against."""
    serial = getattr(dut, "serial", None)
    if serial is None or not hasattr(serial, "stop_redirect_thread") or \
            not hasattr(serial, "_q") or not hasattr(serial, "proc"):
        log.warning("pytest-embedded serial internals changed; keeping its 50 ms reader")
        return False
    serial.stop_redirect_thread()
    reader = BlockingRedirect(serial._q, serial.proc)
    serial._redirect_thread = reader
    reader.start()
    return True


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
