"""Building the firmware's host port (the virtual board's `hil-agent`).

The build goes to firmware/host/build/<variant>, or $HIL_HOST_BUILD_DIR/<variant>."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Literal

from rig.config import VirtualVariant
from rig.errors import RigError
from rig.local.locks import file_lock

ROOT = Path(__file__).resolve().parents[2]  # the checkout: the firmware sources are there
HOST_DIR = ROOT / "firmware" / "host"
# plain / asan: the `native` virtual board (Debian's mbedTLS 2.28, 64-bit), without and with
# ASan+UBSan; esp / esp-asan: the `esp` virtual board (mbedTLS 3.6 configured like ESP-IDF,
# 32-bit), without and with them
Variant = Literal["plain", "asan", "esp", "esp-asan"]
BUILD_TIMEOUT = 900  # seconds for one build of hil-agent


class FirmwareBuildError(RigError):
    pass


def agent_path(variant: Variant = "plain", build_root: Path | None = None) -> Path:
    env_root = os.environ.get("HIL_HOST_BUILD_DIR")
    root = build_root or (Path(env_root) if env_root else HOST_DIR / "build")
    return root / variant / "hil-agent"


def build_for(board_variant: VirtualVariant, sanitized: bool) -> Variant:
    """The build a virtual board of this variant runs, with or without ASan+UBSan."""
    if board_variant == "esp":
        return "esp-asan" if sanitized else "esp"
    return "asan" if sanitized else "plain"


def build_host_agent(variant: Variant = "plain") -> Path:
    """Configure and build (incrementally) `hil-agent`; returns the binary's path."""
    script = HOST_DIR / "build.sh"
    if not script.exists():
        raise FirmwareBuildError(f"{script} is missing: is this a complete checkout?")
    path = agent_path(variant)
    # one build at a time (xdist): wait as long as a build may take, and a little more
    with file_lock(path.parent.parent / f".{variant}.lock", timeout=BUILD_TIMEOUT + 60):
        proc = subprocess.run([str(script), variant], capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise FirmwareBuildError(f"building hil-agent ({variant}) failed:\n{tail}")
    if not path.exists():
        raise FirmwareBuildError(f"build succeeded but {path} does not exist")
    return path
