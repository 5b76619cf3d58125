"""What the rig reads from labgrid-client (rig/boards/farm.py), without a farm: `show` as
labgrid 26 prints it (tests/cli/test_farm.py runs the real one), and the serial URL of a place."""

from __future__ import annotations

import time

import pytest

from rig.boards.esp32 import EN_PULSE_S, hard_reset
from rig.boards.farm import FarmError, HeldPlace, parse_show

ACQUIRED = """Place 'virt-a':
  tags: board=esp32-virtual, slot=b
  matches:
    bench1/virt-a/*
  acquired: runner1/ci
  acquired resources:
    bench1/virt-a/NetworkPowerPort/NetworkPowerPort
    bench1/virt-a/NetworkSerialPort/RawSerialPort
  created: 2026-11-30 11:19:49.297128
  changed: 2026-11-30 11:19:50.517921
Acquired resource 'NetworkPowerPort' (bench1/virt-a/NetworkPowerPort/NetworkPowerPort):
  {'acquired': 'virt-a',
   'avail': True,
   'cls': 'NetworkPowerPort',
   'params': {'extra': {'proxy': 'localhost', 'proxy_required': False},
              'host': 'http://127.0.0.1:36131/relay/{index}/value',
              'index': 0,
              'model': 'rest'}}
Acquired resource 'RawSerialPort' (bench1/virt-a/NetworkSerialPort/RawSerialPort):
  {'acquired': 'virt-a',
   'avail': True,
   'cls': 'NetworkSerialPort',
   'params': {'extra': {'path': '/dev/pts/1',
                        'proxy': 'localhost',
                        'proxy_required': False},
              'host': '127.0.0.1',
              'port': 39565,
              'speed': 115200}}
"""

FREE = """Place 'virt-b':
  tags: board=esp32
  matches:
    bench1/virt-b/*
  acquired: None
  acquired resources:
  created: 2026-11-30 11:19:49.297128
  changed: 2026-11-30 11:19:50.517921
"""


def test_show_of_an_acquired_place() -> None:
    info = parse_show(ACQUIRED)
    assert (info.name, info.acquired) == ("virt-a", "runner1/ci")
    assert [(path, cls) for path, cls, _ in info.resources] == [
        ("bench1/virt-a/NetworkPowerPort/NetworkPowerPort", "NetworkPowerPort"),
        ("bench1/virt-a/NetworkSerialPort/RawSerialPort", "NetworkSerialPort")]
    assert info.resources[1][2]["port"] == 39565
    assert info.resources[1][2]["extra"]["path"] == "/dev/pts/1"


def test_show_of_a_free_place() -> None:
    info = parse_show(FREE)
    assert (info.name, info.acquired, info.resources) == ("virt-b", "", [])


def test_show_names_the_reservation_a_place_is_allocated_to() -> None:
    """What the claims' proof rests on (rig/boards/places.py): labgrid 26 prints the place's
    reservation token last."""
    reserved = ACQUIRED.replace("  changed: 2026-11-30 11:19:50.517921\n",
                                "  changed: 2026-11-30 11:19:50.517921\n"
                                "  reservation: 6EA3KTC8B6\n")
    assert parse_show(reserved).reservation == "6EA3KTC8B6"
    assert parse_show(ACQUIRED).reservation == ""


def test_show_that_is_not_a_place_is_an_error() -> None:
    with pytest.raises(FarmError, match="printed no place"):
        parse_show("labgrid-client: something else\n")
    broken = ACQUIRED.replace("'speed': 115200}}", "'speed': 115200")
    with pytest.raises(FarmError, match="cannot read resource bench1/virt-a/NetworkSerialPort"):
        parse_show(broken)


def _place(device: str) -> HeldPlace:
    return HeldPlace(board="b", place="p", exporter="bench1", host="10.0.0.7", port=4001,
                     device=device, power="NetworkPowerPort", coordinator="10.0.0.2:20408")


def test_the_serial_url_of_a_place() -> None:
    usb = _place("/dev/ttyUSB0")
    assert usb.modem_lines and usb.url == "rfc2217://10.0.0.7:4001"
    pty = _place("/dev/pts/4")  # ser2net acknowledges no line change on a pty
    assert not pty.modem_lines and pty.url == "rfc2217://10.0.0.7:4001?ign_set_control"
    assert HeldPlace.from_json(usb.to_json()) == usb


class Lines:
    """Stands for a USB-UART's DTR/RTS lines wired to an ESP32's IO0/EN (the auto-reset
    circuit; no chip here): records every change with its time."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, bool, float]] = []
        self._dtr = self._rts = False

    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._dtr = value
        self.changes.append(("dtr", value, time.monotonic()))

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts = value
        self.changes.append(("rts", value, time.monotonic()))


def test_the_en_pulse_boots_the_chip_normally() -> None:
    """DTR released (IO0 high: a normal boot, not the ROM loader), then RTS asserted (EN low)
    for EN_PULSE_S and released: esptool's hard reset, what the rig sends over USB or RFC
    2217 (ser2net applies it to the exporter's USB-UART)."""
    lines = Lines()
    hard_reset(lines)
    assert [(n, v) for n, v, _ in lines.changes] == [("dtr", False), ("rts", True),
                                                      ("rts", False)]
    held = lines.changes[2][2] - lines.changes[1][2]
    assert held >= EN_PULSE_S
