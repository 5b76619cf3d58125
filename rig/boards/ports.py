"""Finding a physical board's serial port from hil.toml, and keeping it for one process.

The rig resolves the port itself and hands pytest-embedded an explicit `port`. Left to itself,
pytest-embedded takes `$ESPPORT` for every board, and a board pinned by MAC or USB location
makes it probe free ports with esptool, which resets whatever chip it tries, including a board
another worker is testing. Its MAC check also expects esptool 4's `MAC: ` line, which esptool 5
pads. So:

* `port`: the path (symlinks resolved) or the pyserial URL (rfc2217://...);
* `location` / `serial_number`: looked up with pyserial's list_ports, no device is touched;
* `mac`: `esptool --port P read-mac` on each serial port no other rig process holds, one port
  at a time and one scan at a time on this machine (a probed chip is reset).

The resolved port is locked for the session (`port_lock`) in a directory shared by every rig
process of this user, so two workers, two hil.toml files or two names for one device never
drive the same port.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from rig.boards import BoardError, BoardUnavailable
from rig.config import Board
from rig.local.locks import BoardBusy, board_lock, file_lock, held_here, private_dir

ReadMac = Callable[[str], str | None]
_MAC_LINE = re.compile(r"^MAC:\s+([0-9a-f]{2}(?::[0-9a-f]{2}){5})\s*$", re.MULTILINE)


def lock_dir() -> Path:
    """The per-user port-lock directory in the system temp dir, shared with other users:
    created 0700 and refused (LockError) unless it is a real directory of ours, mode 0700."""
    return private_dir(Path(tempfile.gettempdir()) / f"hil-port-locks-{os.getuid()}")


def lock_name(port: str) -> str:
    """A file name for a port path or URL."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", port.strip("/"))


@contextlib.contextmanager
def port_lock(port: str) -> Iterator[None]:
    """Holds `port` for this process; BoardBusy (naming the holder) when another has it."""
    with board_lock(lock_dir(), lock_name(port), what=f"port {port}"):
        yield


def esptool_read_mac(port: str, timeout: float = 20.0) -> str | None:
    """The chip's MAC on `port` as esptool reads it (resets the chip), or None when there is
    no ESP chip answering there."""
    try:
        proc = subprocess.run([sys.executable, "-m", "esptool", "--port", port, "read-mac"],
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    m = _MAC_LINE.search(proc.stdout)
    return m.group(1) if proc.returncode == 0 and m else None


def _comports() -> list[tuple[str, str, str]]:
    """(device, location, serial number) of every serial port pyserial lists."""
    from serial.tools import list_ports

    return [(str(p.device), str(p.location or ""), str(p.serial_number or ""))
            for p in list_ports.comports()]


def find_port(spec: Board, held: contextlib.ExitStack, *,
              read_mac: ReadMac = esptool_read_mac) -> str:
    """The board's port, locked in `held` (released when the caller closes it). BoardError
    for $ESPPORT or a port another process holds; BoardUnavailable when the board is not
    there."""
    if os.environ.get("ESPPORT"):
        raise BoardError(f"board {spec.name}: ESPPORT is set ({os.environ['ESPPORT']}); "
                         "pytest-embedded would open that port for every board. The rig takes "
                         "each board's port from hil.toml: unset ESPPORT")
    if spec.port:
        port = spec.port if "://" in spec.port else os.path.realpath(spec.port)
    elif spec.location or spec.serial_number:
        found = [dev for dev, loc, sn in _comports()
                 if (not spec.location or loc == spec.location)
                 and (not spec.serial_number or sn == spec.serial_number)]
        what = " and ".join(f"{k} {v}" for k, v in (("USB location", spec.location),
                                                     ("USB serial number", spec.serial_number))
                            if v)
        if not found:
            raise BoardUnavailable(f"board {spec.name}: no serial port with {what} "
                                   "(not attached?)")
        if len(found) > 1:
            raise BoardError(f"board {spec.name}: {len(found)} serial ports with {what} "
                             f"({', '.join(found)}); pin it by port or location instead")
        port = found[0]
    elif spec.mac:
        return _find_by_mac(spec, held, read_mac)
    else:
        raise BoardError(f"board {spec.name}: no port, location, serial_number or mac")
    if held_here(lock_dir(), lock_name(port)):
        raise BoardError(f"board {spec.name}: port {port} is already another board's in this "
                         "run (two hil.toml entries for one device?)")
    try:
        held.enter_context(port_lock(port))
    except BoardBusy as exc:
        raise BoardError(f"board {spec.name}: {exc}") from None
    return port


def _find_by_mac(spec: Board, held: contextlib.ExitStack, read_mac: ReadMac) -> str:
    mac = spec.mac.lower()
    with file_lock(lock_dir() / ".mac-scan.lock"):
        for dev, _, _ in sorted(_comports()):
            if held_here(lock_dir(), lock_name(os.path.realpath(dev))):
                continue  # another board of this run
            attempt = contextlib.ExitStack()
            try:
                attempt.enter_context(port_lock(os.path.realpath(dev)))
            except BoardBusy:
                continue  # another rig process drives it: never probe (it would reset)
            if read_mac(dev) == mac:
                held.enter_context(attempt.pop_all())
                return os.path.realpath(dev)
            attempt.close()
    raise BoardUnavailable(f"board {spec.name}: no free serial port has an ESP chip with MAC "
                           f"{spec.mac} (not attached, or held by another run?)")
