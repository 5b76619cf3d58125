"""Command lines for real third-party peers (mosquitto_pub), built from the same PKI."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from rig.tls import ClientCredentials


@dataclass(frozen=True)
class Target:
    host: str
    port: int


def mosquitto_pub_argv(
    target: Target,
    creds: ClientCredentials,
    topic: str,
    message: str,
    *,
    client_id: str = "hil-mosquitto-pub",
    qos: int = 1,
    psk_from_file: str | None = None,
) -> list[str]:
    """argv for `mosquitto_pub` in creds.mode. With `psk_from_file`, the key is read by the
    shell (`$(cat FILE)`) so a printed command line never shows the secret."""
    argv = ["mosquitto_pub", "-h", target.host, "-p", str(target.port), "-i", client_id,
            "-t", topic, "-m", message, "-q", str(qos)]
    if creds.mode == "psk":
        psk = f"$(cat {shlex.quote(psk_from_file)})" if psk_from_file else (creds.psk_hex or "")
        # mosquitto_pub has no maximum TLS version: against Mosquitto it speaks TLS 1.3 PSK.
        argv += ["--psk", psk, "--psk-identity", creds.psk_identity or ""]
    else:
        argv += ["--cafile", str(creds.cafile)]
        if creds.certfile and creds.keyfile:
            argv += ["--cert", str(creds.certfile), "--key", str(creds.keyfile)]
        if not creds.check_hostname:
            argv += ["--insecure"]
    return argv


def shell_line(argv: list[str]) -> str:
    """Quote for a POSIX shell, leaving a `$(cat FILE)` substitution intact."""
    return " ".join(
        f'"{a}"' if a.startswith("$(cat ") else shlex.quote(a) for a in argv
    )
