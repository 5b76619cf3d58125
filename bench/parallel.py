#!/usr/bin/env python3
"""Boards in parallel (targets are figures here, not timed tests): `hil run` over 1, 2, 4 and 8
virtual boards, one pytest-xdist worker each, on this machine (however many cores it has):

- wall time, and when the first cell started (xdist's start grows with its workers)
- the floor: the busiest worker's own work (rig/local/spans.py), and wall / floor
- the per-cell overhead: a cell's time from set-up to tear-down minus its own work, the
  median over every board cell                      target: flat as boards grow (while the
  cores keep up: past them every process waits for a CPU, the work included)
- CPU time of the whole run (user + sys of `hil run` and everything it started)

Run: .venv/bin/python bench/parallel.py [--boards 1,2,4,8] [--mode M ...] [--config hil.toml]
Uses a copy of the inventory with N native virtual boards, runs and PKI in a temporary
directory. Everything stays on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def inventory(source: Path, tmp: Path, boards: int) -> Path:
    text = source.read_text()
    text = text.replace('run_dir = "runs"', f'run_dir = "{tmp}/runs"')
    text = text.replace('dir = "pki"', f'dir = "{tmp}/pki"')
    head = text.split("[[boards]]")[0]
    for i in range(boards):
        head += f'\n[[boards]]\nname = "virtual-{i}"\nkind = "virtual"\n'
    path = tmp / f"hil-{boards}.toml"
    path.write_text(head)
    return path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(config: Path, boards: int, modes: list[str]) -> dict[str, float]:
    # without the resilience cells: their keep-alive and back-off waits are no overhead
    argv = [sys.executable, "-m", "rig.cli", "--config", str(config), "run", "-j", str(boards),
            "--no-resilience"]
    for m in modes:
        argv += ["--mode", m]
    cpu0, t0 = children_cpu(), time.time()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    wall, cpu = time.time() - t0, children_cpu() - cpu0
    if proc.returncode != 0:
        sys.exit(f"hil run with {boards} boards failed:\n{proc.stdout[-3000:]}\n"
                 f"{proc.stderr[-2000:]}")
    cells = json.loads((config.parent / "runs" / "latest" / "results.json").read_text())["cells"]
    work: dict[str, float] = {}
    over = []
    for c in cells:
        own = c["work_ms"].get("", 0.0) / 1000
        work[c["worker"] or "main"] = work.get(c["worker"] or "main", 0.0) + own
        if c["board"] not in ("host", "none"):
            over.append(c["duration_s"] - own)
    return {"wall": wall, "cpu": cpu, "cells": len(cells), "floor": max(work.values()),
            "first": min(c["started"] for c in cells if c["started"]) - t0,
            "overhead_ms": statistics.median(over) * 1000, "workers": len(work)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="1,2,4,8", help="board counts, comma-separated")
    ap.add_argument("--mode", action="append", default=None)
    ap.add_argument("--config", default=str(ROOT / "hil.toml"))
    args = ap.parse_args()
    counts = [int(n) for n in args.boards.split(",")]
    modes = args.mode or []
    rows = []
    with tempfile.TemporaryDirectory(prefix="hil-bench-parallel-") as tmp:
        for n in counts:
            config = inventory(Path(args.config), Path(tmp), n)
            run(config, n, modes)  # warm-up: PKI, agent build
            rows.append((n, run(config, n, modes)))
    print(f"virtual boards (native), one worker each; modes: {', '.join(modes) or 'all'}; "
          f"cores: {os.cpu_count()}")
    print(f"{'boards':>6}{'cells':>7}{'wall':>8}{'1st cell':>10}{'floor':>8}{'wall/floor':>12}"
          f"{'overhead/cell':>15}{'CPU':>8}")
    for n, r in rows:
        print(f"{n:>6}{r['cells']:>7.0f}{r['wall']:>7.2f}s{r['first']:>9.2f}s{r['floor']:>7.2f}s"
              f"{r['wall'] / r['floor']:>11.2f}x{r['overhead_ms']:>12.1f} ms{r['cpu']:>7.1f}s")
    base = rows[0][1]["overhead_ms"]
    cores = os.cpu_count() or 1
    within = [r["overhead_ms"] for n, r in rows if n <= cores]
    print(f"per-cell overhead up to {cores} boards (one per core): "
          f"{min(within):.1f}-{max(within):.1f} ms (flat within 25 %: "
          f"{'met' if max(within) <= 1.25 * min(within) else 'NOT met'}); with more boards "
          f"than cores: " + ", ".join(f"{n} boards {r['overhead_ms'] / base:.1f}x"
                                      for n, r in rows if n > cores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
