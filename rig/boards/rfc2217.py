"""An RFC 2217 bridge: one local serial device served on 127.0.0.1, so that anything that opens
`rfc2217://...` (pyserial, esptool, pytest-embedded) reaches it as it would a remote board.

    with Rfc2217Bridge("/dev/pts/7", on_reset=board.reset) as bridge:
        dut = DutFactory.create(embedded_services="serial", port=bridge.url)

It exists so that the `pytest --hil` path (a "physical" board reached over RFC 2217) runs end to
end in CI against the virtual board, whose console is a pty. It also serves a real /dev/ttyUSB0.

Network: the listening socket is bound to 127.0.0.1 only (never 0.0.0.0), the bridge never
connects anywhere, and a peer that is not a loopback address is dropped. Port 0 picks a free
port; `bridge.port` is the one in use.

One client at a time: while one is connected, another connection is accepted and closed at
once (logged). A client that leaves does not stop the bridge; the next one is served.

Modem lines: a pty has none (the ioctls that set DTR/RTS and read CTS/DSR/RI/CD fail with
ENOTTY), which is what makes esptool's `esp_rfc2217_server` fail on a pty. The bridge probes
the device once: without modem lines it *records* DTR/RTS instead of applying them and reports
CTS/DSR/RI/CD as inactive; with them (a USB-UART) it applies DTR/RTS to the device as well.

Reset: ESP32 boards wire DTR/RTS to IO0/EN through two transistors (the "auto-reset" circuit):
EN is pulled low (chip held in reset) while RTS is asserted and DTR is not, and IO0 is pulled
low while DTR is asserted and RTS is not. The bridge follows the recorded lines through that
circuit: a *pulse* is RTS being released after EN was held low during its assertion. The chip
boots at that release, in download mode if DTR is asserted then (IO0 low: esptool's classic
bootloader entry), normally otherwise (esptool's hard reset: RTS asserted, 100 ms, released,
DTR not asserted). Each normal boot calls `on_reset()` once. `on_reset` stands for the chip's
EN pin: for the virtual board it restarts the agent process; for a real board behind the
bridge the lines themselves reset the chip, and the callback is only a notification. A
download-mode boot is logged and ignored (the virtual board has no ROM bootloader to enter).
The callback runs in the bridge's thread before the client's control request is answered, so
the board has restarted by the time the client sees the acknowledgement; an exception from it
is logged and kept in `bridge.errors`, and the bridge keeps serving.

Nothing of the serial traffic is logged (provisioning carries keys and PSKs over it).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import serial
from serial.rfc2217 import PortManager

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
READ_TIMEOUT = 0.2  # device read timeout: bounds how fast the reader notices a stop
SEND_TIMEOUT = 5.0  # a client that does not take our data for this long is dropped
MODEM_POLL = 0.5  # seconds between CTS/DSR/RI/CD polls (devices that have modem lines)


class BridgeError(Exception):
    """The bridge could not start (device or port), or its device failed."""


@dataclass(frozen=True)
class LineChange:
    """One DTR/RTS state after a client's control request (True = asserted)."""

    dtr: bool
    rts: bool


class ResetDetector:
    """The ESP32 auto-reset circuit, fed with DTR/RTS states; calls `on_reset` at each release
    of EN into a normal boot and `on_download` at each release into download mode.

    EN is low while RTS is asserted and DTR is not. A pulse is counted when RTS is released
    (True -> False) after EN was low at some point of that assertion; DTR at the release picks
    the boot mode. Only the release counts, so a pulse is counted once however the client
    orders its requests (esptool's hard reset; its classic reset, which asserts DTR before
    releasing RTS; pyserial's open, which asserts both and so never pulls EN low)."""

    def __init__(self, on_reset: Callable[[], None],
                 on_download: Callable[[], None] | None = None,
                 dtr: bool = True, rts: bool = True) -> None:
        self._on_reset = on_reset
        self._on_download = on_download
        self.dtr = dtr
        self.rts = rts
        self.en_held = rts and not dtr

    def update(self, dtr: bool, rts: bool) -> None:
        released = self.rts and not rts
        self.dtr, self.rts = dtr, rts
        if rts and not dtr:
            self.en_held = True
        if released:
            pulse, self.en_held = self.en_held, False
            if pulse:
                if dtr:
                    if self._on_download is not None:
                        self._on_download()
                else:
                    self._on_reset()


