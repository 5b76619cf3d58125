"""Reading the rig's capture files in tests: the TLS key-log lines a pcapng embeds (its
Decryption Secrets Blocks), the same file without them, and tshark on it."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

DSB = 0x0000000A  # pcapng Decryption Secrets Block
TLS_KEYLOG = 0x544C534B


def embedded_secrets(path: Path) -> list[str]:
    """The key-log lines a pcapng carries in its Decryption Secrets Blocks."""
    data = path.read_bytes()
    lines: list[str] = []
    at = 0
    while at + 12 <= len(data):
        kind, length = struct.unpack_from("<II", data, at)
        if length < 12:
            break
        if kind == DSB:
            secrets_type, size = struct.unpack_from("<II", data, at + 8)
            if secrets_type == TLS_KEYLOG:
                lines += data[at + 16:at + 16 + size].decode().splitlines()
        at += length
    return [ln for ln in lines if ln]


def without_secrets(path: Path, out: Path) -> Path:
    """The same pcapng without its Decryption Secrets Blocks (editcap 4.0's
    --discard-all-secrets does not parse its own arguments)."""
    data = path.read_bytes()
    kept = bytearray()
    at = 0
    while at + 12 <= len(data):
        kind, length = struct.unpack_from("<II", data, at)
        if length < 12:
            break
        if kind != DSB:
            kept += data[at:at + length]
        at += length
    out.write_bytes(bytes(kept))
    return out


def tshark(path: Path, *args: str) -> list[str]:
    proc = subprocess.run(["tshark", "-n", "-r", str(path), *args], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()
