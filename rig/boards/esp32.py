"""A physical ESP32 on USB (or behind RFC2217), through pytest-embedded's `esp,idf` services.

The first open of a session brings the chip to the ESP-IDF build named in hil.toml
(`build_dir`): kept when the app on it has the build's ELF SHA-256, flashed otherwise, and
erased first with --erase-nvs / --erase-all (rig/boards/flashing.py), all within
`[timeouts] flash`. Later opens only reset the chip. The port is pinned by path/URL, USB
location, USB serial number or MAC, found by the rig and held for the session
(rig/boards/ports.py). `prepare` joins Wi-Fi with credentials from the
environment variables hil.toml [wifi] names. Setting a runner up is in docs/runner.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from rig.boards import BoardUnavailable
from rig.boards.flashing import NO_ERASE, FlashError, FlashOptions, flash_once, within
from rig.boards.ports import find_port
from rig.config import Board, HilConfig
from rig.device.console import Console

DEFAULT_BUILD_DIR = "firmware/build"
BAUD = 115200
EN_PULSE_S = 0.1  # how long RTS holds EN low, as esptool's hard reset does


def hard_reset(ser: Any) -> None:
    """Reset the chip through the USB-UART bridge's auto-reset lines, as esptool does: DTR
    released (IO0 high: normal boot), RTS asserted (EN low), then released."""
    ser.dtr = False
    ser.rts = True
    time.sleep(EN_PULSE_S)
    ser.rts = False


class Esp32Board:
    kind = "esp32"

    def __init__(self, spec: Board, config: HilConfig,
                 options: FlashOptions = NO_ERASE) -> None:
        self.spec = spec
        self.name = spec.name
        self.config = config
        self.options = options
        self.build_dir = config.path(spec.build_dir or DEFAULT_BUILD_DIR)
        self.port = ""  # found on the first open, held (locked) until close()
        self.flash_note = ""  # what the first open did to the chip's flash
        self._flash_failure = ""
        self._held = contextlib.ExitStack()

    def _check_attached(self) -> None:
        spec = self.spec
        if spec.port and "://" not in spec.port and not Path(spec.port).exists():
            raise BoardUnavailable(f"board {self.name}: {spec.port} does not exist (not attached?)")
        if spec.flash and not (self.build_dir / "flasher_args.json").exists():
            raise BoardUnavailable(
                f"board {self.name}: no ESP-IDF build in {self.build_dir} (flasher_args.json "
                "missing): build the firmware with idf.py, or set flash = false")
        if not self.port:
            self.port = find_port(spec, self._held)  # rig/boards/ports.py

    def open(self) -> Any:
        if self._flash_failure:
            raise FlashError(f"{self._flash_failure} (on the session's first open; not retried)")
        if not self.spec.flash and self.options.erases:
            raise FlashError(f"board {self.name}: {self.options.erases} needs esptool to write "
                             "the chip's flash, and hil.toml has flash = false for it")
        self._check_attached()
        from pytest_embedded.dut_factory import DutFactory

        if not self.spec.flash:
            # No esptool at all: plain serial, and a reset through the RTS (EN) line. This is
            # also how a board behind RFC2217 without flashing is driven.
            try:
                dut = DutFactory.create(embedded_services="serial", port=self.port, baud=BAUD)
            except (OSError, ValueError) as exc:
                raise BoardUnavailable(f"board {self.name}: cannot open {self.port}: "
                                       f"{exc}") from exc
            dut.serial.proc.reset_output_buffer()  # nothing written before the reset reaches it
            hard_reset(dut.serial.proc)
            return dut
        try:
            # skip_autoflash: the first open decides itself (flash_once), later ones never flash
            dut = DutFactory.create(
                embedded_services="esp,idf",
                app_path=str(self.build_dir.parent),
                build_dir=self.build_dir.name,
                port=self.port,
                target=self.spec.target,
                skip_autoflash=True,
                erase_nvs=self.options.erase_nvs,
                part_tool=self.options.part_tool,
            )
        except (OSError, ValueError) as exc:
            raise BoardUnavailable(f"board {self.name}: cannot open {self.port}: {exc}") from exc
        if not self.flash_note:
            what = f"board {self.name}: flashing from {self.build_dir}"
            try:
                self.flash_note = within(self.config.timeouts.flash, what,
                                         lambda: flash_once(dut.serial, self.options))
            except Exception as exc:  # esptool's FatalError, a missing partition tool, ...
                self._flash_failure = str(exc) if isinstance(exc, FlashError) else (
                    f"{what} failed: {exc}")
                raise FlashError(self._flash_failure) from exc
            logging.getLogger(__name__).info("board %s: %s", self.name, self.flash_note)
        return dut

    def prepare(self, console: Console) -> None:
        """After boot: join Wi-Fi with the credentials from the environment variables named in
        hil.toml [wifi] (set over the console; the agent never echoes or logs them)."""
        wifi = self.config.wifi
        if not wifi.ssid_env:
            return
        missing = wifi.missing_env()
        if missing:
            raise BoardUnavailable(f"board {self.name}: environment variable(s) "
                                   f"{', '.join(missing)} not set (hil.toml [wifi])")
        console.set_many({"wifi.sta.ssid": os.environ[wifi.ssid_env],
                          "wifi.sta.pass": os.environ[wifi.password_env]})
        console.send("wifi connect", timeout=self.config.timeouts.wifi)

    def address(self, console: Console) -> str:
        """Where the rig reaches the board's servers: hil.toml `address`, else the IP in
        `status` (wifi=connected ip=...)."""
        if self.spec.address:
            return self.spec.address
        wifi = console.status().get("wifi", "")
        m = re.search(r"\bip=(\S+)", wifi)
        if not m:
            raise BoardUnavailable(f"board {self.name}: no network address (status wifi="
                                   f"{wifi or '(none)'}); set address in hil.toml or [wifi]")
        return m.group(1)

    def restart(self, dut: Any) -> str:
        """Hard reset with the port kept open: esptool's, or the RTS line with flash = false;
        nothing written before the reset reaches the new boot."""
        serial = dut.serial
        serial.proc.reset_output_buffer()
        if self.spec.flash and hasattr(serial, "hard_reset"):
            serial.hard_reset()
        else:
            hard_reset(serial.proc)
        return ""

    def after_test(self) -> str:
        return ""

    @property
    def powered(self) -> bool:
        return True  # the rig has no power switch for a chip on USB

    def death(self) -> str:
        """A chip has no process to watch: a hung board shows as a console timeout."""
        return ""

    def close(self) -> None:
        self._held.close()  # releases the port
        self.port = ""
