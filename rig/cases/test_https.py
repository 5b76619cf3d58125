"""The device as a TLS server (article CTC-092): the agent's HTTPS server in server-only
(`https`) and mutual (`https-mutual`) mode, against two real peers, Python's ssl/http.client and
curl. Each refusal is asserted on the client's error and the device's log line together.

Each board's server listens on a free port at the board's own address: 127.0.0.1 for a virtual
board; for a physical one hil.toml `address` or the IP it reports over Wi-Fi (skipped, with the
reason, when it has none). That address must be in [device] web_names."""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
import ssl
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from rig.boards import BoardDriver, BoardUnavailable
from rig.broker.mosquitto import free_port
from rig.config import HilConfig, WebMode
from rig.device.console import Console, ConsoleError
from rig.device.https_server import http_settings, start_server
from rig.device.provision import provision
from rig.host.cipher_suites import mbedtls_name
from rig.host.https_clients import Client, client, client_context, curl_request, python_request
from rig.local.spans import work
from rig.pki import Pki


@dataclass
class Server:
    console: Console
    mode: WebMode
    address: str
    port: int
    version: str


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # a name
        return False


@pytest.fixture(scope="session")
def web_ports() -> dict[str, int]:
    """board name -> the port its HTTPS server listens on in every cell of the session, so
    that the capture running on that port goes on (rig/host/capture.py Recorder): for a board
    on this host picked free at its first cell, for one elsewhere the port it chose then."""
    return {}


@pytest.fixture
def server(hil_config: HilConfig, pki: Pki, web_mode: WebMode, board_console: Console,
           board_driver: BoardDriver, web_ports: dict[str, int],
           capture_port: Callable[[int, str], None]) -> Iterator[Server]:
    """The board's HTTPS server, provisioned for `web_mode`, listening on its own address
    and the port of web_ports (the first time, a board elsewhere picks its own), started."""
    try:
        address = board_driver.address(board_console)
    except BoardUnavailable as exc:
        pytest.skip(str(exc))
    if _loopback(address) and board_console.board not in web_ports:
        web_ports[board_console.board] = free_port(address)
    preferred = web_ports.get(board_console.board, 0)
    provision(board_console, http_settings(pki, web_mode, f"{address}:{preferred}"))
    try:
        port = start_server(board_console, web_mode, hil_config.timeouts.command)
    except ConsoleError as exc:
        if not preferred or "bind" not in exc.reason:
            raise
        # taken since (the port is free only while no server of ours listens): any free one
        provision(board_console, http_settings(pki, web_mode, f"{address}:0"))
        port = start_server(board_console, web_mode, hil_config.timeouts.command)
    web_ports[board_console.board] = port
    capture_port(port, "http")  # into the cell's capture, if any
    version = dict(line.split("=", 1) for line in board_console.send("version").data)["version"]
    yield Server(board_console, web_mode, address, port, version)
    board_console.send("http stop")


def good_client(hil_config: HilConfig, pki: Pki, mode: WebMode) -> Client:
    return client(hil_config, pki, cert="host-client" if mode == "https-mutual" else None)


def request_line(s: Server, path: str, status: int) -> str:
    """The device's log line for one request (with the client's CN in mutual mode)."""
    line = f"HTTP GET {path} {status}"
    return line + (" cn=hil-host" if s.mode == "https-mutual" else "")


