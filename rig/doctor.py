"""`hil doctor`: what this runner has, and what to do about what it lacks."""

from __future__ import annotations

import errno
import importlib.metadata
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rig.broker import keylog
from rig.broker.mosquitto import find_program
from rig.config import Board, ConfigError, HilConfig, load
from rig.device.profile import check as check_profiles
from rig.host.capture import how_to_permit
from rig.host.capture import permitted as capture_permitted

MBEDTLS_HEADER_DIRS = (Path("/usr/include"), Path("/usr/local/include"))


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "MISSING" if self.required else "warn"


def _version(argv: list[str], pattern: str = r"(\d+\.\d+(?:\.\d+)?)") -> str | None:
    try:
        out = subprocess.run([find_program(argv[0]) or argv[0], *argv[1:]], capture_output=True,
                             text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(1) if m else "present"


def _tool(name: str, argv: list[str], fix: str, required: bool = True,
          what: str = "", quick: bool = False) -> Check:
    """Whether the tool is on PATH, with its version (`argv` prints it) unless `quick`."""
    path = find_program(argv[0])
    label = f"{name}{f' ({what})' if what else ''}"
    if path is None:
        return Check(label, False, f"{argv[0]} not on PATH", fix, required)
    version = "" if quick else f"{_version(argv) or '?'} "
    return Check(label, True, f"{version}at {path}", required=required)


def _package(dist: str, required: bool = True) -> Check:
    try:
        ver = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return Check(f"python: {dist}", False, "not installed",
                     "run the README's set-up command (installs into .venv)", required)
    return Check(f"python: {dist}", True, ver, required=required)


def mbedtls_version() -> str | None:
    for d in MBEDTLS_HEADER_DIRS:
        header = d / "mbedtls" / "version.h"
        if header.exists():
            m = re.search(r'MBEDTLS_VERSION_STRING\s+"([^"]+)"', header.read_text())
            return m.group(1) if m else "present"
    return None


def _bind_check(config: HilConfig) -> Check:
    bind = config.broker.bind
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((bind, 0))
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            return Check("broker bind address", False,
                         f"no local interface has {bind} ([broker] bind in hil.toml)",
                         "set [broker] bind to an address of this machine (ip -br addr)")
        return Check("broker bind address", False, f"cannot bind {bind}: {exc.strerror}")
    return Check("broker bind address", True, f"{bind} is local; boards dial "
                 f"{config.broker.host}")


def _serial_ports() -> Check:
    try:
        from serial.tools import list_ports
    except ImportError:
        return Check("serial ports", False, "pyserial missing", "run the README's set-up command")
    ports = [p.device for p in list_ports.comports()]
    detail = ", ".join(ports) if ports else "none (virtual boards only)"
    return Check("serial ports", True, detail, required=False)


def _broker_keys() -> Check:
    """The broker's key-log shim builds (rig/broker/keylog.py): without it a capture of a
    firmware that exports no secrets of its own does not decrypt."""
    try:
        path = keylog.shim()
    except keylog.KeylogUnavailable as exc:
        return Check("broker TLS secrets", False, str(exc), "apt-get install gcc libssl-dev",
                     required=False)
    return Check("broker TLS secrets", True, f"key-log shim {path.name} (captures decrypt the "
                 "broker's side)", required=False)


def _boards(config: HilConfig) -> list[Check]:
    out = []
    for b in config.boards:
        if b.kind == "esp32" and b.port and not b.port.startswith(("rfc2217://", "socket://")):
            exists = Path(b.port).exists()
            out.append(Check(f"board {b.name}", exists, f"esp32 on {b.port}" if exists else
                             f"{b.port} does not exist", "plug the board in or fix [[boards]] port",
                             required=False))
        else:
            kind = f"virtual {b.variant}" if b.kind == "virtual" else b.kind
            out.append(Check(f"board {b.name}", True, kind, required=False))
        if b.kind == "esp32" and b.address and b.address not in config.device.web_names:
            out.append(Check(f"board {b.name} address", False,
                             f"{b.address} is not in [device] web_names: HTTPS clients will "
                             "refuse the device's certificate", "add it to web_names",
                             required=False))
    interfaces = sorted({"lo" if b.kind == "virtual" else "any" for b in config.boards})
    for interface in interfaces:
        ok, detail = capture_permitted(interface)
        out.append(Check(f"capture on {interface}", ok, detail,
                         "" if ok else how_to_permit(), required=False))
    out.append(_broker_keys())
    if any(b.kind == "virtual" and b.variant == "esp" and not b.build_dir
           for b in config.boards):
        out.append(_m32_check())
    farm = [b for b in config.boards if b.on_farm]
    if farm:
        out.append(_labgrid(config, farm))
    physical = [b for b in config.boards if b.kind == "esp32"]
    remote_local = all(b.port.startswith("rfc2217://127.0.0.1") for b in physical)
    if physical and not remote_local and _is_loopback(config.broker.host):
        out.append(Check("broker host for boards", False,
                         f"esp32 boards would dial {config.broker.host}, which is themselves",
                         "set [broker] host and bind to this machine's LAN address",
                         required=False))
    if physical and os.environ.get("ESPPORT"):
        out.append(Check("ESPPORT", False, f"set ({os.environ['ESPPORT']}): pytest-embedded "
                         "would open it for every board, so the rig refuses it",
                         "unset ESPPORT; hil.toml pins each board's port", required=False))
    w = config.wifi
    if w.ssid_env:
        missing = w.missing_env()
        out.append(Check("wifi credentials", not missing,
                         f"missing environment variable(s): {', '.join(missing)}" if missing
                         else f"from ${w.ssid_env} / ${w.password_env} (values not shown)",
                         "export them (CI: from secrets)", required=False))
    return out


def _labgrid(config: HilConfig, farm: list[Board]) -> Check:
    """The coordinator answers, and each place named in hil.toml exists; who holds it."""
    from rig.boards.farm import FarmError, LabgridClient

    address = config.labgrid.address
    try:
        client = LabgridClient(address)
        known = set(client.run("places").split())
        seen = []
        for b in farm:
            if not b.place:
                tags = ", ".join(f"{k}={v}" for k, v in sorted(b.tags.items()))
                seen.append(f"{b.name}: any place with {tags} (reserved at the run's start)")
            elif b.place not in known:
                return Check("labgrid", False, f"coordinator {address} has no place "
                             f"{b.place} (board {b.name})",
                             f"labgrid-client -x {address} -p {b.place} create, then add-match",
                             required=False)
            else:
                holder = client.show(b.place).acquired
                seen.append(f"{b.name}: place {b.place} "
                            f"({'acquired by ' + holder if holder else 'free'})")
    except FarmError as exc:
        return Check("labgrid", False, str(exc), "start the coordinator, or fix hil.toml "
                     "[labgrid] coordinator / $LG_COORDINATOR", required=False)
    return Check("labgrid", True, f"coordinator {address}; " + "; ".join(seen),
                 required=False)


def _m32_check() -> Check:
    """An esp virtual board is built 32-bit (gcc -m32, like the chip's ILP32): can cc do it?"""
    label = "32-bit build (esp board)"
    if shutil.which("cc") is None:
        return Check(label, False, "cc not on PATH", "apt-get install gcc gcc-multilib")
    try:
        proc = subprocess.run(["cc", "-m32", "-x", "c", "-", "-o", os.devnull],
                              input="int main(void) { return 0; }\n", capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check(label, False, f"cc -m32 failed to run: {exc}", "apt-get install gcc-multilib")
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["?"])[0]
        return Check(label, False, f"cc -m32 cannot link: {first}", "apt-get install gcc-multilib")
    return Check(label, True, "cc -m32 links (mbedTLS 3.6 is fetched and built at first use)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_checks(config_path: Path) -> tuple[list[Check], HilConfig | None]:
    """`hil doctor`: the runner's checks and hil.toml's, loaded here (an invalid hil.toml is a
    row of the table, not an error); the config is None when it is invalid."""
    checks = _runner_checks()
    try:
        config = load(config_path)
        check_profiles(config)
    except ConfigError as exc:
        checks.append(Check("hil.toml", False, str(exc), "fix the key named above"))
        return checks, None
    return checks + _config_checks(config), config


def checks_for(config: HilConfig, quick: bool = False) -> list[Check]:
    """The same checks for a hil.toml already loaded (`hil run`: read once). quick: only the
    required rows, without the tools' versions (`hil run` before each run: ~10 ms, not the
    ~170 ms of running every tool)."""
    checks = _runner_checks(quick) + _config_checks(config, quick)
    return [c for c in checks if c.required] if quick else checks


def _runner_checks(quick: bool = False) -> list[Check]:
    """What the runner has: Python, the tools, the mbedTLS headers, the packages, serial
    ports."""
    checks = [
        Check("python", sys.version_info >= (3, 11), sys.version.split()[0],
              "Python 3.11 or newer is needed"),
        _tool("mosquitto", ["mosquitto", "-h"], "apt-get install mosquitto", what="broker",
              quick=quick),
        _tool("mosquitto_pub", ["mosquitto_pub", "--help"], "apt-get install mosquitto-clients",
              what="reference peer", quick=quick),
        _tool("openssl", ["openssl", "version"], "apt-get install openssl", quick=quick),
        _tool("curl", ["curl", "--version"], "apt-get install curl",
              what="reference HTTPS peer", quick=quick),
        _tool("cc", ["cc", "--version"], "apt-get install build-essential",
              what="builds the virtual board", quick=quick),
        _tool("cmake", ["cmake", "--version"], "apt-get install cmake", quick=quick),
    ]
    if not quick:
        checks.append(_tool("clang", ["clang", "--version"],
                            "apt-get install clang libclang-rt-dev", required=False,
                            what="fuzzers and sanitizers"))
    mbed = mbedtls_version()
    checks.append(Check("mbedTLS headers", mbed is not None,
                        f"{mbed}" if mbed else "mbedtls/version.h not found",
                        "apt-get install libmbedtls-dev"))
    for dist in ("paho-mqtt", "cryptography", "pyserial", "pytest-embedded",
                 "pytest-embedded-serial", "esptool"):
        checks.append(_package(dist))
    if sys.version_info < (3, 13):
        checks.append(_package("sslpsk3"))
    if not quick:
        checks.append(_serial_ports())
    return checks


def _config_checks(config: HilConfig, quick: bool = False) -> list[Check]:
    """What hil.toml asks for: its broker's address, the PKI, each board. quick: the rows
    that can stop a run (the PKI and the boards' are warnings: a run makes its PKI)."""
    checks = [Check("hil.toml", True, f"{config.source}: {len(config.boards)} board(s)"),
              _bind_check(config)]
    if quick:
        if any(b.kind == "virtual" and b.variant == "esp" and not b.build_dir
               for b in config.boards):
            checks.append(_m32_check())
        return checks
    from rig.pki import Pki  # cryptography: not read by `hil run`'s quick check

    pki_states = Pki(config).status()
    bad = [s.name for s in pki_states if s.state != "ok"]
    checks.append(Check("pki", not bad, f"{config.pki_dir}: " + (
        f"needs work: {', '.join(bad)}" if bad else f"{len(pki_states)} items ok"),
        "run `hil pki init`", required=False))
    checks.extend(_boards(config))
    return checks


def format_table(checks: list[Check]) -> str:
    rows = [("check", "status", "detail", "what to do")]
    rows += [(c.name, c.status, c.detail, c.fix if not c.ok else "") for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for r in rows:
        lines.append("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
    return "\n".join(line.rstrip() for line in lines)
