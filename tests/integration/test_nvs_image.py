"""rig/device/nvs_image.py with Espressif's real generator (esp-idf-nvs-partition-gen): an image
of a cell's settings from a profile's CSV template, every bad input named, nothing secret left
on disk or in an error."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from rig.device.nvs_image import NvsImageError, make, placeholders

PEM = ("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2lkZXItdGVzdC1jZXJ0aWZpY2F0ZTAK\n"
       "-----END CERTIFICATE-----\n")
PSK = "8f2a6c1d9e4b7a0f3c5d2e1b6a9c8d7e"
TEMPLATE = """key,type,encoding,value
hil,namespace,,
broker_uri,data,string,{broker_uri}
client_id,data,string,{client_id}
ca_cert,file,string,{ca_cert}
psk_identity,data,string,{psk_identity}
psk_key,data,hex2bin,{psk_key}
retries,data,u8,3
"""
VALUES = {"broker_uri": "mqtts://127.0.0.1:8883", "client_id": "hil-device-01",
          "ca_cert": PEM, "psk_identity": "hil-device-01", "psk_key": PSK}


def private_dirs() -> set[Path]:
    """This process's image directories (another run on the machine has its own)."""
    return set((Path(tempfile.gettempdir()) / f"hil-{os.getuid()}").glob(
        f"{os.getpid()}-nvs-image-*"))


def test_an_image_holds_the_cells_settings_and_nothing_stays_on_disk() -> None:
    before = private_dirs()
    image = make(TEMPLATE, VALUES, 0x6000, "esp-idf-app")
    assert len(image) == 0x6000
    # NVS keeps keys, strings and blobs as they are: the generator put them in
    for piece in (b"broker_uri", b"mqtts://127.0.0.1:8883", b"hil-device-01", PEM.encode(),
                  bytes.fromhex(PSK)):
        assert piece in image, piece
    assert placeholders(TEMPLATE, "p") == {"broker_uri", "client_id", "ca_cert",
                                           "psk_identity", "psk_key"}
    assert private_dirs() == before


@pytest.mark.parametrize("template, values, size, says", [
    ("key,type,value\nhil,namespace,\n", VALUES, 0x6000, "header is 'key,type,value'"),
    (TEMPLATE.replace("broker_uri,data", "a_key_that_is_too_long,data"), VALUES, 0x6000,
     "line 3: key 'a_key_that_is_too_long' is longer than 15 characters"),
    (TEMPLATE.replace("{client_id}", "{device_name}"), VALUES, 0x6000,
     "line 4: unknown placeholder {device_name}"),
    (TEMPLATE.replace("{client_id}", "id-{client_id}"), VALUES, 0x6000,
     "a placeholder is a whole value"),
    (TEMPLATE + "client_cert,file,string,{client_cert}\n", VALUES, 0x6000,
     "asks for {client_cert}, which this cell does not have"),  # not even None
    (TEMPLATE, VALUES, 0x5000 + 1, "not a positive multiple of 4096"),
    (TEMPLATE.replace("retries,data,u8,3", "retries,data,u8,300"), VALUES, 0x6000,
     "esp-idf-nvs-partition-gen refused the settings"),
    (TEMPLATE + "big,file,string,{ca_cert}\n", {**VALUES, "ca_cert": PEM * 200}, 0x6000,
     "exceeds max allowed length `4000` bytes for key `ca_cert`"),
    (TEMPLATE + "".join(f"big{i},file,string,{{ca_cert}}\n" for i in range(6)),
     {**VALUES, "ca_cert": PEM * 20}, 0x3000, "is less than the size of data in csv"),
])
def test_a_bad_template_or_value_is_named(template: str, values: dict[str, str], size: int,
                                          says: str) -> None:
    before = private_dirs()
    with pytest.raises(NvsImageError) as info:
        make(template, values, size, "esp-idf-app")
    msg = str(info.value)
    assert msg.startswith("profile esp-idf-app: ") and says in msg, msg
    assert PSK not in msg and "MIIBszCC" not in msg, msg  # no value of the cell in it
    assert private_dirs() == before


def test_the_generators_complaint_never_shows_a_secret() -> None:
    with pytest.raises(NvsImageError) as info:  # hex2bin of a key that is not hex
        make(TEMPLATE, {**VALUES, "psk_key": "zz" + PSK}, 0x6000, "esp-idf-app")
    assert "refused" in str(info.value) and PSK not in str(info.value), str(info.value)


def test_a_row_whose_setting_the_cell_has_not_stays_out() -> None:
    """A psk cell has no CA certificate: its row is not in the image (the app finds no key)."""
    with_ca = make(TEMPLATE, VALUES, 0x6000, "esp-idf-app")
    without = make(TEMPLATE, {**VALUES, "ca_cert": None}, 0x6000, "esp-idf-app")
    assert b"ca_cert" in with_ca and b"ca_cert" not in without
    assert PEM.encode() not in without and b"broker_uri" in without
