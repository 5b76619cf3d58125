"""How busy the runner was during a run, so that a time measured on a busy runner is not taken
for a regression: Linux's pressure stall information for the CPU (/proc/pressure/cpu, kernel
4.20+): `some total=` counts the microseconds during which at least one runnable task waited
for a CPU. Its growth over a run, divided by the run's wall time, is the share of the run spent
short of CPU: on a 2-core runner the default matrix alone measured about 37 %, the same run
beside two busy loops about 80 %.

    meter = LoadMeter()      # at the run's start
    meter.stalled_share()    # at its end: 0.0 .. 1.0, None where the kernel does not say
"""

from __future__ import annotations

import re
import time
from pathlib import Path

PSI_CPU = Path("/proc/pressure/cpu")
_SOME = re.compile(r"^some .*\btotal=(\d+)", re.MULTILINE)


def cpu_stalled_us(path: Path = PSI_CPU) -> int | None:
    """The kernel's running total of CPU stall (some), in microseconds; None without PSI."""
    try:
        m = _SOME.search(path.read_text())
    except OSError:
        return None
    return int(m.group(1)) if m else None


class LoadMeter:
    """The share of wall time, since it was made, during which some task waited for a CPU."""

    def __init__(self, path: Path = PSI_CPU) -> None:
        self.path = path
        self.start_us = cpu_stalled_us(path)
        self.start_s = time.monotonic()

    def stalled_share(self) -> float | None:
        now = cpu_stalled_us(self.path)
        wall_us = (time.monotonic() - self.start_s) * 1e6
        if now is None or self.start_us is None or wall_us <= 0:
            return None
        return round(min(max((now - self.start_us) / wall_us, 0.0), 1.0), 3)
