#!/usr/bin/env python3
"""Figures for the mode matrix, all measured in one run (targets are figures, not tests):

- wall time of the default matrix (`hil run`: every cell on the virtual boards, native and esp,
  one worker each: the broker modes, HTTPS, the chip's clock and the negative matrix, 60 cells)
  target <= 4 s on a 2-core machine
- resets per board in that run  target: boards + failed cells + cells that ask for a board fresh
  from boot (rig/device/strategy.py)
- broker start-to-ready per mode (median of N starts)
- provisioning time and whole-cell time per board and mode, from that same `hil run`
- baseline: the same broker start and a TLS connect+publish with `mosquitto_pub` per mode
- ratio cell / mosquitto_pub per mode (target <= 3x) and matrix / baseline

Run: .venv/bin/python bench/matrix.py [--starts N] [--pubs N] [--config hil.toml]
Everything stays on loopback; nothing sleeps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rig.broker.mosquitto import Broker, broker_settings  # noqa: E402
from rig.config import MODES, load  # noqa: E402
from rig.host.peers import (  # noqa: E402
    PubResult,
    Target,
    child_env,
    mosquitto_pub_argv,
    options_dir,
    redact,
)
from rig.host.tls import credentials  # noqa: E402
from rig.pki import Pki  # noqa: E402


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "hil.toml"))
    ap.add_argument("--starts", type=int, default=10, help="broker starts per mode")
    ap.add_argument("--pubs", type=int, default=10, help="mosquitto_pub runs per mode")
    args = ap.parse_args()
    config = load(args.config)
    pki = Pki(config)
    pki.ensure()

    # 1. the default matrix, exactly as the README's main command runs it
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "--config", args.config, "run"],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    matrix_s = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr)
        print("bench: the matrix failed; figures would be meaningless", file=sys.stderr)
        return 1
    results = json.loads((config.run_dir / "latest" / "results.json").read_text())
    cells = results["cells"]
    resets: dict[str, int] = results.get("resets", {})
    failed = {c["board"] for c in cells if c["verdict"] not in ("pass", "skip")}
    board_cells = {(c["board"], c["mode"]): c for c in cells if c["case"] == "connect_publish"}
    boards = sorted({b for b, _ in board_cells})

    # 2. broker start-to-ready, and 3. the mosquitto_pub baseline, per mode
    starts: dict[str, list[float]] = {}
    pubs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        for mode in MODES:
            starts[mode] = []
            for _ in range(args.starts):
                b = Broker(broker_settings(config, pki, mode), Path(tmp)).start()
                starts[mode].append(b.start_to_ready_s)
                b.stop()
            b = Broker(broker_settings(config, pki, mode), Path(tmp)).start()
            try:
                creds = credentials(config, pki, mode)
                pubs[mode] = []
                for _ in range(args.pubs):
                    # the key (psk) goes through a private options file, never argv; the
                    # timing covers only the process, as before, not writing that file
                    with options_dir(creds) as home:
                        argv = mosquitto_pub_argv(Target(config.broker.host, b.port), creds,
                                                  f"bench/{uuid.uuid4().hex[:6]}", "x",
                                                  client_id=f"bench-{uuid.uuid4().hex[:6]}")
                        t = time.perf_counter()
                        proc = subprocess.run(argv, capture_output=True, text=True,
                                              env=child_env(home), timeout=30, check=False)
                        pubs[mode].append(time.perf_counter() - t)
                    PubResult(tuple(argv), proc.returncode, redact(proc.stdout, creds),
                              redact(proc.stderr, creds)).check()
            finally:
                b.stop()

    baseline_s = sum(statistics.median(starts[m]) + statistics.median(pubs[m]) for m in MODES)
    print(f"default matrix (`hil run`, {len(cells)} cells): {matrix_s:.2f} s wall "
          f"(target <= 4 s: {'met' if matrix_s <= 4 else 'NOT met'})")
    boards_run = {c["board"] for c in cells if c["board"] not in ("host", "none")}
    target = len(boards_run) + sum(1 for c in cells if c["verdict"] not in ("pass", "skip")) + \
        sum(1 for c in cells if c.get("properties", {}).get("fresh_board"))
    total = sum(resets.values())
    print(f"resets: {total} ({', '.join(f'{b} {n}' for b, n in sorted(resets.items()))}); "
          f"target <= boards + failed cells + fresh-board cells = {target}: "
          f"{'met' if total <= target else 'NOT met'}"
          + (f" (boards with a failed cell: {', '.join(sorted(failed))})" if failed else ""))
    print(f"baseline (one broker start + one mosquitto_pub per mode): {baseline_s * 1000:.1f} ms;"
          f" matrix / baseline = {matrix_s / baseline_s:.0f}x")
    print()
    width = max((len(b) for b in boards), default=5) + 2
    print(f"{'board':<{width}}{'mode':<8}{'broker ready':>14}{'provision':>12}{'cell':>10}"
          f"{'mosquitto_pub':>15}{'cell/pub':>10}")
    worst = 0.0  # native boards: the target is theirs
    esp = [b.name for b in config.boards if b.variant == "esp"]
    esp_ratios: list[float] = []
    for board in boards:
        for mode in MODES:
            cell = board_cells.get((board, mode), {}).get("properties", {})
            cell_ms = float(cell.get("cell_ms", "nan"))
            pub_ms = median_ms(pubs[mode])
            ratio = cell_ms / pub_ms
            if board in esp:
                esp_ratios.append(ratio)
            else:
                worst = max(worst, ratio)
            provision_ms = float(cell.get("provision_ms", "nan"))
            print(f"{board:<{width}}{mode:<8}{median_ms(starts[mode]):>11.1f} ms"
                  f"{provision_ms:>9.1f} ms{cell_ms:>7.1f} ms{pub_ms:>12.1f} ms{ratio:>9.1f}x")
    print()
    print(f"cell = provision + clock set + connect + CONNACK + publish + observer receipt on the "
          f"virtual board; target <= 3x mosquitto_pub on native boards: "
          f"{'met' if worst <= 3 else 'NOT met'} (worst {worst:.1f}x)")
    if esp_ratios:
        print(f"esp boards (no target): {min(esp_ratios):.1f}-{max(esp_ratios):.1f}x; their "
              "mbedTLS is 32-bit C without assembly (as on the chip, minus its accelerators), "
              "so ECDSA and ECDHE cost several times more")
    print("medians of", args.starts, "broker starts and", args.pubs, "mosquitto_pub runs per mode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
