"""The end of `hil run`: results.json completed (notes, resets), the summary table, faults,
resets, and the verdict (the exit code)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from rig.boards.virtual import WHAT_IT_IS
from rig.config import Board, HilConfig
from rig.device.strategy import RECOVERY_FILE
from rig.report.environment import environment
from rig.report.run_dir import RESETS_FILE, SESSION_FAULTS, farm_places

# results.json's layout: 1 (no `schema` key) had cells, resets, boards, notes, recovery, farm;
# 2 adds run, hil, finished, environment, and per cell transcript/broker_log/firmware_sha256
SCHEMA = 2
VIRTUAL_NOTE = f"note: {WHAT_IT_IS}"


def summarize(run_dir: Path, results_path: Path, config: HilConfig, boards: list[Board],
              returncode: int, stopped_by: str, *, allow_missing: bool) -> int:
    """Print the run's summary and return `hil run`'s exit code."""
    data = json.loads(results_path.read_text())
    cells = data["cells"]
    virtual = any(c["board"] in {b.name for b in config.boards if b.kind == "virtual"}
                  for c in cells)
    data["schema"] = SCHEMA
    data["run"] = run_dir.name
    data["hil"] = any(b.kind == "esp32" for b in boards)
    data["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    data["environment"] = environment(config, cells)
    data["notes"] = [VIRTUAL_NOTE] if virtual else []
    data["config"] = str(config.source)
    data["resets"] = _resets(run_dir)
    data["boards"] = _boards(data["environment"])
    data["recovery"] = _recovery(run_dir)
    farm = farm_places(run_dir)
    if farm:
        data["farm"] = farm
    results_path.write_text(json.dumps(data, indent=2) + "\n")
    rows = [["board", "mode", "case", "expect", "cipher suite", "handshake", "verdict",
             "reason"]]
    for c in cells:
        hs = f"{c['handshake_ms']:g} ms" if c["handshake_ms"] is not None else ""
        reason = c["reason"]
        if c["expected"] == "refused" and c["verdict"] == "pass":
            reason = f"device: {c['device_reason']}" + (
                f" | broker: {c['broker_reason']}" if c["broker_reason"] else "") + (
                f" | client: {c['client_reason']}" if c["client_reason"] else "")
        source = c.get("properties", {}).get("cipher_suite_from", "")
        if source and not reason:  # a firmware that prints no suite: where the rig read it
            reason = f"cipher suite {source}"
        reason = reason if len(reason) <= 110 else reason[:107] + "..."
        rows.append([c["board"], c["mode"], c["case"], c["expected"], c["cipher_suite"], hs,
                     c["verdict"], reason])
    print()
    print(_table(rows))
    counts = {v: sum(1 for c in cells if c["verdict"] == v) for v in ("pass", "FAIL", "ERROR",
                                                                      "skip")}
    failed = counts["FAIL"] + counts["ERROR"]
    summary = f"{counts['pass']} passed, {failed} failed"
    if counts["skip"]:
        summary += f", {counts['skip']} skipped"
    print("\n" + summary)
    for name, board in sorted(data["boards"].items()):
        print(f"board {name}: {board['kind']}: {board['firmware']}")
    for name, place in sorted(farm.items()):
        print(place["error"] if "error" in place else
              f"board {name}: labgrid place {place['place']} on exporter {place['exporter']} "
              "(released at the end of the run)")
    for step in data["recovery"]:
        print(f"board {step['board']}: {step['step']}: {step['outcome']}"
              f"{': ' + step['detail'] if step['detail'] else ''} (cell {step['cell']})")
    for note in data["notes"]:
        print(note)
    faults = [f"fault seen by {c['board']} {c['mode']} {c['case']}: {c['properties']['fault']}"
              for c in cells if c.get("properties", {}).get("fault")]
    faults += [f"fault: {line}" for path in sorted(run_dir.rglob(SESSION_FAULTS))
               for line in path.read_text().splitlines() if line]
    collected = int(data.get("collected", len(cells)))
    if len(cells) < collected and not stopped_by:
        faults.append(f"fault: {collected - len(cells)} of {collected} collected cell(s) "
                      "never reported (a pytest-xdist worker that died?)")
    for fault in faults:
        print(fault)
    for line in _captures(cells):
        print(line)
    if data["resets"]:
        print("resets: " + ", ".join(f"{b} {n}" for b, n in sorted(data["resets"].items())) +
              " (a board is reset at its first use, after a failed cell and for a test that "
              "needs it fresh from boot; steps.jsonl has every transition)")
    print(f"results: {results_path}  junit: {run_dir / 'junit.xml'}  "
          f"logs: {run_dir}")
    return _verdict(cells, boards, allow_missing, returncode, failed, bool(faults),
                    stopped_by)


def _captures(cells: list[dict[str, Any]]) -> list[str]:
    """The failing cells' captures with the command that shows each decrypted; a capture that
    could not start, once."""
    out: list[str] = []
    kept = [c for c in cells if str(c.get("properties", {}).get("capture", "")).endswith(
        ".pcapng")]
    for c in kept:
        if c["verdict"] in ("FAIL", "ERROR"):
            lost = c["properties"].get("capture_lost")
            out.append(f"capture of {c['board']}.{c['mode']}.{c['case']}: "
                       f"{c['properties'].get('capture_decode') or c['properties']['capture']}"
                       + (f" (incomplete: {lost})" if lost else ""))
    if kept and len(kept) > len(out):
        out.append(f"captures: {len(kept)} cell(s) kept (--capture all), next to results.json")
    missing = {str(c["properties"]["capture"]) for c in cells
               if c.get("properties", {}).get("capture")
               and not str(c["properties"]["capture"]).endswith(".pcapng")}
    out += sorted(missing)[:1]
    return out


def _boards(env: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each board's kind (a virtual board's variant) and firmware, as its cells recorded them
    (the last cell's, should a reset have brought another build): the environment's boards
    that reported a firmware."""
    return {name: {"kind": b.get("kind", "?"), "firmware": b["firmware"]}
            for name, b in env["boards"].items() if b.get("firmware")}