def test_serves_page_and_rpc(hil_config: HilConfig, pki: Pki, server: Server,
                             record_property: Callable[[str, object], None]) -> None:
    who = good_client(hil_config, pki, server.mode)

    page = python_request(server.address, server.port, who, "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert b"hil-agent" in page.body
    server.console.expect_log(request_line(server, "/", 200))

    info = python_request(server.address, server.port, who, "/rpc/Sys.GetInfo")
    assert info.status == 200 and info.headers["content-type"].startswith("application/json")
    data = json.loads(info.body)
    assert data["fw_version"] == server.version and data["app"] == "hil-agent"
    assert isinstance(data["uptime"], int)
    server.console.expect_log(request_line(server, "/rpc/Sys.GetInfo", 200))

    # curl, as in the article: --cacert (and --cert/--key in mutual mode)
    listing = curl_request(server.address, server.port, who, "/rpc/FS.List")
    assert listing.exit_code == 0, listing.stderr
    assert listing.status == 200
    files = json.loads(listing.body)
    assert "index.html" in files and "conf/http.ssl_cert" in files
    assert not any("ssl_key" in f and "=" in f for f in files)
    server.console.expect_log(request_line(server, "/rpc/FS.List", 200))

    # handshake cost of this mode (median of 5 fresh connections): single vs mutual
    times = [python_request(server.address, server.port, who, "/").handshake_ms for _ in range(5)]
    record_property("handshake_ms", round(statistics.median(times), 1))
    record_property("cipher_suite", mbedtls_name(info.cipher))
    assert server.console.status()["http"] == f"listening {server.address}:{server.port}"


@dataclass(frozen=True)
class Refusal:
    """One wrong client: what differs from a good one, the error both peers must report, curl's
    exit code, and the device's log line for curl and for Python (alternatives: any of them).

    Python's ssl module, when it rejects the device's certificate, closes right after its alert,
    and the reset usually overtakes the alert: the device then logs that the client closed the
    connection. curl's alert usually arrives; but curl rejects the certificate as soon as it has
    it, so when the device is still computing its ServerKeyExchange (seen on a loaded runner:
    48 ms on the esp board) it writes that after curl closed, curl's kernel answers with a
    reset, and Linux then gives the device ECONNRESET before the queued alert: the same
    "client closed the connection" (a capture of such a cell shows the alert, then the reset).
    A wrong host name is checked by curl after the handshake (the device sees a client leave
    before sending a request) and by Python inside it."""

    change: dict[str, str | None]
    client_says: str
    curl_exit: int
    device_for_curl: tuple[str, ...]
    device_for_python: tuple[str, ...]


CLOSED = "HTTP TLS handshake failed: client closed the connection"
REFUSALS: dict[tuple[WebMode, str], Refusal] = {
    # server-only: the client does not know the device's CA -> "unknown issuer"
    ("https", "no-ca"): Refusal(
        {"ca": None}, "unable to get local issuer certificate", 60,
        ("HTTP TLS handshake failed: client sent alert 48 unknown_ca", CLOSED),
        ("HTTP TLS handshake failed: client sent alert 48 unknown_ca", CLOSED)),
    # the client expects another name than the certificate's -> name mismatch
    ("https", "wrong-name"): Refusal(
        {"server_name": "not-the-device.invalid"}, "not-the-device.invalid", 60,
        ("closed the connection before a complete request",),
        ("HTTP TLS handshake failed: client sent alert", CLOSED)),
    # mutual: no client certificate -> the device says why
    ("https-mutual", "no-cert"): Refusal(
        {"cert": None}, "alert handshake failure", 35,
        ("HTTP TLS handshake failed: client has no certificate",),
        ("HTTP TLS handshake failed: client has no certificate",)),
    # mutual: a client certificate from another CA
    ("https-mutual", "other-ca"): Refusal(
        {"cert": "other-host-client"}, "alert unknown ca", 35,
        ("HTTP TLS handshake failed: client certificate not trusted: "
         "The certificate is not correctly signed by the trusted CA",),
        ("HTTP TLS handshake failed: client certificate not trusted: "
         "The certificate is not correctly signed by the trusted CA",)),
}


def any_of(texts: tuple[str, ...]) -> str:
    return "(?:" + "|".join(re.escape(t) for t in texts) + ")"


@pytest.mark.parametrize(("web_mode", "web_case"), list(REFUSALS))
def test_refuses(hil_config: HilConfig, pki: Pki, server: Server, web_case: str,
                 record_property: Callable[[str, object], None]) -> None:
    r = REFUSALS[(server.mode, web_case)]
    kwargs: dict[str, str | None] = {
        "ca": "ca", "server_name": None,
        "cert": "host-client" if server.mode == "https-mutual" else None, **r.change}
    who = client(hil_config, pki, ca=kwargs["ca"], cert=kwargs["cert"],
                 server_name=kwargs["server_name"])

    with pytest.raises((ssl.SSLError, ConnectionError)) as info:
        python_request(server.address, server.port, who, "/rpc/Sys.GetInfo")
    assert r.client_says in str(info.value), str(info.value)
    server.console.expect_log(any_of(r.device_for_python))

    result = curl_request(server.address, server.port, who, "/rpc/FS.List")
    assert result.exit_code == r.curl_exit, (result.exit_code, result.stderr)
    assert result.status == 0 and result.body == b""
    assert r.client_says in result.stderr, result.stderr
    record_property("device_reason", server.console.expect_log(any_of(r.device_for_curl)))
    record_property("client_reason", f"curl: {result.stderr}")

    # the refused clients did not break anything: a good one is served next
    good_one = good_client(hil_config, pki, server.mode)
    good = python_request(server.address, server.port, good_one, "/")
    assert good.status == 200


def raw_tls(server: Server, hil_config: HilConfig, pki: Pki, request: bytes) -> bytes:
    """Sends raw bytes over a good TLS connection; returns everything the device answers."""
    who = good_client(hil_config, pki, server.mode)
    ctx = client_context(who)
    with work("https"), socket.create_connection((server.address, server.port),
                                                 timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=who.server_name) as tls:
        tls.sendall(request)
        chunks = []
        while True:
            try:
                chunk = tls.recv(4096)
            except (ssl.SSLError, ConnectionError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def status_of(response: bytes) -> int:
    head = response.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) >= 2 and head[1].isdigit() else 0


def test_bad_requests_are_answered(hil_config: HilConfig, pki: Pki, server: Server) -> None:
    assert status_of(raw_tls(server, hil_config, pki,
                             b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")) == 404
    server.console.expect_log(request_line(server, "/nope", 404))
    assert status_of(raw_tls(server, hil_config, pki, b"NOT-HTTP\r\n\r\n")) == 400
    server.console.expect_log("HTTP bad request 400")
    huge = b"GET / HTTP/1.1\r\nX-Filler: " + b"a" * 8000 + b"\r\n\r\n"
    assert status_of(raw_tls(server, hil_config, pki, huge)) in (431, 0)
    server.console.expect_log("HTTP bad request 431")
    body = b"POST /rpc/Sys.GetInfo HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"
    assert status_of(raw_tls(server, hil_config, pki, body)) == 413
    assert status_of(raw_tls(server, hil_config, pki,
                             b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n")) == 405
    # still serving
    who = good_client(hil_config, pki, server.mode)
    assert python_request(server.address, server.port, who, "/rpc/Sys.GetInfo").status == 200


def test_stalled_clients_do_not_block(hil_config: HilConfig, pki: Pki, server: Server) -> None:
    who = good_client(hil_config, pki, server.mode)
    # one client connects and says nothing; another drops half-way through its ClientHello
    with socket.create_connection((server.address, server.port), timeout=5) as silent:
        with socket.create_connection((server.address, server.port), timeout=5) as dropper:
            dropper.sendall(bytes.fromhex("160303005c010000580303") + b"\x00" * 20)
        t0 = time.perf_counter()
        assert server.console.status()["http"].startswith("listening")  # console answers now
        assert time.perf_counter() - t0 < 1.0
        # and other clients are served meanwhile, several in a row
        assert python_request(server.address, server.port, who, "/").status == 200
        # ...beside the silent client, not after dropping it: its connection is still open
        # (the server's 5 s handshake deadline is not up), with nothing sent to it
        silent.setblocking(False)
        with pytest.raises(BlockingIOError):  # b"" would be a close, an OSError a reset
            silent.recv(1)
        for _ in range(9):
            assert python_request(server.address, server.port, who, "/").status == 200
    served = int(server.console.status()["http_requests"])
    assert served >= 10


def test_http_client_sees_clean_response(hil_config: HilConfig, pki: Pki,
                                          server: Server) -> None:
    """http.client's own HTTPSConnection (not our raw request): headers, length, close."""
    who = good_client(hil_config, pki, server.mode)
    ctx = client_context(who)
    # by IP: the device's certificate has 127.0.0.1 as an IP SAN too
    conn = http.client.HTTPSConnection(server.address, server.port, context=ctx, timeout=10)
    with work("https"):
        conn.request("HEAD", "/rpc/Sys.GetInfo")
        resp = conn.getresponse()
    assert resp.status == 200
    assert int(resp.getheader("Content-Length", "-1")) > 0
    assert resp.read() == b""
    assert resp.getheader("Connection", "").lower() == "close"
    conn.close()
