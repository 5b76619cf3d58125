#!/usr/bin/env python3
"""Where the mode matrix's time goes, all measured in the same runs (targets are figures here,
not timed tests):

- the floor: the work the cells exist for, recorded by the rig as they run (rig/local/spans.py:
  broker starts, the board's and the host's MQTT over TLS, HTTPS requests, console exchanges,
  a board's boot), per pytest worker; the workers run side by side, so the floor of a run is
  its busiest worker's
- wall / floor for the default `hil run` (four virtual boards, one worker each), for `-j 1`,
  `--capture off`, `--capture fail` (the default) and `--no-resilience` target: default <= 1.5x
- what the resilience cells cost (default against --no-resilience; their keep-alive and
  back-off waits are the cells' own work, span kind `timer`)
- what `--capture fail` costs over `--capture off`                 target: <= 10 %
- the `hil` wrapper: its time before pytest starts and after it ends (imports, doctor's
  checks, summary, report; runs/<id>/timing.json)                 target: <= 0.3 s
- when the first cell starts, from `hil run`'s start (xdist included) target: <= 0.6 s
- a cell on a native virtual board run alone (provision + clock + connect + CONNACK +
  publish + observer receipt) against `mosquitto_pub` connect + publish on the same kind of
  broker                                                           target: <= 1.5x
- resets per board: target boards + failed cells + cells that ask for a board fresh from
  boot (rig/device/strategy.py)

Run: .venv/bin/python bench/matrix.py [--repeat N] [--pubs N] [--config hil.toml]
Medians of --repeat runs of each variant. Everything stays on loopback; nothing sleeps.
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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rig.broker.mosquitto import Broker, broker_settings  # noqa: E402
from rig.config import MODES, HilConfig, load  # noqa: E402
from rig.host.peers import (  # noqa: E402
    PubResult,
    Target,
    child_env,
    mosquitto_pub_argv,
    options_dir,
    redact,
)
from rig.host.tls import credentials  # noqa: E402
from rig.local.spans import KINDS  # noqa: E402
from rig.pki import Pki  # noqa: E402

VARIANTS = {"default": [], "-j 1": ["-j", "1"], "--capture off": ["--capture", "off"],
            "--capture fail": ["--capture", "fail"], "--no-resilience": ["--no-resilience"]}


@dataclass
class Run:
    """One `hil run` and where its time went (seconds)."""

    wall: float
    floor: float  # the busiest worker's own work
    first_cell: float  # from `hil run`'s start
    wrapper: float  # the hil process's own time: before pytest starts, after it ends
    pytest: float  # the pytest process, start to end
    cells_s: float  # the busiest worker's cells, set-up to tear-down
    work: dict[str, float] = field(default_factory=dict)  # kind -> s, over all workers
    results: dict[str, object] = field(default_factory=dict)


def hil_run(config: HilConfig, args: list[str]) -> Run:
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "--config", str(config.source),
                           "run", *args], capture_output=True, text=True, cwd=ROOT, check=False)
    t1 = time.time()
    if proc.returncode != 0:
        print(proc.stdout[-3000:] + proc.stderr[-2000:])
        sys.exit(f"bench: hil run {' '.join(args)} failed; figures would be meaningless")
    run_dir = (config.run_dir / "latest").resolve()
    results = json.loads((run_dir / "results.json").read_text())
    timing = json.loads((run_dir / "timing.json").read_text())
    floor: dict[str, float] = {}
    busy: dict[str, float] = {}
    work: dict[str, float] = {}
    first = t1
    for cell in results["cells"]:
        worker = cell["worker"] or "main"
        floor[worker] = floor.get(worker, 0.0) + cell["work_ms"].get("", 0.0) / 1000
        busy[worker] = busy.get(worker, 0.0) + cell["duration_s"]
        for kind, ms in cell["work_ms"].items():
            if kind:
                work[kind] = work.get(kind, 0.0) + ms / 1000
        if cell["started"]:
            first = min(first, cell["started"])
    top = max(floor, key=lambda w: floor[w])
    return Run(wall=t1 - t0, floor=floor[top], first_cell=first - t0,
               wrapper=(timing["pytest_spawned"] - t0) + (t1 - timing["pytest_ended"]),
               pytest=timing["pytest_ended"] - timing["pytest_spawned"], cells_s=busy[top],
               work=work, results=results)


def median_run(runs: list[Run]) -> Run:
    """The run with the median wall time (its other figures are that run's)."""
    return sorted(runs, key=lambda r: r.wall)[len(runs) // 2]


def mosquitto_pub_baseline(config: HilConfig, pki: Pki, pubs: int) -> dict[str, float]:
    """Median seconds of one `mosquitto_pub` connect + publish per mode."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        for mode in MODES:
            b = Broker(broker_settings(config, pki, mode), Path(tmp)).start()
            try:
                creds = credentials(config, pki, mode)
                times = []
                for _ in range(pubs):
                    # the key (psk) goes through a private options file, never argv; the
                    # timing covers only the process, not writing that file
                    with options_dir(creds) as home:
                        argv = mosquitto_pub_argv(Target(config.broker.host, b.port), creds,
                                                  f"bench/{uuid.uuid4().hex[:6]}", "x",
                                                  client_id=f"bench-{uuid.uuid4().hex[:6]}")
                        t = time.perf_counter()
                        proc = subprocess.run(argv, capture_output=True, text=True,
                                              env=child_env(home), timeout=30, check=False)
                        times.append(time.perf_counter() - t)
                    PubResult(tuple(argv), proc.returncode, redact(proc.stdout, creds),
                              redact(proc.stderr, creds)).check()
                out[mode] = statistics.median(times)
            finally:
                b.stop()
    return out


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_variants(runs: dict[str, Run], repeat: int) -> None:
    print(f"{'variant':<16}{'wall':>8}{'floor':>8}{'wall/floor':>12}{'cells':>8}"
          f"{'1st cell':>10}{'pytest':>8}{'wrapper':>9}   (s; median of {repeat})")
    for name, r in runs.items():
        print(f"{name:<16}{r.wall:>8.2f}{r.floor:>8.2f}{r.wall / r.floor:>11.2f}x"
              f"{r.cells_s:>8.2f}{r.first_cell:>10.2f}{r.pytest:>8.2f}{r.wrapper:>9.2f}")
    print("  cells: the busiest worker's cells from set-up to tear-down; floor: their own work")
    default = runs["default"]
    print("  the default run's own work, all workers: " + ", ".join(
        f"{kind} {default.work.get(kind, 0.0):.2f} s" for kind in KINDS))


def print_targets(runs: dict[str, Run]) -> None:
    d = runs["default"]
    ratio = d.wall / d.floor
    print(f"default wall <= 1.5x floor: {met(ratio <= 1.5)} ({ratio:.2f}x: {d.wall:.2f} s "
          f"wall, floor {d.floor:.2f} s; at 1.5x the run would take {1.5 * d.floor:.2f} s)")
    off, fail = runs["--capture off"].wall, runs["--capture fail"].wall
    print(f"--capture fail <= 10 % over --capture off: {met(fail <= 1.1 * off)} "
          f"({(fail / off - 1) * 100:+.0f} %)")
    print(f"hil wrapper <= 0.3 s over pytest: {met(d.wrapper <= 0.3)} ({d.wrapper:.2f} s)")
    print(f"first cell <= 0.6 s after hil run starts: {met(d.first_cell <= 0.6)} "
          f"({d.first_cell:.2f} s)")
    lean = runs["--no-resilience"]
    print(f"the resilience cells cost {d.wall - lean.wall:+.2f} s wall "
          f"({len(d.results['cells']) - len(lean.results['cells'])} cells; "  # type: ignore[arg-type]
          f"{d.work.get('timer', 0.0):.2f} s of it, over all workers, the boards' keep-alive "
          f"and back-off timers); without them wall/floor is {lean.wall / lean.floor:.2f}x")


def quiet_cells(config: HilConfig, repeat: int) -> dict[tuple[str, str], float]:
    """(board, mode) -> median cell_ms of connect_publish on each native virtual board run
    alone (`hil run --board B`, the broker modes only): the cell without another worker
    beside it, as mosquitto_pub is measured."""
    out: dict[tuple[str, str], list[float]] = {}
    for board in (b.name for b in config.boards if b.kind == "virtual" and b.variant != "esp"):
        argv = ["--board", board, "--no-negative", "--no-resilience",
                *(a for m in MODES for a in ("--mode", m))]
        for _ in range(repeat):
            cells = hil_run(config, argv).results["cells"]
            assert isinstance(cells, list)
            for c in cells:
                if c["case"] == "connect_publish":
                    out.setdefault((board, c["mode"]), []).append(
                        float(c["properties"]["cell_ms"]))
    return {key: statistics.median(ms) for key, ms in out.items()}


def print_cells(config: HilConfig, run: Run, pubs: dict[str, float],
                quiet: dict[tuple[str, str], float]) -> None:
    cells = run.results["cells"]
    assert isinstance(cells, list)
    board_cells = {(c["board"], c["mode"]): c for c in cells if c["case"] == "connect_publish"}
    boards = sorted({b for b, _ in board_cells})
    esp = {b.name for b in config.boards if b.variant == "esp"}
    # the target is for a cell driven over the console; one whose firmware connects by itself
    # (profile mongoose-os) also pays a reboot
    console = {b.name for b in config.boards if b.profile == "hil-agent"}
    width = max((len(b) for b in boards), default=5) + 2
    print(f"{'board':<{width}}{'mode':<8}{'provision':>12}{'cell':>10}{'alone':>10}"
          f"{'mosquitto_pub':>15}{'alone/pub':>11}")
    worst, esp_ratios = 0.0, []
    for board in boards:
        for mode in MODES:
            props = board_cells.get((board, mode), {}).get("properties", {})
            cell_ms = float(props.get("cell_ms", "nan"))
            alone = quiet.get((board, mode), float("nan"))
            pub_ms = pubs[mode] * 1000
            if board in esp:
                esp_ratios.append(cell_ms / pub_ms)
            elif board in console:
                worst = max(worst, alone / pub_ms)
            shown = (f"{alone:>7.1f} ms{pub_ms:>12.1f} ms{alone / pub_ms:>10.1f}x"
                     if alone == alone else f"{'-':>10}{pub_ms:>12.1f} ms{'-':>11}")
            print(f"{board:<{width}}{mode:<8}{float(props.get('provision_ms', 'nan')):>9.1f} ms"
                  f"{cell_ms:>7.1f} ms{shown}")
    print("cell: in the default run (beside the other boards' workers); alone: the board run "
          "by itself, median of the repeats (a board's first cell, ca, also pays its TLS "
          "stack's first use)")
    print(f"native cell alone <= 1.5x mosquitto_pub: {met(worst <= 1.5)} (worst {worst:.2f}x; "
          "boards driven over the console; a mongoose-os cell also pays a reboot)")
    if esp_ratios:
        print(f"esp boards (no target): {min(esp_ratios):.1f}-{max(esp_ratios):.1f}x in the "
              "default run; their mbedTLS is 32-bit C without assembly (as on the chip, minus "
              "its accelerators), so ECDSA and ECDHE cost several times more")


def print_resets(run: Run) -> None:
    cells = run.results["cells"]
    resets = run.results.get("resets", {})
    assert isinstance(cells, list) and isinstance(resets, dict)
    failed = {c["board"] for c in cells if c["verdict"] not in ("pass", "skip")}
    boards_run = {c["board"] for c in cells if c["board"] not in ("host", "none")}
    target = len(boards_run) + sum(1 for c in cells if c["verdict"] not in ("pass", "skip")) + \
        sum(1 for c in cells if c.get("properties", {}).get("fresh_board"))
    total = sum(resets.values())
    print(f"resets: {total} ({', '.join(f'{b} {n}' for b, n in sorted(resets.items()))}); "
          f"target <= boards + failed cells + fresh-board cells = {target}: "
          f"{met(total <= target)}"
          + (f" (boards with a failed cell: {', '.join(sorted(failed))})" if failed else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "hil.toml"))
    ap.add_argument("--repeat", type=int, default=5, help="runs of each variant")
    ap.add_argument("--pubs", type=int, default=10, help="mosquitto_pub runs per mode")
    args = ap.parse_args()
    config = load(args.config)
    pki = Pki(config)
    pki.ensure()
    hil_run(config, [])  # warm-up: firmware builds, page cache
    runs = {name: median_run([hil_run(config, argv) for _ in range(args.repeat)])
            for name, argv in VARIANTS.items()}
    quiet = quiet_cells(config, args.repeat)
    pubs = mosquitto_pub_baseline(config, pki, args.pubs)
    print_variants(runs, args.repeat)
    print()
    print_targets(runs)
    print()
    print_cells(config, runs["default"], pubs, quiet)
    print_resets(runs["default"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
