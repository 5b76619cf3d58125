"""Host-side TLS client contexts for each broker mode (used by the observer and tests).

PSK needs OpenSSL's PSK callbacks: the standard library has them from Python 3.13; before that
sslpsk3's SSLPSKContext (an SSLContext subclass with the same `set_psk_client_callback`).
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rig.config import HilConfig, Mode
from rig.pki import Pki


@dataclass(frozen=True, eq=False)
class ClientCredentials:
    """What a host client presents in one mode. Defaults come from hil.toml + the PKI.
    The key is left out of repr; __eq__ is written out rather than generated because pytest
    explains a failed `==` of two dataclasses with a generated __eq__ by printing the
    differing fields' values, the key among them."""

    mode: Mode
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    psk_identity: str | None = None
    psk_hex: str | None = field(default=None, repr=False)  # secret
    check_hostname: bool = True

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClientCredentials):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())


def credentials(config: HilConfig, pki: Pki, mode: Mode, *, ca: str = "ca",
                client_cert: str | None = "device") -> ClientCredentials:
    """The device's own credentials for `mode` (the observer presents the same identity)."""
    if mode == "psk":
        return ClientCredentials(mode, psk_identity=config.device.psk_identity,
                                 psk_hex=pki.psk_hex(), check_hostname=False)
    if mode == "mutual" and client_cert:
        return ClientCredentials(mode, cafile=pki.cert(ca), certfile=pki.cert(client_cert),
                                 keyfile=pki.key(client_cert))
    return ClientCredentials(mode, cafile=pki.cert(ca))


def keylog_from_env(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """Export this context's TLS secrets to the file SSLKEYLOGFILE names, as
    ssl.create_default_context does (the rig sets it during a captured cell)."""
    path = os.environ.get("SSLKEYLOGFILE")
    if path and not sys.flags.ignore_environment:
        ctx.keylog_filename = path
    return ctx


def psk_context() -> ssl.SSLContext:
    if sys.version_info >= (3, 13):
        return keylog_from_env(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    import sslpsk3

    ctx: ssl.SSLContext = sslpsk3.SSLPSKContext(ssl.PROTOCOL_TLS_CLIENT)
    return keylog_from_env(ctx)


def client_context(creds: ClientCredentials) -> ssl.SSLContext:
    if creds.mode == "psk":
        if not creds.psk_identity or not creds.psk_hex:
            raise ValueError("psk mode needs an identity and a key")
        ctx = psk_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        # TLS 1.3 PSK through these callbacks fails with a session-context error; the device
        # speaks TLS 1.2 anyway (mbedTLS 2.28).
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("PSK")
        identity, key = creds.psk_identity, bytes.fromhex(creds.psk_hex)
        ctx.set_psk_client_callback(lambda _hint: (identity, key))  # type: ignore[attr-defined,unused-ignore]
        return ctx
    ctx = keylog_from_env(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    ctx.check_hostname = creds.check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    if creds.cafile:
        ctx.load_verify_locations(cafile=str(creds.cafile))
    if creds.certfile and creds.keyfile:
        ctx.load_cert_chain(str(creds.certfile), str(creds.keyfile))
    return ctx
