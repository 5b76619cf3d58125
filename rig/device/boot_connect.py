"""A firmware that connects by itself after a boot with its settings (a device profile with
`settings` other than `console`: Mongoose OS's mqtt.enable, an esp-mqtt app reading NVS): the
settings put on the board its own way and a reboot (rig/device/mongoose.py, nvs_boot.py), then
the outcome read from the firmware's own lines, and a publish through the profile's RPC
method."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from rig.device import mongoose, nvs_boot
from rig.device.console import Console, ConsoleTimeout, Reply, log_text
from rig.device.profile import Profile
from rig.device.provision import Setting
from rig.local.spans import work


def provision(console: Console, driver: Any, profile: Profile, settings: list[Setting],
              boot_timeout: float) -> int:
    """The settings on the board the profile's way, and the reboot that makes it connect;
    returns where that boot's lines start in console.lines (for `outcome`)."""
    if profile.settings == "nvs-image":
        return nvs_boot.provision(console, driver, profile, settings, boot_timeout)
    return mongoose.provision(console, profile, settings, boot_timeout)


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
    console.rpc_open()  # after a boot the channel is opened again, as mos does
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
