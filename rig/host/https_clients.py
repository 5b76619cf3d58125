"""Two real host peers for the device's HTTPS server: Python's `ssl` + `http.client`, and
`curl` with `--cacert`/`--cert`/`--key` as in the article."""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rig.config import HilConfig
from rig.errors import RigError
from rig.local.spans import work
from rig.pki import Pki


class HttpsClientError(RigError):
    """A host peer could not run (e.g. curl is missing)."""


@dataclass(frozen=True)
class Client:
    """What a host peer presents: the CA it trusts (None: the system's, which lacks ours), the
    name it expects, and optionally a client certificate."""

    cafile: Path | None
    server_name: str
    certfile: Path | None = None
    keyfile: Path | None = None


def client(config: HilConfig, pki: Pki, *, ca: str | None = "ca", cert: str | None = None,
           server_name: str | None = None) -> Client:
    return Client(pki.cert(ca) if ca else None, server_name or config.device.web_names[0],
                  pki.cert(cert) if cert else None, pki.key(cert) if cert else None)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    handshake_ms: float
    cipher: str


def client_context(who: Client) -> ssl.SSLContext:
    """Python's TLS client context for `who`: its CA (or the system's), its certificate."""
    ctx = ssl.create_default_context(cafile=str(who.cafile) if who.cafile else None)
    if who.certfile and who.keyfile:
        ctx.load_cert_chain(str(who.certfile), str(who.keyfile))
    return ctx


def python_request(address: str, port: int, who: Client, path: str, *, method: str = "GET",
                   timeout: float = 10.0) -> Response:
    """One request over a fresh TLS connection (Python ssl + http.client). TLS and HTTP errors
    propagate as ssl.SSLError / OSError / http.client.HTTPException."""
    ctx = client_context(who)
    with work("https"), socket.create_connection((address, port), timeout=timeout) as raw:
        t0 = time.perf_counter()
        with ctx.wrap_socket(raw, server_hostname=who.server_name) as tls:
            handshake_ms = (time.perf_counter() - t0) * 1000
            cipher = tls.cipher()
            host = f"{who.server_name}:{port}"
            tls.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hil-rig\r\n"
                        "Connection: close\r\n\r\n".encode())
            resp = http.client.HTTPResponse(tls, method=method)
            resp.begin()
            body = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body,
                            handshake_ms, cipher[0] if cipher else "")


@dataclass
class CurlResult:
    exit_code: int
    status: int  # 0 when no HTTP response came
    body: bytes
    stderr: str
    argv: list[str]


def curl_argv(address: str, port: int, who: Client, path: str, out: Path) -> list[str]:
    """The article's curl line (`--cacert ca.crt --cert c.crt --cert-type PEM --key c.key`),
    pinned to `address` with --resolve so the name in the URL is the one the client checks."""
    curl = shutil.which("curl")
    if curl is None:
        raise HttpsClientError("curl is not installed (apt-get install curl)")
    argv = [curl, "-sS", "--noproxy", "*", "--max-time", "10", "-o", str(out),
            "-w", "%{http_code}", "--resolve", f"{who.server_name}:{port}:{address}"]
    if who.cafile:
        argv += ["--cacert", str(who.cafile)]
    if who.certfile and who.keyfile:
        argv += ["--cert", str(who.certfile), "--cert-type", "PEM", "--key", str(who.keyfile)]
    return [*argv, f"https://{who.server_name}:{port}{path}"]


def curl_request(address: str, port: int, who: Client, path: str) -> CurlResult:
    with tempfile.TemporaryDirectory(prefix="hil-curl-") as tmp:
        out = Path(tmp) / "body"
        argv = curl_argv(address, port, who, path, out)
        with work("https"):
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                                  check=False)
        body = out.read_bytes() if out.exists() else b""
    code = proc.stdout.strip()
    return CurlResult(proc.returncode, int(code) if code.isdigit() else 0, body,
                      proc.stderr.strip(), argv)
