"""The rig's cache directory, kept across runs and reboots (the labgrid claims, the mbedTLS 3.6
source of the esp virtual board, actionlint for the tests): $HIL_CACHE_DIR, else
$XDG_CACHE_HOME/hil-rig, else ~/.cache/hil-rig. The shell scripts read the same rule from
cache_dir.sh beside this file (tests/integration/test_cache_dir.py checks that the two agree)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache directory (not created here; an empty variable counts as unset)."""
    given = os.environ.get("HIL_CACHE_DIR")
    if given:
        return Path(given)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hil-rig"
