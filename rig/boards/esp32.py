"""A physical ESP32 on USB (or behind RFC2217), through pytest-embedded's `esp,idf` services.

Flashing is esptool's, driven by pytest-embedded-idf from the ESP-IDF build named in hil.toml
(`build_dir`); with `confirm_target_elf_sha256` the app already on the chip is kept when its ELF
SHA-256 matches, so tests do not reflash. The port is pinned by path/URL, USB location, USB
serial number or MAC. Setting a runner up is in docs/runner.md; Wi-Fi provisioning by the rig is
not written yet (the guide says how to store credentials on a board by hand).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rig.boards import BoardUnavailable
from rig.config import Board, HilConfig

DEFAULT_BUILD_DIR = "firmware/build"


class Esp32Board:
    kind = "esp32"

    def __init__(self, spec: Board, config: HilConfig) -> None:
        self.spec = spec
        self.name = spec.name
        self.build_dir = config.path(spec.build_dir or DEFAULT_BUILD_DIR)

    def _check_attached(self) -> None:
        spec = self.spec
        if spec.port and "://" not in spec.port and not Path(spec.port).exists():
            raise BoardUnavailable(f"board {self.name}: {spec.port} does not exist (not attached?)")
        if spec.location or spec.serial_number:
            from serial.tools import list_ports

            ports = list_ports.comports()
            if spec.location and not any(p.location == spec.location for p in ports):
                raise BoardUnavailable(f"board {self.name}: no serial port at USB location "
                                       f"{spec.location} (not attached?)")
            if spec.serial_number and not any(p.serial_number == spec.serial_number
                                              for p in ports):
                raise BoardUnavailable(f"board {self.name}: no serial port with USB serial "
                                       f"number {spec.serial_number} (not attached?)")
        if spec.flash and not (self.build_dir / "flasher_args.json").exists():
            raise BoardUnavailable(
                f"board {self.name}: no ESP-IDF build in {self.build_dir} (flasher_args.json "
                "missing): build the firmware with idf.py, or set flash = false")

    def open(self) -> Any:
        self._check_attached()
        from pytest_embedded.dut_factory import DutFactory

        spec = self.spec
        try:
            return DutFactory.create(
                embedded_services="esp,idf",
                app_path=str(self.build_dir.parent),
                build_dir=self.build_dir.name,
                port=spec.port or None,
                port_location=spec.location or None,
                port_mac=spec.mac or None,
                port_serial_number=spec.serial_number or None,
                target=spec.target,
                skip_autoflash=not spec.flash,
                confirm_target_elf_sha256=True,
            )
        except (OSError, ValueError) as exc:
            raise BoardUnavailable(f"board {self.name}: cannot open its port: {exc}") from exc

    def after_test(self) -> str:
        return ""

    def close(self) -> None:
        pass
