"""The broker's TLS secrets for a cell's capture: tls_keylog.c (beside this file) built once into
the cache directory and loaded into Mosquitto with LD_PRELOAD (Broker(tls_keys=True)), where it
gives every TLS context OpenSSL's key-log callback. The lines go to a file in the broker's
private directory (0700; the file 0600) that the rig takes, reads and removes for each cell.

This is how a capture of a firmware that is not ours, or of one that connects by itself at
boot, still opens decrypted: the broker is one end of every MQTT session of a cell."""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
from importlib import resources
from pathlib import Path

from rig.errors import RigError
from rig.local.cache import cache_dir

ENV = "HIL_BROKER_KEYLOG"  # the file the shim appends to (tls_keylog.c)
SOURCE = "tls_keylog.c"
CFLAGS = ["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-std=c11"]
LIBS = ["-lssl", "-ldl"]


class KeylogUnavailable(RigError):
    """The shim could not be built (no C compiler, no OpenSSL headers): captures go on
    without the broker's secrets, and say so."""


def shim() -> Path:
    """The built shared object (built on first use, kept in the cache directory per source,
    flags, compiler and OpenSSL version); KeylogUnavailable, naming why, when it cannot be."""
    try:
        return _build()
    except (OSError, subprocess.SubprocessError) as exc:  # a cache dir not writable, a hang
        raise KeylogUnavailable(f"building the broker's key-log shim failed: {exc}") from exc


def _build() -> Path:
    source = resources.files("rig.broker").joinpath(SOURCE).read_bytes()
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        raise KeylogUnavailable("no C compiler (cc) to build the broker's key-log shim "
                                "(Debian: apt-get install gcc libssl-dev)")
    built_for = " ".join([*CFLAGS, *LIBS, os.path.realpath(cc), ssl.OPENSSL_VERSION])
    digest = hashlib.sha256(source + built_for.encode()).hexdigest()[:16]
    out = cache_dir() / "broker-keylog" / f"tls_keylog-{digest}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_suffix(f".{os.getpid()}.c")
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    try:
        src.write_bytes(source)
        proc = subprocess.run([cc, *CFLAGS, "-o", str(tmp), str(src), *LIBS],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise KeylogUnavailable(
                f"building the broker's key-log shim failed ({cc}, exit {proc.returncode}; "
                f"Debian: apt-get install libssl-dev): {proc.stderr.strip()[:400]}")
        os.replace(tmp, out)  # whole or not at all, also when workers build it at once
    finally:
        src.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return out


def environment(keylog: Path) -> dict[str, str]:
    """The broker's environment with the shim loaded, appending to `keylog`."""
    env = dict(os.environ)
    preload = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = f"{shim()} {preload}".strip()
    env[ENV] = str(keylog)
    return env


def take(keylog: Path) -> list[str]:
    """The lines written to `keylog` so far, the file removed (the shim makes a new one for the
    next session)."""
    taken = keylog.with_name(keylog.name + ".taken")
    try:
        os.replace(keylog, taken)
    except FileNotFoundError:
        return []
    try:
        return [ln for ln in taken.read_text(errors="replace").splitlines() if ln.strip()]
    finally:
        taken.unlink(missing_ok=True)
