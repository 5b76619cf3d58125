"""How busy the runner was while the cells ran, so that a time measured on a busy runner is
not taken for a regression: Linux's pressure stall information for the CPU
(/proc/pressure/cpu, kernel 4.20+): `some total=` counts the microseconds during which at least
one runnable task waited for a CPU. Each pytest process meters from its first cell's call to
its last (not the session's set-up, which may build the firmware); the stall summed over the
processes, divided by their summed wall time, is the run's `cpu_pressure`.

    meter = LoadMeter()      # as the first cell's call starts
    meter.sample()           # at each cell's end: (stalled us, wall us) so far; None without PSI
    share(samples)           # the run's: 0.0 .. 1.0, None without samples
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
    """CPU stall and wall time since it was made."""

    def __init__(self, path: Path = PSI_CPU) -> None:
        self.path = path
        self.start_us = cpu_stalled_us(path)
        self.start_s = time.monotonic()

    def sample(self) -> tuple[int, int] | None:
        """(stalled us, wall us) since it was made; None without PSI."""
        now = cpu_stalled_us(self.path)
        wall_us = int((time.monotonic() - self.start_s) * 1e6)
        if now is None or self.start_us is None:
            return None
        return max(now - self.start_us, 0), wall_us

    def stalled_share(self) -> float | None:
        """The share of the wall time since it was made during which some task waited."""
        return share([s] if (s := self.sample()) is not None else [])


def share(samples: list[tuple[int, int]]) -> float | None:
    """The stalled share of the summed wall time of `samples`, capped at 1; None without
    any wall time."""
    wall = sum(w for _, w in samples)
    if wall <= 0:
        return None
    return round(min(sum(s for s, _ in samples) / wall, 1.0), 3)
