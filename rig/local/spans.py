"""Where a cell's time goes: spans of the work the cell exists for, recorded where it is done
(a broker starting until it accepts, a TLS or MQTT exchange with the board or the broker, an
HTTPS request), so that the rest of a cell's time is the rig's own overhead. The pytest plugin
takes a cell's spans at its end (rig/pytest_plugin/hooks.py: results.json `work_ms`), and
bench/matrix.py adds them up into the matrix's floor.

Cheap enough to be always on: one perf_counter pair and a list append per span."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

# what each kind of span is: the names bench/matrix.py prints
KINDS = {
    "broker": "broker starts (until it accepts connections)",
    "mqtt": "MQTT over TLS: the board's or the host's connect, publish and receipt",
    "https": "HTTPS requests to the board's server (Python ssl, curl, raw TLS)",
    "console": "console exchanges with the board (settings, clock, start/stop commands)",
    "boot": "a board from its start or reset to its ready line",
    "timer": "a wait a cell exists for: a board's keep-alive and reconnect back-off",
}

_spans: list[tuple[str, float, float]] = []  # (kind, start, end) in perf_counter seconds


@contextlib.contextmanager
def work(kind: str) -> Iterator[None]:
    """Time what the block does as the cell's own work of `kind` (one of KINDS)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        _spans.append((kind, start, time.perf_counter()))


def take() -> list[tuple[str, float, float]]:
    """The spans recorded since the last take, oldest first."""
    taken = _spans[:]
    del _spans[:len(taken)]
    return taken


def union_s(spans: list[tuple[str, float, float]]) -> dict[str, float]:
    """Seconds per kind, and in total ('' key), counting time covered by nested or
    overlapping spans once (the total) and per kind once."""
    out: dict[str, float] = {}
    for kind in {k for k, _, _ in spans} | {""}:
        covered = 0.0
        end = float("-inf")
        for _, s, e in sorted((sp for sp in spans if not kind or sp[0] == kind),
                              key=lambda sp: sp[1]):
            if e <= end:
                continue
            covered += e - max(s, end)
            end = e
        out[kind] = covered
    return out
