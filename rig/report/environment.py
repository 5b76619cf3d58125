"""What a run ran with, for its results.json and report: the rig (version, git revision), the
broker and TLS stacks (Mosquitto, OpenSSL, each board's mbedTLS), and every board's identity
(kind, firmware build and file SHA-256, MAC, USB location or port, labgrid place)."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
from pathlib import Path
from typing import Any

from rig.config import HilConfig


def _first_line(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else ""


def rig_revision() -> str:
    """The git revision of the rig's checkout ('' for an installed wheel), '+dirty' when its
    tracked files differ."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return ""
    rev = _first_line(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"])
    if not re.fullmatch(r"[0-9a-f]{7,40}", rev):
        return ""
    dirty = _first_line(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"])
    return rev + ("+dirty" if dirty else "")


def rig_version() -> str:
    try:
        return importlib.metadata.version("hil-rig")
    except importlib.metadata.PackageNotFoundError:
        return "?"


def environment(config: HilConfig, cells: list[dict[str, Any]]) -> dict[str, Any]:
    mosquitto = _first_line([config.broker.mosquitto, "-h"])
    m = re.search(r"version (\S+)", mosquitto)
    boards: dict[str, dict[str, str]] = {}
    for c in cells:
        props = c.get("properties", {})
        if c["board"] in ("host", "none"):
            continue
        entry = boards.setdefault(c["board"], {})
        for key in ("board_kind", "firmware", "firmware_sha256", "place", "exporter"):
            if props.get(key):
                entry[key.removeprefix("board_")] = str(props[key])
    for name, entry in boards.items():
        spec = next((b for b in config.boards if b.name == name), None)
        if spec is None:
            continue
        for key in ("mac", "location", "port", "serial_number"):
            value = getattr(spec, key)
            if value:
                entry[key] = value
    mbedtls = sorted({v for e in boards.values()
                      for v in re.findall(r"mbedTLS (\d+\.\d+\.\d+)", e.get("firmware", ""))})
    return {"rig": {"version": rig_version(), "revision": rig_revision()},
            "mosquitto": m.group(1) if m else mosquitto,
            "openssl": _first_line(["openssl", "version"]).removeprefix("OpenSSL ").split(" ")[0],
            "mbedtls": mbedtls, "boards": boards}