def _recovery(run_dir: Path) -> list[dict[str, Any]]:
    """The steps taken for boards that did not come back from a reset (strategy.py), in the
    order they were taken."""
    steps = [json.loads(line) for path in run_dir.rglob(RECOVERY_FILE)
             for line in path.read_text().splitlines() if line.strip()]
    return sorted(steps, key=lambda s: float(s.get("at", 0)))


def _resets(run_dir: Path) -> dict[str, int]:
    """Resets per board, first boot included, from what each worker wrote at its end."""
    counts: dict[str, int] = {}
    for path in run_dir.rglob(RESETS_FILE):
        for line in path.read_text().splitlines():
            board, _, n = line.partition(" ")
            if n.isdigit():
                counts[board] = counts.get(board, 0) + int(n) + 1
    return counts


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _verdict(cells: list[dict[str, Any]], boards: list[Board], allow_missing: bool,
             returncode: int, failed: int, faulted: bool, stopped_by: str) -> int:
    """0 only when every selected board ran and passed every cell it was given, nothing was
    skipped (unless --allow-missing), no fault was seen and the run was not stopped."""
    board_cells = [c for c in cells if c["board"] not in ("host", "none")]
    skipped = [c for c in cells if c["verdict"] == "skip"]
    ran = {c["board"] for c in board_cells if c["verdict"] != "skip"}
    missing = [b.name for b in boards if b.name not in ran]
    if skipped or missing:
        by_board: dict[str, set[str]] = {}
        for c in skipped:
            by_board.setdefault(c["board"], set()).add(c["reason"])
        for name in missing:
            by_board.setdefault(name, set()).add("no cell ran")
        what = "accepted (--allow-missing)" if allow_missing else "counted as a failure"
        print(f"did not run ({what}):")
        for name, reasons in sorted(by_board.items()):
            n = sum(1 for c in skipped if c["board"] == name)
            print(f"  {name}: {n} cell(s) skipped: {'; '.join(sorted(reasons))}")
    if not any(c["verdict"] == "pass" for c in board_cells):
        print("no board cell passed")
        return 1
    if stopped_by or returncode != 0 or failed or faulted:
        return 1
    if (skipped or missing) and not allow_missing:
        return 1
    return 0


