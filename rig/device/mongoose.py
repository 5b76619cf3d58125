"""The Mongoose OS way in (a device profile with `settings = "mongoose-rpc"`): settings as the
source articles put them on a device with the `mos` tool, over RPC frames on its UART
(rig/device/mos_rpc.py, Console.rpc), then a reboot after which the firmware connects by
itself (`mqtt.enable`), and a publish through the profile's RPC method.

- certificates and keys first go up as files (`mos put ca.pem`: FS.Put), and their settings
  name the files (`mqtt.ssl_ca_cert=ca.pem`), the profile's `rpc_files`;
- one Config.Set sets the mode's settings, clears the other modes' (null) and sets
  mqtt.enable; Config.Save {"reboot": true} keeps them and reboots;
- the connection's outcome is the firmware's own lines after that boot: the profile's
  connected line, or one of its refused lines.

What a Mongoose OS app cannot do is not asked of it: no console command is sent for the
settings, the connection or the publish (the rig's own cell set-up, e.g. the key export of a
capture, still talks to the hil-agent's console)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from rig.device.console import Console
from rig.device.profile import Profile
from rig.device.provision import Setting
from rig.local.spans import work

# the MQTT settings a cell sets or clears (the other modes' keys go with null)
MQTT_KEYS = ("mqtt.server", "mqtt.client_id", "mqtt.ssl_ca_cert", "mqtt.ssl_cert",
             "mqtt.ssl_key", "mqtt.ssl_psk_identity", "mqtt.ssl_psk_key",
             "mqtt.ssl_cipher_suites", "mqtt.keep_alive", "mqtt.reconnect_timeout_min",
             "mqtt.reconnect_timeout_max", "mqtt.max_queue_length", "mqtt.clean_session")
# settings Mongoose OS keeps as numbers or booleans: Config.Set gets them typed, as mos does
TYPED: dict[str, Callable[[str], Any]] = {
    "mqtt.keep_alive": int, "mqtt.max_queue_length": int,
    "mqtt.reconnect_timeout_min": float, "mqtt.reconnect_timeout_max": float,
    "mqtt.clean_session": lambda text: text == "true"}
FILE_CHUNK = 4096  # bytes of a file per FS.Put (as `mos put` sends them, appended)


def file_name(key: str) -> str:
    """The device file a setting's PEM goes to: mqtt.ssl_ca_cert -> ssl_ca_cert.pem."""
    return key.rsplit(".", 1)[-1] + ".pem"


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """{"mqtt.server": v} -> {"mqtt": {"server": v}}, as Config.Set takes it."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def provision(console: Console, profile: Profile, settings: list[Setting],
              boot_timeout: float) -> int:
    """Put the settings on the board the Mongoose OS way and reboot it; returns the index in
    console.lines where the new boot's lines start (for `outcome`)."""
    console.rpc_open()
    flat: dict[str, Any] = {key: None for key in MQTT_KEYS}
    for s in settings:
        if s.key in profile.rpc_files:
            name = file_name(s.key)
            for i in range(0, max(len(s.value), 1), FILE_CHUNK):
                console.rpc("FS.Put", {"filename": name, "append": i > 0,
                                       "data": base64.b64encode(s.value[i:i + FILE_CHUNK])
                                       .decode()})
            flat[s.key] = name
        else:
            flat[s.key] = TYPED.get(s.key, str)(s.value.decode())
    flat["mqtt.enable"] = True
    console.rpc("Config.Set", {"config": nested(flat)})
    start = len(console.lines)
    console.rpc("Config.Save", {"reboot": True})  # answered, then the reboot
    with work("boot"), console.doing("booting after Config.Save"):
        console.wait_ready(boot_timeout)
    return start


def disable(console: Console, boot_timeout: float) -> None:
    """mqtt.enable false, saved with a reboot: the app no longer connects (nor reconnects to a
    broker that is gone)."""
    console.rpc_open()
    console.rpc("Config.Set", {"config": {"mqtt": {"enable": False}}})
    console.rpc("Config.Save", {"reboot": True})
    with work("boot"), console.doing("booting after Config.Save"):
        console.wait_ready(boot_timeout)
