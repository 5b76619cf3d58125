"""Per-run result directories: runs/<UTC timestamp>-<pid>/, with runs/latest pointing at the
newest. Broker logs, JSON and JUnit results of one run stay together."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

# In a run directory (or a worker's): faults no cell saw, one line each (e.g. a session broker
# that died after its mode's last cell). Written by the pytest plugin, reported by `hil run`.
SESSION_FAULTS = "session-faults.txt"
# In a run directory (or a worker's): "<board> <resets>" per board at the end of its session.
RESETS_FILE = "resets.txt"
# In a run directory: each board cell's console transcript, <board>.<mode>.<case>.txt
TRANSCRIPTS = "transcripts"
# In a run directory: each farm board's place and exporter, or why it had none (the plugin's
# rig/pytest_plugin/farm.py writes it; `farm_places` reads it)
FARM_FILE = "farm.json"
# In a run directory: where `hil run`'s time went, Unix seconds: the pytest run's spawn and
# end, the report done (rig/cli.py writes it; bench/matrix.py reads it)
TIMING_FILE = "timing.json"


def new_run_dir(root: Path) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    path = root / f"{stamp}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=False)
    latest = root / "latest"
    with contextlib.suppress(OSError):
        if latest.is_symlink() or not latest.exists():
            tmp = root / f".latest-{os.getpid()}"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(path.name)
            os.replace(tmp, latest)
    return path


def farm_places(run_dir: Path) -> dict[str, dict[str, Any]]:
    """What farm.json of a run says (empty without farm boards)."""
    path = run_dir / FARM_FILE
    if not path.exists():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return data
