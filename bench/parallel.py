#!/usr/bin/env python3
"""Figures for boards in parallel (targets are figures, not tests):

- wall time of `hil run` over N virtual boards one after the other (-j 1) and all at once
  (one pytest-xdist worker per board), and the speed-up      target: >= 0.6 x N on N cores
- the workers each board's cells ran on (one per board)

Run: .venv/bin/python bench/parallel.py [--boards N] [--mode M ...] [--config hil.toml]
Uses a copy of the inventory with N virtual boards, runs and PKI in a temporary directory.
Everything stays on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
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
    path = tmp / "hil.toml"
    path.write_text(head)
    return path


def run(config: Path, jobs: int, modes: list[str]) -> tuple[float, dict[str, set[str]]]:
    argv = [sys.executable, "-m", "rig.cli", "--config", str(config), "run", "-j", str(jobs)]
    for m in modes:
        argv += ["--mode", m]
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"hil run -j {jobs} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    cells = json.loads((config.parent / "runs" / "latest" / "results.json").read_text())["cells"]
    workers: dict[str, set[str]] = {}
    for c in cells:
        workers.setdefault(c["board"], set()).add(c["worker"] or "main")
    return wall, workers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", type=int, default=2)
    ap.add_argument("--mode", action="append", default=None)
    ap.add_argument("--config", default=str(ROOT / "hil.toml"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hil-bench-parallel-") as tmp:
        config = inventory(Path(args.config), Path(tmp), args.boards)
        modes = args.mode or []
        run(config, 1, modes)  # warm-up: PKI, agent build
        serial, _ = run(config, 1, modes)
        parallel, workers = run(config, args.boards, modes)
    print(f"boards: {args.boards} virtual, modes: {', '.join(modes) or 'all'}, "
          f"cores: {os.cpu_count()}")
    print(f"hil run -j 1: {serial:6.2f} s")
    print(f"hil run -j {args.boards}: {parallel:6.2f} s   speed-up {serial / parallel:.2f} x "
          f"(target >= {0.6 * min(args.boards, os.cpu_count() or 1):.1f} x)")
    for board, ws in sorted(workers.items()):
        print(f"  {board:<12} ran on {', '.join(sorted(ws))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