class RecordingSerial:
    """The device as PortManager sees it: settings and purges go to the device; DTR/RTS are
    recorded (and applied too when the device has modem lines); CTS/DSR/RI/CD read from the
    device, or inactive when it has none (a pty has no modem lines)."""

    def __init__(self, device: Any, on_lines: Callable[[bool, bool], None]) -> None:
        self.device = device
        self._on_lines = on_lines
        self._dtr = bool(device.dtr)  # pyserial's state after open (asserted by default)
        self._rts = bool(device.rts)
        self.history: list[LineChange] = []
        try:
            _ = device.cts
            self.has_modem_lines = True
        except OSError:
            self.has_modem_lines = False

    # -- control lines (set by the client)

    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._set_lines(bool(value), self._rts)

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._set_lines(self._dtr, bool(value))

    def _set_lines(self, dtr: bool, rts: bool) -> None:
        if self.has_modem_lines:
            if dtr != self._dtr:
                self.device.dtr = dtr
            if rts != self._rts:
                self.device.rts = rts
        self._dtr, self._rts = dtr, rts
        self.history.append(LineChange(dtr, rts))
        self._on_lines(dtr, rts)

    # -- status lines (read by PortManager for the client)

    def _status(self, name: str) -> bool:
        return bool(getattr(self.device, name)) if self.has_modem_lines else False

    @property
    def cts(self) -> bool:
        return self._status("cts")

    @property
    def dsr(self) -> bool:
        return self._status("dsr")

    @property
    def ri(self) -> bool:
        return self._status("ri")

    @property
    def cd(self) -> bool:
        return self._status("cd")

    # -- everything else PortManager touches goes to the device

    @property
    def baudrate(self) -> int:
        return int(self.device.baudrate)

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        self.device.baudrate = value

    @property
    def bytesize(self) -> int:
        return int(self.device.bytesize)

    @bytesize.setter
    def bytesize(self, value: int) -> None:
        self.device.bytesize = value

    @property
    def parity(self) -> str:
        return str(self.device.parity)

    @parity.setter
    def parity(self, value: str) -> None:
        self.device.parity = value

    @property
    def stopbits(self) -> float:
        return float(self.device.stopbits)

    @stopbits.setter
    def stopbits(self, value: float) -> None:
        self.device.stopbits = value

    @property
    def xonxoff(self) -> bool:
        return bool(self.device.xonxoff)

    @xonxoff.setter
    def xonxoff(self, value: bool) -> None:
        self.device.xonxoff = value

    @property
    def rtscts(self) -> bool:
        return bool(self.device.rtscts)

    @rtscts.setter
    def rtscts(self, value: bool) -> None:
        self.device.rtscts = value

    @property
    def break_condition(self) -> bool:
        return bool(self.device.break_condition)

    @break_condition.setter
    def break_condition(self, value: bool) -> None:
        try:
            self.device.break_condition = value
        except OSError as exc:
            log.warning("%s: cannot set BREAK %s (%s); ignored", self.device.port,
                        "on" if value else "off", exc)

    def reset_input_buffer(self) -> None:
        self.device.reset_input_buffer()

    def reset_output_buffer(self) -> None:
        self.device.reset_output_buffer()


class _TelnetLog:
    """PortManager's logger: its per-request info lines (baud rate, DTR/RTS, purges: a dozen
    per client open) go to debug; its warnings and errors stay what they are."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger

    def debug(self, msg: str, *args: object) -> None:
        self._log.debug(msg, *args)

    info = debug

    def warning(self, msg: str, *args: object) -> None:
        self._log.warning(msg, *args)

    def error(self, msg: str, *args: object) -> None:
        self._log.error(msg, *args)


class _Connection:
    """What PortManager writes to: the client socket, shared by two threads (the lock keeps a
    Telnet answer from landing in the middle of a data chunk)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            self.sock.sendall(data)


