#!/usr/bin/env python3
"""Figures for boards on a labgrid farm (targets are figures, not tests), on the loopback farm
of the rig's tests (tests/farm.py: a real labgrid-coordinator and labgrid-exporter, ser2net,
two virtual boards with power switch stand-ins):

- coordinator and exporter start-up until ready
- one labgrid-client call (`show`), acquire, release, reserve-by-tags until allocated, and a
  power cycle through the place's power resource (1 s off): medians over N rounds
- what the rig's run start and end add per farm board (Holding.hold / release)

Run: .venv/bin/python bench/farm.py [--rounds N]
Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rig.boards.host_build import build_host_agent  # noqa: E402
from rig.boards.places import Holding, release_leftovers  # noqa: E402
from rig.config import Board  # noqa: E402
from tests.farm import FarmBoard, LoopbackFarm  # noqa: E402


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    agent = build_host_agent("esp")
    with tempfile.TemporaryDirectory(prefix="hil-bench-farm-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        with LoopbackFarm(work / "farm", [FarmBoard("virt-a", agent),
                                          FarmBoard("virt-b", agent, tags={"slot": "b"})]) as farm:
            print(f"farm up (2 agents, coordinator, exporter, 2 places): "
                  f"{(time.perf_counter() - t0) * 1000:.0f} ms")
            client = farm.client()
            rows: dict[str, list[float]] = {k: [] for k in (
                "labgrid-client show", "acquire", "release", "reserve + wait (tags)",
                "power cycle", "rig: hold (named place)", "rig: release")}
            locks = work / "locks"
            locks.mkdir(mode=0o700)
            for _ in range(args.rounds):
                rows["labgrid-client show"].append(timed(lambda: client.show("virt-a")))
                rows["acquire"].append(timed(lambda: client.acquire("virt-a")))
                rows["power cycle"].append(timed(lambda: client.power("virt-a", "cycle")))
                rows["release"].append(timed(lambda: client.release("virt-a")))
                token = ""

                def reserve() -> None:
                    nonlocal token
                    token = client.reserve({"slot": "b"})
                    client.wait(token, 30)
                rows["reserve + wait (tags)"].append(timed(reserve))
                client.cancel(token)
                holding = Holding(client, Board(name="bench", kind="esp32", place="virt-a"),
                                  locks)
                rows["rig: hold (named place)"].append(timed(partial(holding.hold, 30)))
                rows["rig: release"].append(timed(holding.release))
            release_leftovers(client, locks)
            print(f"{'step':<26} {'median ms':>10} {'min':>8} {'max':>8}  ({args.rounds} rounds)")
            for name, values in rows.items():
                print(f"{name:<26} {statistics.median(values):>10.0f} {min(values):>8.0f} "
                      f"{max(values):>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
