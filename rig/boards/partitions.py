"""Writing an image over one partition of a physical board's flash: the NVS image of a device
profile with `settings = "nvs-image"` (rig/device/nvs_boot.py), with esptool through
pytest-embedded's IdfSerial, as the rig's other flash work (rig/boards/flashing.py).

    note = write_partition(IdfPartitions(dut.serial), "nvs", image, board="esp-a")

* where: the partition's offset and size come from the build's partition table
  (pytest-embedded-idf's IdfApp.partition_table, read with ESP-IDF's gen_esp32part.py: $IDF_PATH
  or --part-tool, as for --erase-nvs);
* what: the image must be exactly the partition's size (the profile's `nvs_size`); a table that
  cannot be read, a missing partition or another size is an error naming it, raised before
  anything is written;
* how: `esptool write-flash <offset> <file>`, which verifies the region it wrote (MD5), with
  `--after no-reset`: the chip stays in its bootloader until the caller's reset boots the app
  with the new NVS, so no boot reads it twice;
* secrets: the image holds the board's keys; esptool reads it from a 0600 file in a private
  0700 directory removed right after (also after an interrupt, and swept after a kill).

A write that fails part-way leaves the partition partly written: the error says so, and the
next cell writes a whole image again. Nothing here has run against a chip (none is attached to
the machine this was written on): the checks before the write are tested with a stand-in for
the chip (tests/unit/test_partitions.py), esptool's write itself is not. A build with flash or
NVS encryption is refused before anything is written: its NVS needs an encrypted image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from rig.boards.flashing import FlashError
from rig.local.user_tmp import remove_secret_dir, secret_dir, write_secret

# sdkconfig options (pytest-embedded-idf's IdfApp.sdkconfig, without CONFIG_) that encrypt
ENCRYPTION_OPTIONS = ("SECURE_FLASH_ENC_ENABLED", "NVS_ENCRYPTION")


class PartitionError(FlashError):
    """An image that cannot go over a partition (no table, no such partition, another size),
    or a write that failed: the board's cell fails with this."""


class Partitions(Protocol):
    """A chip's flash as the rig writes partitions of it."""

    def table(self) -> dict[str, dict[str, Any]]:
        """The build's partition table: name -> {"offset": int, "size": int, ...}; ValueError
        when it cannot be read."""
        ...

    def write(self, offset: int, image: Path) -> None:
        """Write the file `image` at `offset` and verify it, leaving the chip in its
        bootloader."""
        ...

    def encryption(self) -> str:
        """The build's sdkconfig option that encrypts flash or NVS, '' if none."""
        ...


class IdfPartitions:
    """Partitions of the chip behind pytest-embedded-idf's IdfSerial (esptool underneath)."""

    def __init__(self, serial: Any) -> None:
        self.serial = serial

    def table(self) -> dict[str, dict[str, Any]]:
        table: dict[str, dict[str, Any]] = self.serial.app.partition_table
        return table

    def encryption(self) -> str:
        sdkconfig = self.serial.app.sdkconfig
        for option in ENCRYPTION_OPTIONS:
            if sdkconfig.get(option, False):
                return option
        return ""

    def write(self, offset: int, image: Path) -> None:
        import esptool
        from pytest_embedded_serial_esp.serial import EspSerial

        def run(serial: Any) -> None:
            esptool.main(["--after", "no-reset", "write-flash", hex(offset), str(image)],
                         esp=serial.esp)

        # as IdfSerial's own methods: the port's reader paused, esptool connected, then resumed
        EspSerial.use_esptool()(run)(self.serial)


def locate(parts: Partitions, name: str, size: int, board: str) -> int:
    """The offset of partition `name`, once it is known to take an image of `size` bytes."""
    encrypted = parts.encryption()
    if encrypted:
        raise PartitionError(f"board {board}: the build has {encrypted} set: its {name} "
                             "partition needs an encrypted image, which the rig does not make; "
                             "nothing was written")
    try:
        table = parts.table()
    except ValueError as exc:  # pytest-embedded-idf: no gen_esp32part.py
        raise PartitionError(
            f"board {board}: the build's partition table cannot be read ({exc}); ESP-IDF's "
            "gen_esp32part.py reads it: set IDF_PATH or pass --part-tool") from None
    entry = table.get(name)
    if entry is None:
        have = ", ".join(sorted(table)) or ("none (no partition table in the build's "
                                            "flasher_args.json, or gen_esp32part.py could not "
                                            "read it)")
        raise PartitionError(f"board {board}: the build's partition table has no {name!r} "
                             f"partition; it has: {have}")
    offset, capacity = int(entry["offset"]), int(entry["size"])
    if size != capacity:
        raise PartitionError(
            f"board {board}: the {name} image is {size} bytes (0x{size:x}) and the build's "
            f"{name} partition at 0x{offset:x} is {capacity} bytes (0x{capacity:x}): set the "
            f"profile's nvs_size = 0x{capacity:x}; nothing was written")
    return offset


def write_partition(parts: Partitions, name: str, image: bytes, board: str) -> str:
    """Write `image` over partition `name` (see the module doc); returns what was done."""
    offset = locate(parts, name, len(image), board)
    private = secret_dir("partition")
    try:
        path = private / f"{name}.bin"
        write_secret(path, image)
        try:
            parts.write(offset, path)
        except Exception as exc:  # esptool's FatalError, a port gone, ...
            raise PartitionError(
                f"board {board}: writing the {name} partition at 0x{offset:x} failed: {exc}; "
                "it may be partly written (the next cell writes a whole image)") from exc
    finally:
        remove_secret_dir(private)
    return f"wrote {len(image)} bytes over partition {name} at 0x{offset:x}"
