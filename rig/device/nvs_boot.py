"""The ESP-IDF way in (a device profile with `settings = "nvs-image"`): the cell's settings in
an NVS partition image made from the profile's CSV template by Espressif's generator
(rig/device/nvs_image.py), written over the board's `nvs` partition, then a reset; an esp-mqtt
app reads its broker URI, certificates and PSK from NVS at boot and connects by itself. No
console command sets anything (the hil-agent, standing for such an app on a virtual board, reads
the image with `--nvs`)."""

from __future__ import annotations

from typing import Any

from rig.device import nvs_image
from rig.device.console import Console
from rig.device.profile import Profile
from rig.device.provision import Setting
from rig.local.spans import work

# template placeholder -> the cell's setting it comes from (mqtt.server: see values())
FROM_SETTING = {
    "client_id": "mqtt.client_id",
    "ca_cert": "mqtt.ssl_ca_cert",
    "client_cert": "mqtt.ssl_cert",
    "client_key": "mqtt.ssl_key",
    "psk_identity": "mqtt.ssl_psk_identity",
    "psk_key": "mqtt.ssl_psk_key",
    "cipher_suites": "mqtt.ssl_cipher_suites",
}


def values(settings: list[Setting]) -> dict[str, str | None]:
    """Every placeholder's value for these settings; None where the cell has no such setting
    (its row stays out of the image)."""
    given = {s.key: s.value.decode() for s in settings}
    server = given.get("mqtt.server")
    host = port = None
    if server:
        host, _, port = server.rpartition(":")
        host = host.strip("[]")
    out: dict[str, str | None] = {
        "broker_uri": f"mqtts://{server}" if server else None,
        "broker_host": host, "broker_port": port}
    out.update({name: given.get(key) for name, key in FROM_SETTING.items()})
    return out


def provision(console: Console, driver: Any, profile: Profile, settings: list[Setting],
              boot_timeout: float) -> int:
    """Image, write, reset; returns where the new boot's lines start in console.lines."""
    image = nvs_image.make(profile.nvs_csv, values(settings), profile.nvs_size, profile.name)
    driver.write_nvs(console.dut, image)
    since = len(console.lines)
    problem = driver.restart(console.dut)
    assert not problem, f"board {console.board}: {problem}"
    with work("boot"), console.doing("booting with its NVS image"):
        console.wait_ready(boot_timeout)
    return since
