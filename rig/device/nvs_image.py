"""An ESP-IDF NVS partition image of a board's settings, made by Espressif's own generator
(PyPI `esp-idf-nvs-partition-gen`: `python -m esp_idf_nvs_partition_gen generate in.csv out.bin
SIZE`), from a CSV template with the generator's columns `key,type,encoding,value`.

A value may be a placeholder, `{name}`, for a setting the rig knows for the cell (PLACEHOLDERS):
in a `data` row it becomes the value itself, in a `file` row the path of a file that holds it
(how certificates and keys go in: `ca_cert,file,string,{ca_cert}`). Everything secret (the
rendered CSV, those files, the image) lives in a private directory (0700, files 0600) that is
removed when the image has been read, also after an interrupt; the generator's complaints are
passed on with every value of the cell redacted. The NVS format itself is never written here."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from rig.errors import RigError
from rig.local.user_tmp import remove_secret_dir, secret_dir, write_secret

COLUMNS = ["key", "type", "encoding", "value"]
KEY_MAX = 15  # NVS keys and namespaces: at most 15 characters
# what a template may ask for: a broker mode's settings as a device needs them
PLACEHOLDERS = {
    "broker_uri": "the broker as an esp-mqtt URI, mqtts://host:port",
    "broker_host": "the broker's host name or address",
    "broker_port": "the broker's port",
    "client_id": "the MQTT client id ([device] id)",
    "ca_cert": "the CA certificate (PEM) the device checks the broker with",
    "client_cert": "the device's client certificate (PEM; mutual mode)",
    "client_key": "the device's private key (PEM; mutual mode)",
    "psk_identity": "the TLS-PSK identity (psk mode)",
    "psk_key": "the TLS-PSK key, hex (psk mode)",
    "cipher_suites": "the mode's device cipher suites, mbedTLS names, ':'-separated",
}
PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")
GENERATE_TIMEOUT_S = 60.0


class NvsImageError(RigError):
    """A template that cannot be rendered, or an image the generator refuses: names the
    profile, the row and what is wrong; nothing is left on disk and no board is touched."""


def rows(template: str, profile: str) -> list[dict[str, str]]:
    """The template's rows, checked: its header, each key's length, each placeholder known
    (a value that is only part placeholder is not: a placeholder is the whole value)."""
    reader = csv.DictReader(io.StringIO(template.strip() + "\n"))
    if reader.fieldnames != COLUMNS:
        raise NvsImageError(f"profile {profile}: the NVS template's header is "
                            f"{','.join(reader.fieldnames or [])!r}; expected "
                            f"{','.join(COLUMNS)!r} (esp-idf-nvs-partition-gen's columns)")
    out = []
    for line, row in enumerate(reader, start=2):
        if None in row or any(row[c] is None for c in COLUMNS):
            raise NvsImageError(f"profile {profile}: NVS template line {line}: expected 4 "
                                "columns (key,type,encoding,value)")
        if len(row["key"]) > KEY_MAX:
            raise NvsImageError(f"profile {profile}: NVS template line {line}: key "
                                f"{row['key']!r} is longer than {KEY_MAX} characters")
        for name in PLACEHOLDER_RE.findall(row["value"]):
            if name not in PLACEHOLDERS:
                raise NvsImageError(f"profile {profile}: NVS template line {line}: unknown "
                                    f"placeholder {{{name}}}; known: "
                                    f"{', '.join(sorted(PLACEHOLDERS))}")
            if row["value"] != f"{{{name}}}":
                raise NvsImageError(f"profile {profile}: NVS template line {line}: a "
                                    f"placeholder is a whole value, not part of "
                                    f"{row['value']!r}")
        out.append({c: row[c] for c in COLUMNS})
    return out


def placeholders(template: str, profile: str) -> set[str]:
    """The placeholders a template uses."""
    return _used(rows(template, profile))


def _used(table: list[dict[str, str]]) -> set[str]:
    return {m for row in table for m in PLACEHOLDER_RE.findall(row["value"])}


def make(template: str, values: Mapping[str, str | None], size: int, profile: str) -> bytes:
    """The image (`size` bytes, a multiple of 4096) of `template` with `values` in its
    placeholders. A row whose placeholder's value is None is left out (a setting the cell's
    mode does not have: the app finds no such key); a placeholder `values` does not know at
    all is an error naming it."""
    table = rows(template, profile)
    missing = sorted(_used(table) - set(values))
    if missing:
        raise NvsImageError(f"profile {profile}: the NVS template asks for "
                            f"{', '.join('{' + m + '}' for m in missing)}, which this cell "
                            "does not have")
    table = [row for row in table if not (m := PLACEHOLDER_RE.fullmatch(row["value"]))
             or values[m.group(1)] is not None]
    given = {k: v for k, v in values.items() if v is not None}
    if size <= 0 or size % 4096:
        raise NvsImageError(f"profile {profile}: NVS partition size {size} is not a positive "
                            "multiple of 4096")
    where = secret_dir("nvs-image")
    try:
        rendered = io.StringIO()
        writer = csv.writer(rendered, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i, row in enumerate(table):
            m = PLACEHOLDER_RE.fullmatch(row["value"])
            value = row["value"]
            if m is not None and row["type"] == "file":
                value = f"value-{i}"  # relative: the generator runs in `where`
                write_secret(where / value, given[m.group(1)])
            elif m is not None:
                value = given[m.group(1)]
            writer.writerow([row["key"], row["type"], row["encoding"], value])
        write_secret(where / "settings.csv", rendered.getvalue())
        _generate(where, size, profile, given)
        return (where / "nvs.bin").read_bytes()
    finally:
        remove_secret_dir(where)


def _generate(where: Path, size: int, profile: str, values: Mapping[str, str]) -> None:
    argv = [sys.executable, "-m", "esp_idf_nvs_partition_gen", "generate", "settings.csv",
            "nvs.bin", hex(size), "--outdir", str(where)]
    try:
        proc = subprocess.run(argv, cwd=where, capture_output=True, text=True,
                              timeout=GENERATE_TIMEOUT_S, env={**os.environ, "COLUMNS": "200"},
                              check=False)
    except subprocess.TimeoutExpired:
        raise NvsImageError(f"profile {profile}: esp-idf-nvs-partition-gen did not finish "
                            f"within {GENERATE_TIMEOUT_S:g} s") from None
    said = _redact((proc.stdout + proc.stderr).strip(), values)
    if proc.returncode != 0 or not (where / "nvs.bin").exists():
        if "No module named esp_idf_nvs_partition_gen" in said:
            said = "not installed (it is one of the rig's Python packages: ./hil.sh setup)"
        why = _complaint(said)
        raise NvsImageError(f"profile {profile}: esp-idf-nvs-partition-gen refused the "
                            f"settings (exit {proc.returncode}): {why}")


def _complaint(said: str) -> str:
    """The generator's reason: its ERROR line, else the last line of its traceback (the
    exception and its message), without the exception's module path."""
    lines = [ln.strip() for ln in said.splitlines() if ln.strip()]
    said_error = [ln for ln in lines if ln.startswith(("ERROR", "Error"))]
    last = said_error[-1] if said_error else (lines[-1] if lines else "no output")
    return re.sub(r"^[\w.]+\.(\w+(Error|Exception)):", r"\1:", last)


def _redact(text: str, values: Mapping[str, str]) -> str:
    """The generator's words without any of the cell's values (keys, PSKs, certificates):
    every line of every value is replaced, longest first."""
    pieces = {ln.strip() for v in values.values() for ln in v.splitlines() if len(ln.strip()) > 3}
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "<value>")
    return text
