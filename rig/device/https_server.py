"""The device as a TLS server: provisioning its HTTPS server (Mongoose-OS `http.*` settings)
and starting it over the console. Modes: `https` (server-only: the client checks the device's
certificate) and `https-mutual` (the device also requires and verifies a client certificate).
The host's peers for it are in rig/host/https_clients.py."""

from __future__ import annotations

import re

from rig.config import WebMode
from rig.device.console import Console
from rig.device.provision import Setting, set_clock
from rig.errors import RigError
from rig.pki import Pki

STARTED_RE = re.compile(
    r"^HTTP server started on \[(\d+)\] \(SSL(, client certificate required)?\)$")


class WebError(RigError):
    pass


def http_settings(pki: Pki, mode: WebMode, listen: str) -> list[Setting]:
    """The http.* settings (Mongoose-OS names) for `mode`, listening on `listen`."""
    out = [Setting("http.listen_addr", listen.encode()),
           Setting("http.ssl_cert", pki.cert("device-web").read_bytes()),
           Setting("http.ssl_key", pki.key("device-web").read_bytes())]
    if mode == "https-mutual":
        out.append(Setting("http.ssl_ca_cert", pki.cert("ca").read_bytes()))
    return out


def start_server(console: Console, mode: WebMode, timeout: float) -> int:
    """`http start` (the board's clock set first: it checks client certificates' dates);
    checks the started line matches the mode and returns the port."""
    set_clock(console)
    reply = console.send("http start", timeout=timeout)
    m = reply.log(STARTED_RE.pattern)
    if bool(m.group(2)) != (mode == "https-mutual"):
        raise WebError(f"board {console.board}: `{m.group(0)}` does not match mode {mode}")
    data = dict(line.split("=", 1) for line in reply.data if "=" in line)
    if data.get("http.port") != m.group(1):
        raise WebError(f"board {console.board}: http.port={data.get('http.port')} but the log "
                       f"says [{m.group(1)}]")
    return int(m.group(1))
