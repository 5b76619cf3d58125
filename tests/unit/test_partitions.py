"""Writing an NVS image over a physical board's `nvs` partition (rig/boards/partitions.py): where
it goes, what is refused before anything is written, and the image's file (it holds the board's
keys) private and gone afterwards. The chip cannot exist here: FlashStandIn stands for its flash
and the build's partition table; esptool's write itself is not exercised."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rig.boards.partitions import PartitionError, write_partition

NVS_AT, NVS_SIZE = 0x9000, 0x6000
TABLE = {"nvs": {"offset": NVS_AT, "size": NVS_SIZE}, "phy_init": {"offset": 0xF000,
                                                                   "size": 0x1000},
         "factory": {"offset": 0x10000, "size": 0x100000}}


@dataclass
class FlashStandIn:
    """Stands for an ESP32's flash behind esptool (no chip here): the build's partition table,
    4 MiB of erased flash, and what each write saw of its file."""

    partitions: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(TABLE))
    flash: bytearray = field(default_factory=lambda: bytearray(b"\xff" * (4 << 20)))
    seen: list[tuple[int, int, int]] = field(default_factory=list)  # offset, file mode, dir mode
    files: list[Path] = field(default_factory=list)
    unreadable: str = ""
    encrypted: str = ""  # the build's sdkconfig option that encrypts, if any
    fail_after: int = -1  # bytes written before the write fails (-1: never)

    def table(self) -> dict[str, dict[str, Any]]:
        if self.unreadable:
            raise ValueError(self.unreadable)
        return self.partitions

    def encryption(self) -> str:
        return self.encrypted

    def write(self, offset: int, image: Path) -> None:
        self.files.append(image)
        self.seen.append((offset, stat.S_IMODE(image.stat().st_mode),
                          stat.S_IMODE(image.parent.stat().st_mode)))
        data = image.read_bytes()
        if self.fail_after >= 0:
            data = data[:self.fail_after]
            self.flash[offset:offset + len(data)] = data
            raise OSError("the port went away")
        self.flash[offset:offset + len(data)] = data


def image(size: int = NVS_SIZE) -> bytes:
    return bytes((i * 7) & 0xFF for i in range(size))


def test_the_image_goes_over_the_nvs_partition_from_a_private_file() -> None:
    chip = FlashStandIn()
    note = write_partition(chip, "nvs", image(), "esp-a")
    assert note == f"wrote {NVS_SIZE} bytes over partition nvs at 0x9000"
    assert chip.flash[NVS_AT:NVS_AT + NVS_SIZE] == image()
    assert chip.flash[:NVS_AT] == b"\xff" * NVS_AT  # nothing else touched
    assert chip.flash[NVS_AT + NVS_SIZE:NVS_AT + NVS_SIZE + 16] == b"\xff" * 16
    assert chip.seen == [(NVS_AT, 0o600, 0o700)]
    assert not chip.files[0].exists() and not chip.files[0].parent.exists()


@pytest.mark.parametrize("size", [NVS_SIZE - 4096, NVS_SIZE + 4096])
def test_an_image_of_another_size_is_refused_before_anything_is_written(size: int) -> None:
    chip = FlashStandIn()
    with pytest.raises(PartitionError) as err:
        write_partition(chip, "nvs", image(size), "esp-a")
    msg = str(err.value)
    assert f"board esp-a: the nvs image is {size} bytes" in msg, msg
    assert "partition at 0x9000 is 24576 bytes (0x6000): set the profile's nvs_size = 0x6000; " \
        "nothing was written" in msg, msg
    assert chip.seen == [] and chip.flash == FlashStandIn().flash


def test_a_build_without_an_nvs_partition_names_what_it_has() -> None:
    chip = FlashStandIn(partitions={"factory": TABLE["factory"], "otadata": TABLE["phy_init"]})
    with pytest.raises(PartitionError, match=r"board esp-a: the build's partition table has no "
                                             r"'nvs' partition; it has: factory, otadata"):
        write_partition(chip, "nvs", image(), "esp-a")
    empty = FlashStandIn(partitions={})
    with pytest.raises(PartitionError) as err:
        write_partition(empty, "nvs", image(), "esp-a")
    assert str(err.value).endswith("it has: none (no partition table in the build's "
                                   "flasher_args.json, or gen_esp32part.py could not read it)")
    assert chip.seen == empty.seen == []


def test_a_partition_table_that_cannot_be_read_says_how_to_read_it() -> None:
    chip = FlashStandIn(unreadable="Partition Tool not found. (Default: $IDF_PATH/components/"
                                   "partition_table/gen_esp32part.py)")
    with pytest.raises(PartitionError, match=r"cannot be read \(Partition Tool not found.*\); "
                                             r"ESP-IDF's gen_esp32part.py reads it: set "
                                             r"IDF_PATH or pass --part-tool"):
        write_partition(chip, "nvs", image(), "esp-a")


def test_a_write_that_fails_says_the_partition_may_be_partly_written() -> None:
    chip = FlashStandIn(fail_after=4096)
    with pytest.raises(PartitionError, match=r"board esp-a: writing the nvs partition at 0x9000 "
                                             r"failed: the port went away; it may be partly "
                                             r"written"):
        write_partition(chip, "nvs", image(), "esp-a")
    assert not chip.files[0].parent.exists()  # the image's file is gone all the same



@pytest.mark.parametrize("option", ["SECURE_FLASH_ENC_ENABLED", "NVS_ENCRYPTION"])
def test_a_build_with_encryption_takes_no_plain_image(option: str) -> None:
    chip = FlashStandIn(encrypted=option)
    with pytest.raises(PartitionError, match=rf"board esp-a: the build has {option} set: its "
                                             r"nvs partition needs an encrypted image, .*; "
                                             r"nothing was written"):
        write_partition(chip, "nvs", image(), "esp-a")
    assert chip.seen == []
