"""A physical ESP32 on USB, behind RFC 2217, or on a labgrid farm (its place's exporter serves
the port through ser2net), through pytest-embedded's `esp,idf` services.

The first open of a session brings the chip to the ESP-IDF build named in hil.toml
(`build_dir`): kept when the app on it has the build's ELF SHA-256, flashed otherwise, and
erased first with --erase-nvs / --erase-all (rig/boards/flashing.py), all within
`[timeouts] flash`. Later opens only reset the chip. The port is pinned by path/URL, USB
location, USB serial number or MAC, found by the rig and held for the session
(rig/boards/ports.py); a farm board's port is its place's (rig/boards/farm.py, held by the
run). `prepare` joins Wi-Fi with credentials from the environment variables hil.toml [wifi]
names. Setting a runner up is in docs/runner.md. A board whose profile has `settings =
"nvs-image"` gets each cell's NVS image over its `nvs` partition (write_nvs,
rig/boards/partitions.py) before the reset that makes its app read it.

Reset: the RTS (EN) line, as esptool does. A farm board whose exporter serves a pty (a virtual
board standing in for a chip) has no such line; its reset is its place's power. Power cycle
(the second step for a board that stops answering, rig/device/strategy.py): the place's power
resource through `labgrid-client power cycle`, or hil.toml `power_cycle` on a local runner;
after that command the next open waits up to `[timeouts] port_return` for the board's port to
come back (the USB-UART enumerates anew, maybe under another name: found again as above).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from rig.boards import BoardConsole, BoardError, BoardUnavailable
from rig.boards.farm import FarmError, HeldPlace, LabgridClient, PlaceNotHeld, resolve
from rig.boards.flashing import NO_ERASE, FlashError, FlashOptions, flash_once, within
from rig.boards.partitions import IdfPartitions, write_partition
from rig.boards.ports import find_port
from rig.boards.serial_reader import use_blocking_reader
from rig.config import Board, HilConfig

DEFAULT_BUILD_DIR = "firmware/build"
BAUD = 115200
EN_PULSE_S = 0.1  # how long RTS holds EN low, as esptool's hard reset does
POWER_COMMAND_TIMEOUT_S = 60.0  # hil.toml power_cycle: a USB hub or a relay, seconds at most
PORT_POLL_S = 0.1  # how often the rig looks for a power-cycled board's port (nothing says when)


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
                 options: FlashOptions = NO_ERASE,
                 farm: HeldPlace | str | None = None) -> None:
        """farm: the labgrid place the run holds for the board, or why it has none."""
        self.spec = spec
        self.farm = farm
        self.name = spec.name
        self.config = config
        self.options = options
        self.build_dir = config.path(spec.build_dir or DEFAULT_BUILD_DIR)
        self.port = ""  # found on the first open, held (locked) until close()
        self.flash_note = ""  # what the first open did to the chip's flash
        self._flash_failure = ""
        self._held = contextlib.ExitStack()
        self._power_cycled = ""  # how hil.toml power_cycle last ran: find the port anew

    @property
    def firmware_file(self) -> Path | None:
        """The application ELF of the ESP-IDF build (project_description.json's app_elf), the
        one flashed or found on the chip; None without a build, and with flash = false (the
        rig does not know what the chip runs then)."""
        if not self.spec.flash:
            return None
        elf: Path | None
        try:
            desc = json.loads((self.build_dir / "project_description.json").read_text())
            elf = self.build_dir / str(desc["app_elf"])
        except (OSError, ValueError, KeyError):
            elf = next(iter(sorted(self.build_dir.glob("*.elf"))), None) if (
                self.build_dir.is_dir()) else None
        return elf if elf is not None and elf.is_file() else None

    @property
    def place(self) -> HeldPlace | None:
        return self.farm if isinstance(self.farm, HeldPlace) else None

    def _check_attached(self) -> None:
        spec = self.spec
        if spec.on_farm:
            if not isinstance(self.farm, HeldPlace):
                raise PlaceNotHeld(self.farm or f"board {self.name}: its labgrid place was "
                                   "not acquired (the run's start acquires it: pytest --hil)")
            if not self.farm.modem_lines and not self.farm.power:
                raise BoardError(f"board {self.name}: place {self.farm.place} serves a pty "
                                 f"({self.farm.device}: no RTS line to reset it) and has no "
                                 "power resource: the rig cannot reset the board")
            if spec.flash and not self.farm.modem_lines:
                raise BoardError(f"board {self.name}: place {self.farm.place} serves a pty "
                                 f"({self.farm.device}), which esptool cannot flash: set "
                                 "flash = false for it")
        if self._power_cycled:
            self._port_back()
        self._port_exists()
        if spec.flash and not (self.build_dir / "flasher_args.json").exists():
            raise BoardUnavailable(
                f"board {self.name}: no ESP-IDF build in {self.build_dir} (flasher_args.json "
                "missing): build the firmware with idf.py, or set flash = false")
        if spec.on_farm and self.place is not None:
            self.port = self.place.url
        if not self.port:
            self.port = find_port(spec, self._held)  # rig/boards/ports.py

    def _port_exists(self) -> None:
        spec = self.spec
        if spec.port and "://" not in spec.port and not Path(spec.port).exists():
            raise BoardUnavailable(f"board {self.name}: {spec.port} does not exist (not attached?)")

    def _port_back(self) -> None:
        """After hil.toml power_cycle: the USB-UART went away with the power and enumerates
        anew, maybe under another name. Look for it as the first open did (rig/boards/ports.py)
        for up to [timeouts] port_return; BoardUnavailable when it does not come back."""
        wait = self.config.timeouts.port_return
        deadline = time.monotonic() + wait
        while True:
            try:
                self._port_exists()
                self.port = find_port(self.spec, self._held)
                break
            except BoardUnavailable as exc:
                if time.monotonic() >= deadline:
                    detail = str(exc).removeprefix(f"board {self.name}: ")
                    raise BoardUnavailable(
                        f"board {self.name}: waited {wait:g} s ([timeouts] port_return) for its "
                        f"serial port after the power cycle: {detail}") from None
                time.sleep(PORT_POLL_S)  # the rig has no device event to wait on: poll
        self._power_cycled = ""

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
            use_blocking_reader(dut)  # before the reset: the stream has the whole boot
            self._reset(dut.serial.proc)
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
        # now, not after the flash: the stream has the whole boot (esptool's own use of the
        # port stops and restarts this reader, rig/boards/serial_reader.py)
        use_blocking_reader(dut)
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

    def prepare(self, console: BoardConsole) -> None:
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

    def address(self, console: BoardConsole) -> str:
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

    def write_nvs(self, dut: Any, image: bytes) -> None:
        """The image over the chip's `nvs` partition (esptool write-flash at the build's
        partition table's offset, rig/boards/partitions.py), within `[timeouts] flash`; the
        chip stays in its bootloader until the reset that follows (restart)."""
        if not self.spec.flash:
            raise BoardUnavailable(f"board {self.name}: writing an NVS image needs esptool to "
                                   "write the chip's flash, and hil.toml has flash = false "
                                   "for it")
        what = f"board {self.name}: writing its NVS image"
        note = within(self.config.timeouts.flash, what, lambda: write_partition(
            IdfPartitions(dut.serial), "nvs", image, self.name))
        logging.getLogger(__name__).info("board %s: %s", self.name, note)

    def restart(self, dut: Any) -> str:
        """Hard reset with the port kept open: esptool's, or the RTS line with flash = false;
        nothing written before the reset reaches the new boot."""
        serial = dut.serial
        serial.proc.reset_output_buffer()
        if self.spec.flash and hasattr(serial, "hard_reset") and (
                self.place is None or self.place.modem_lines):
            serial.hard_reset()
        else:
            self._reset(serial.proc)
        return ""

    def _reset(self, ser: Any) -> None:
        """The RTS (EN) pulse; on a farm place without the line (a pty), its power."""
        place = self.place
        if place is not None and not place.modem_lines:
            LabgridClient(place.coordinator).power(place.place, "cycle")
            return
        hard_reset(ser)

    def power_cycle(self) -> str:
        """Cut the board's power and restore it: the place's power resource, or hil.toml
        `power_cycle` (then the next open waits up to [timeouts] port_return for the port to
        come back). Returns how ('' when the board has no power switch, or when its reset
        already is a power cycle); BoardError when the switch fails."""
        place = self.place
        if place is not None:
            if not place.power or not place.modem_lines:
                return ""
            client = LabgridClient(place.coordinator)
            client.power(place.place, "cycle")
            # the USB-UART went away with the power: the exporter serves it anew once it is
            # back, maybe on another port
            deadline = time.monotonic() + self.config.timeouts.board_boot
            while True:
                try:
                    self.farm = resolve(client, place.place, self.name, place.token)
                    break
                except FarmError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)  # no one says when the device is back: ask again
            return f"place {place.place}'s {place.power}"
        command = self.spec.power_cycle
        if not command:
            return ""
        try:
            proc = subprocess.run(command, capture_output=True, text=True, check=False,
                                  timeout=POWER_COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BoardError(f"board {self.name}: power_cycle command {command[0]}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
        if proc.returncode != 0:
            said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise BoardError(f"board {self.name}: power_cycle command {command[0]} exited "
                             f"{proc.returncode}{': ' + said[-1] if said else ''}")
        # the USB-UART went away with the power: the next open finds its port anew (_port_back)
        self._held.close()
        self.port = ""
        self._power_cycled = f"hil.toml power_cycle ({command[0]})"
        return self._power_cycled

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
