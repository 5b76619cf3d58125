"""What a board needs to know for one broker mode, pushed over its console.

One firmware image serves every mode: provisioning replaces the mode's settings (clearing the
others first), so rotating modes never reflashes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rig.config import HilConfig, Mode
from rig.device.console import Console, ConsoleError, Reply, value_digest
from rig.local.spans import work
from rig.pki import Pki

# settings the agent checks against each other: replaced together (firmware/README.md)
PAIRS = (("mqtt.ssl_cert", "mqtt.ssl_key"), ("http.ssl_cert", "http.ssl_key"))


@dataclass(frozen=True, repr=False, eq=False)
class Setting:
    """One console setting. Its repr (and so str, pytest's -l locals and assertion reports)
    shows the key and the value's length, never the value: keys, passwords and PSKs travel
    in these, and treating every key alike leaves nothing to forget. __eq__ is written out
    rather than generated because pytest explains a failed `==` of two dataclasses with a
    generated __eq__ by printing the differing fields' values."""

    key: str
    value: bytes

    def __repr__(self) -> str:
        return f"Setting(key={self.key!r}, value=<{len(self.value)} bytes>)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Setting):
            return NotImplemented
        return (self.key, self.value) == (other.key, other.value)

    def __hash__(self) -> int:
        return hash((self.key, self.value))


def mqtt_settings(config: HilConfig, pki: Pki, mode: Mode, port: int, *,
                  ca: str = "ca", client_cert: str | None = "device",
                  host: str | None = None) -> list[Setting]:
    """The mqtt.* settings for `mode` (names as in the Mongoose-OS articles)."""
    server = host or config.broker.host
    if ":" in server:
        server = f"[{server}]"
    out = [Setting("mqtt.server", f"{server}:{port}".encode()),
           Setting("mqtt.client_id", config.device.id.encode())]
    suites = config.modes.get(mode).device_cipher_suites
    if mode == "psk":
        out += [Setting("mqtt.ssl_psk_identity", config.device.psk_identity.encode()),
                Setting("mqtt.ssl_psk_key", pki.psk_hex().encode())]
    else:
        out.append(Setting("mqtt.ssl_ca_cert", pki.cert(ca).read_bytes()))
        if mode == "mutual" and client_cert:
            out += [Setting("mqtt.ssl_cert", pki.cert(client_cert).read_bytes()),
                    Setting("mqtt.ssl_key", pki.key(client_cert).read_bytes())]
    if suites:
        out.append(Setting("mqtt.ssl_cipher_suites", suites.encode()))
    return out


def provision(console: Console, settings: list[Setting]) -> None:
    """Make these the board's settings, and only these; each command's OK/ERR is checked.
    When the console knows what the board holds (Console.known: what it set since the boot),
    only the difference goes over the wire: keys to clear, values that changed. Otherwise
    every setting is cleared and these are pushed."""
    want = {s.key: s.value for s in settings}
    with console.doing(f"provisioning {', '.join(want)}"):
        known = console.known
        if known is None:
            console.send("config clear")
            console.set_many(dict(want))
            return
        changed = {k for k, v in want.items() if known.get(k) != value_digest(v)}
        for pair in PAIRS:  # a certificate and its key are replaced together
            if changed & set(pair):
                changed |= set(pair) & set(want)
        # a value that changes is cleared first: if the new one is refused, the board must
        # not go on with the old one
        gone = [k for k in known if k not in want or k in changed]
        errors = [r for r in console.send_many([console.command(f"config clear {k}")
                                                for k in gone]) if isinstance(r, ConsoleError)]
        if errors:
            raise errors[0]
        if changed:
            console.set_many({k: want[k] for k in want if k in changed})


def set_clock(console: Console) -> None:
    """Set the board's clock to this host's (Unix seconds): a chip has none until something
    sets it, and it checks certificate dates against it (firmware/README.md, "The board's
    clock"). Sent before every connect and server start."""
    with console.doing("setting its clock"):
        console.send(f"clock set {int(time.time())}")


def connect(console: Console, timeout: float, clock: bool = True) -> Reply:
    """`mqtt connect`, the board's clock set first (unless its profile says it needs none)."""
    if clock:
        set_clock(console)
    with work("mqtt"), console.doing("connecting to the broker"):
        return console.send("mqtt connect", timeout=timeout)
