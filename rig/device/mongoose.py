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
import contextlib
import time
from collections.abc import Callable
from typing import Any

from rig.device.console import Console, ConsoleTimeout, Reply, log_text
from rig.device.profile import Profile
from rig.device.provision import Setting
from rig.local.spans import work

# why a capture of such a firmware's cell does not decrypt (a cell property, capture_keys)
NO_KEYS = ("the firmware connects by itself at boot, before the rig can ask it for its TLS "
           "secrets: a capture of this cell does not decrypt")
# the MQTT settings a cell sets or clears (the other modes' keys go with null)
MQTT_KEYS = ("mqtt.server", "mqtt.client_id", "mqtt.ssl_ca_cert", "mqtt.ssl_cert",
             "mqtt.ssl_key", "mqtt.ssl_psk_identity", "mqtt.ssl_psk_key",
             "mqtt.ssl_cipher_suites")
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
            flat[s.key] = s.value.decode()
    flat["mqtt.enable"] = True
    console.rpc("Config.Set", {"config": nested(flat)})
    start = len(console.lines)
    console.rpc("Config.Save", {"reboot": True})  # answered, then the reboot
    with console.doing("booting after Config.Save"):
        console.wait_ready(boot_timeout)
    return start


def wait_lines(console: Console, since: int, done: Callable[[list[str]], bool],
               timeout: float, what: str) -> list[str]:
    """The texts of the board's log lines from console.lines[since] on, once `done` says they
    are enough (lines read meanwhile are kept as the console keeps any); ConsoleTimeout naming
    `what` when they are not within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        texts = [t for t in (log_text(ln) for ln in console.lines[since:]) if t is not None]
        if done(texts):
            return texts
        left = deadline - time.monotonic()
        if left <= 0:
            raise ConsoleTimeout(f"board {console.board}: no {what} within {timeout:g} s; its "
                                 f"lines: {texts}", reason="timeout")
        with contextlib.suppress(ConsoleTimeout):
            console.expect_log("", timeout=left)


def outcome(console: Console, profile: Profile, since: int, timeout: float) -> Reply:
    """The firmware's own lines from the boot at `since` until its connected line or one of its
    refused lines, as a Reply (its `logs`); ConsoleTimeout when neither comes in time."""
    connected = profile.lines.connected

    def decided(texts: list[str]) -> bool:
        return any(connected.search(t) for t in texts) or bool(profile.refusal(texts))

    with work("mqtt"), console.doing("waiting for the board to connect by itself"):
        texts = wait_lines(console, since, decided, timeout,
                           f"{connected.pattern!r} nor a refused line of {profile} after its boot")
    return Reply("(connects at boot: mqtt.enable)", logs=texts)


def publish(console: Console, profile: Profile, topic: str, message: str,
            timeout: float) -> None:
    """The profile's publish method (MQTT.Pub, QoS 1), then its published line for this topic
    and message when the profile has one."""
    since = len(console.lines)
    result = console.rpc(profile.rpc_publish, {"topic": topic, "message": message, "qos": 1})
    if isinstance(result, dict) and result.get("queued") is False:
        raise AssertionError(f"{profile.rpc_publish} did not queue the publish: {result}")
    published = profile.lines.published
    if published is None:
        return

    def seen(texts: list[str]) -> bool:
        return any((m := published.search(t)) is not None and
                   (m.group("topic"), m.group("message")) == (topic, message) for t in texts)

    wait_lines(console, since, seen, timeout, f"{published.pattern!r} for {topic} {message}")
