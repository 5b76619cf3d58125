"""How busy the runner was while the cells ran, so that a time measured on a busy runner is
not taken for a regression: Linux's pressure stall information for the CPU
(/proc/pressure/cpu, kernel 4.20+): `some total=` counts the microseconds during which at least
one runnable task waited for a CPU. It is read as each cell's call starts and ends (with the
system-wide monotonic clock, the same in every process); the run's `cpu_pressure` is the share
of the stall over the window in which every pytest process was running cells: from the latest
first call of any process (before it, another process may still be building the firmware or
flashing) to the last call's end. Measured on a 2-core runner: the default matrix alone 51-54 %,
the same run beside two busy loops 82-89 %.

    at = reading()                       # (stalled us, monotonic us), None without PSI
    window_share(first_starts, ends)     # the run's: 0.0 .. 1.0, None without a window
"""

from __future__ import annotations

import re
import time
from pathlib import Path

PSI_CPU = Path("/proc/pressure/cpu")
_SOME = re.compile(r"^some .*\btotal=(\d+)", re.MULTILINE)

Reading = tuple[int, int]  # (CPU stall so far, monotonic clock), microseconds


def cpu_stalled_us(path: Path = PSI_CPU) -> int | None:
    """The kernel's running total of CPU stall (some), in microseconds; None without PSI."""
    try:
        m = _SOME.search(path.read_text())
    except OSError:
        return None
    return int(m.group(1)) if m else None


def reading(path: Path = PSI_CPU) -> Reading | None:
    """The stall total and the monotonic clock now; None where the kernel does not say."""
    stalled = cpu_stalled_us(path)
    return None if stalled is None else (stalled, time.monotonic_ns() // 1000)


def window_share(first_starts: list[Reading], ends: list[Reading]) -> float | None:
    """The stalled share of the window from the latest of the processes' first call starts to
    the last call end, capped at 1; None when there is no such window."""
    if not first_starts or not ends:
        return None
    start = max(first_starts, key=lambda r: r[1])
    end = max(ends, key=lambda r: r[1])
    wall = end[1] - start[1]
    if wall <= 0:
        return None
    return round(min(max(end[0] - start[0], 0) / wall, 1.0), 3)