class Rfc2217Bridge:
    """Serves the serial device `device` (a path: /dev/pts/N, /dev/ttyUSB0) over RFC 2217 on
    127.0.0.1:`port` (0 = a free port). See the module docstring for modem lines and reset.

    Attributes once started: `port`, `url`, `address`; `resets` (normal boots seen),
    `downloads` (download-mode boots ignored), `clients` (clients served so far),
    `has_modem_lines`, `lines` (the DTR/RTS history), `errors` (what went wrong while running),
    `device_error` (set when the device failed: the bridge then stops listening)."""

    def __init__(self, device: str | Path, on_reset: Callable[[], None] | None = None, *,
                 port: int = 0, baudrate: int = 115200) -> None:
        self.device_path = str(device)
        self.on_reset = on_reset
        self.requested_port = port
        self.baudrate = baudrate
        self.resets = 0
        self.downloads = 0
        self.clients = 0
        self.errors: list[str] = []
        self.device_error: str | None = None
        self._serial: Any = None
        self._recording: RecordingSerial | None = None
        self._detector: ResetDetector | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._server: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._client: socket.socket | None = None
        self._client_lock = threading.Lock()
        self._manager_lock = threading.Lock()
        self._stop = threading.Event()
        self._client_done = threading.Event()
        self._port = 0

    # ------------------------------------------------------------------ public API

    @property
    def port(self) -> int:
        if not self._port:
            raise BridgeError("the bridge is not started")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return HOST, self.port

    @property
    def url(self) -> str:
        """The pyserial URL of this bridge (`ign_set_control`, as esptool and pytest-embedded
        users write it; the bridge does answer control requests, so it also works without)."""
        return f"rfc2217://{HOST}:{self.port}?ign_set_control"

    @property
    def listening_on(self) -> tuple[str, int] | None:
        """The listening socket's own address (None when not listening)."""
        listener = self._listener
        if listener is None:
            return None
        try:
            host, port = listener.getsockname()[:2]
        except OSError:  # closed meanwhile (device failure or stop)
            return None
        return str(host), int(port)

    @property
    def has_modem_lines(self) -> bool:
        return self._recording is not None and self._recording.has_modem_lines

    @property
    def lines(self) -> list[LineChange]:
        return list(self._recording.history) if self._recording else []

    def start(self) -> Rfc2217Bridge:
        if self._server is not None:
            raise BridgeError("the bridge is already started")
        if "://" in self.device_path:
            raise BridgeError(f"{self.device_path}: the bridge serves a local serial device "
                              "(a path such as /dev/ttyUSB0 or a pty), not a URL")
        if not Path(self.device_path).exists():
            raise BridgeError(f"serial device {self.device_path} does not exist (board not "
                              "attached, or the pty closed?)")
        try:
            # exclusive: nothing else (esptool, a terminal) opens the device behind our back
            self._serial = serial.Serial(self.device_path, self.baudrate, timeout=READ_TIMEOUT,
                                         exclusive=True)
        except (OSError, ValueError) as exc:
            raise BridgeError(f"cannot open serial device {self.device_path}: {exc}") from exc
        try:
            self._recording = RecordingSerial(self._serial, self._lines_changed)
            self._detector = ResetDetector(self._reset, self._download,
                                           dtr=self._recording.dtr, rts=self._recording.rts)
            if not self._recording.has_modem_lines:
                log.info("%s has no modem lines (a pty?): DTR/RTS are recorded, not applied",
                         self.device_path)
            self._listen()
        except BaseException:
            self._close_all()
            raise
        self._stop.clear()
        self._server = threading.Thread(target=self._serve, daemon=True,
                                        name=f"rfc2217-server:{self._port}")
        self._server.start()
        log.info("serving %s on %s", self.device_path, self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stops serving: the client (if any) is disconnected, both threads are joined, the
        sockets and the device are closed. Safe to call twice."""
        self._stop.set()
        self._wake()
        self._drop_client()
        server, self._server = self._server, None
        if server is not None and server is not threading.current_thread():
            server.join(timeout)
            if server.is_alive():
                self.errors.append(f"server thread for {self.device_path} did not stop within "
                                   f"{timeout:.0f}s")
                log.error("%s", self.errors[-1])
        self._close_all()

    def __enter__(self) -> Rfc2217Bridge:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ reset

    def _lines_changed(self, dtr: bool, rts: bool) -> None:
        log.debug("%s: DTR=%d RTS=%d", self.device_path, dtr, rts)
        assert self._detector is not None
        self._detector.update(dtr, rts)

    def _reset(self) -> None:
        self.resets += 1
        log.info("%s: reset pulse (RTS released, DTR not asserted): normal boot",
                 self.device_path)
        if self.on_reset is None:
            return
        try:
            self.on_reset()
        except Exception as exc:  # the bridge keeps serving; the failure is reported
            self.errors.append(f"on_reset for {self.device_path} failed: {exc!r}")
            log.exception("on_reset for %s failed", self.device_path)

    def _download(self) -> None:
        self.downloads += 1
        log.warning("%s: reset pulse into download mode (DTR asserted at RTS release: IO0 "
                    "low); this board cannot enter download mode: ignored", self.device_path)

    # ------------------------------------------------------------------ sockets

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((HOST, self.requested_port))
            listener.listen(2)
        except OSError as exc:
            listener.close()
            raise BridgeError(f"cannot listen on {HOST}:{self.requested_port} for "
                              f"{self.device_path}: {exc}") from exc
        self._listener = listener
        self._port = int(listener.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")

    def _serve(self) -> None:
        """Accept loop and the socket -> serial direction of the current client."""
        assert self._listener is not None and self._wake_r is not None
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, "listener")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        manager: Any = None
        try:
            while not self._stop.is_set():
                events = sorted((key.data for key, _ in sel.select()),
                                key=("wake", "client", "listener").index)
                for what in events:
                    if what == "wake":
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(64)
                        if self._client is not None and self._client_done.is_set():
                            sel.unregister(self._client)
                            self._end_client()
                            manager = None
                    elif what == "client":
                        if self._client is None:
                            continue  # ended by a wake-up earlier in this batch
                        if not self._from_client(manager):
                            assert self._client is not None
                            sel.unregister(self._client)
                            self._end_client()
                            manager = None
                    elif self._stop.is_set():
                        break
                    elif self._client is None:
                        manager = self._begin_client()
                        if manager is not None:
                            assert self._client is not None
                            sel.register(self._client, selectors.EVENT_READ, "client")
                    else:
                        self._refuse_extra()
                if self.device_error is not None:
                    break
        except Exception as exc:  # report, never die silently
            self.errors.append(f"bridge for {self.device_path} failed: {exc!r}")
            log.exception("bridge for %s failed", self.device_path)
        finally:
            if self._client is not None:
                self._end_client()
            sel.close()
            if self.device_error is not None and self._listener is not None:
                # refuse new clients outright (connection refused) rather than half-serve them
                self._listener.close()
                self._listener = None

    def _begin_client(self) -> Any:
        assert self._listener is not None
        try:
            sock, peer = self._listener.accept()
        except OSError as exc:
            log.warning("accept on %s failed: %s", self.url, exc)
            return None
        if not ipaddress.ip_address(peer[0]).is_loopback:  # cannot happen: bound to 127.0.0.1
            log.error("dropping a connection from non-loopback %s", peer[0])
            sock.close()
            return None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(SEND_TIMEOUT)
        self.clients += 1
        log.info("client %s:%d connected to %s", peer[0], peer[1], self.device_path)
        with self._client_lock:
            self._client = sock
        self._client_done.clear()
        assert self._recording is not None
        try:
            with self._manager_lock:
                connection = _Connection(sock)
                manager = PortManager(self._recording, connection,
                                      logger=_TelnetLog(log.getChild("telnet")))
        except OSError as exc:
            log.warning("client %s:%d left during negotiation: %s", peer[0], peer[1], exc)
            self._end_client()
            return None
        self._reader = threading.Thread(target=self._to_client, args=(manager, connection),
                                        daemon=True, name=f"rfc2217-reader:{self._port}")
        self._reader.start()
        return manager

    def _refuse_extra(self) -> None:
        assert self._listener is not None
        with contextlib.suppress(OSError):
            sock, peer = self._listener.accept()
            log.warning("refusing client %s:%d on %s: another client is connected (one at a "
                        "time)", peer[0], peer[1], self.url)
            sock.close()

    def _from_client(self, manager: Any) -> bool:
        """One read from the client; False when it is gone."""
        sock = self._client
        assert sock is not None and self._serial is not None
        try:
            data = sock.recv(4096)
        except (OSError, TimeoutError):
            return False
        if not data:
            return False
        try:
            with self._manager_lock:
                payload = b"".join(manager.filter(data))
        except OSError as exc:  # answering the client failed (it left), or a control failed
            log.info("client of %s: %s", self.device_path, exc)
            return False
        except Exception as exc:  # a malformed request (PortManager trusts its input)
            self.errors.append(f"malformed RFC 2217 request for {self.device_path}: {exc!r}")
            log.warning("%s; disconnecting that client", self.errors[-1])
            return False
        if payload:
            try:
                self._serial.write(payload)
            except (OSError, serial.SerialException) as exc:
                self._device_failed(f"writing to {self.device_path} failed: {exc}")
                return False
        return True

    def _to_client(self, manager: Any, connection: _Connection) -> None:
        """Reader thread: serial -> client, escaped; polls modem lines if the device has any."""
        device = self._serial
        assert self._recording is not None
        poll = self._recording.has_modem_lines
        idle = 0.0
        try:
            while not self._stop.is_set() and not self._client_done.is_set():
                try:
                    data = device.read(1)
                    if data:
                        waiting = device.in_waiting
                        if waiting:
                            data += device.read(waiting)
                except (OSError, serial.SerialException, TypeError) as exc:
                    if not self._stop.is_set():
                        self._device_failed(f"reading {self.device_path} failed: {exc}")
                    return
                if data:
                    idle = 0.0
                    connection.write(b"".join(manager.escape(data)))
                elif poll:
                    idle += READ_TIMEOUT
                    if idle >= MODEM_POLL:
                        idle = 0.0
                        with self._manager_lock:
                            manager.check_modem_lines()
        except (OSError, TimeoutError) as exc:
            if not self._stop.is_set() and not self._client_done.is_set():
                log.info("client of %s gone while sending: %s", self.device_path, exc)
        finally:
            self._client_done.set()
            self._wake()

    def _device_failed(self, message: str) -> None:
        if self.device_error is None:
            self.device_error = message
            self.errors.append(message)
            log.error("%s; the bridge on %s:%d stops listening", message, HOST, self._port)
        self._client_done.set()
        self._wake()

    def _drop_client(self) -> None:
        with self._client_lock:
            sock = self._client
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.cancel_read()

    def _end_client(self) -> None:
        """Disconnects the current client and joins its reader thread."""
        self._client_done.set()
        self._drop_client()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not threading.current_thread():
            reader.join(READ_TIMEOUT * 10 + SEND_TIMEOUT)
            if reader.is_alive():
                self.errors.append(f"reader thread for {self.device_path} did not stop")
                log.error("%s", self.errors[-1])
        with self._client_lock:
            sock, self._client = self._client, None
        if sock is not None:
            sock.close()
            log.info("client of %s disconnected", self.device_path)
        if self._recording is not None and self._detector is not None and \
                self._detector.en_held and self._recording.rts:
            log.warning("%s: the client left with RTS asserted and DTR not (EN held low): a "
                        "real board stays in reset until the lines change", self.device_path)

    def _close_all(self) -> None:
        for attr in ("_listener", "_wake_r", "_wake_w"):
            sock = getattr(self, attr)
            if sock is not None:
                sock.close()
                setattr(self, attr, None)
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
            self._serial = None
