"""The RFC 2217 bridge (rig/boards/rfc2217.py) without a device: the model of the ESP32 boards'
DTR/RTS reset circuit, and a bridge asked to serve a device that does not exist."""

from __future__ import annotations

import threading

import pytest

from rig.boards.rfc2217 import BridgeError, ResetDetector, Rfc2217Bridge


def bridge_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rfc2217-")]


def test_missing_device_is_named() -> None:
    with pytest.raises(BridgeError, match="/dev/ttyUSB-not-here does not exist"):
        Rfc2217Bridge("/dev/ttyUSB-not-here").start()
    assert bridge_threads() == []


# ---------------------------------------------------------------------- the circuit model


def pulses(*states: tuple[bool, bool]) -> tuple[int, int]:
    """(normal boots, download-mode boots) for a sequence of (DTR, RTS) states, starting from
    pyserial's open state (both asserted)."""
    seen = [0, 0]

    def boot() -> None:
        seen[0] += 1

    def download() -> None:
        seen[1] += 1

    det = ResetDetector(boot, download)
    for dtr, rts in states:
        det.update(dtr, rts)
    return seen[0], seen[1]


def test_reset_detector_sequences() -> None:
    # esptool HardReset after DTR was released
    assert pulses((False, True), (False, True), (False, False)) == (1, 0)
    # esptool ClassicReset: DTR asserted before RTS is released -> download mode
    assert pulses((False, True), (True, True), (True, False), (False, False)) == (0, 1)
    # both asserted then released (EN never low): nothing
    assert pulses((True, True), (True, False), (False, False)) == (0, 0)
    # DTR toggled while RTS is held: still one pulse, at the release
    assert pulses((False, True), (True, True), (False, True), (False, False)) == (1, 0)
    # two pulses, two boots
    assert pulses((False, True), (False, False), (False, True), (False, False)) == (2, 0)
