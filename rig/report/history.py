"""Earlier runs for the report: the run directories under hil.toml's run_dir, and those a CI job
brought back from earlier nights (`--history DIR`: a run directory, or a directory holding
run directories, at most two levels down). Each is read from its results.json; a run this rig
cannot read (another schema, broken JSON) is skipped with a line saying why, never a crash.
Old run directories are pruned to [report] keep_runs."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = "results.json"
SCHEMAS = (1, 2)  # 1: before `schema` was written (no environment); 2: this rig's
RUN_ID = re.compile(r"^\d{8}-\d{6}-\d+$")  # runs/<UTC yyyymmdd-hhmmss>-<pid>

Key = tuple[str, str, str]  # board, mode, case


@dataclass
class Run:
    """One run's results."""

    id: str
    path: Path  # its run directory
    schema: int
    data: dict[str, Any] = field(repr=False)

    @property
    def cells(self) -> list[dict[str, Any]]:
        cells: list[dict[str, Any]] = self.data.get("cells", [])
        return cells

    def cell(self, key: Key) -> dict[str, Any] | None:
        return self.by_key.get(key)

    @property
    def by_key(self) -> dict[Key, dict[str, Any]]:
        return {(c["board"], c["mode"], c["case"]): c for c in self.cells}

    @property
    def hil(self) -> bool | None:
        value = self.data.get("hil")
        return bool(value) if value is not None else None

    @property
    def order(self) -> str:
        """Chronological order: the run id starts with its UTC start time."""
        return self.id


def read_run(path: Path) -> Run | str:
    """The run in directory `path`, or why it cannot be read (one line)."""
    results = path / RESULTS
    try:
        data = json.loads(results.read_text())
    except FileNotFoundError:
        return f"{path}: no {RESULTS}"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"{results}: skipped, not readable JSON ({exc})"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return f"{results}: skipped, no `cells` list (not a results.json of hil run)"
    schema = data.get("schema", 1)
    if schema not in SCHEMAS:
        return (f"{results}: skipped, schema {schema!r} (this rig reads "
                f"{', '.join(map(str, SCHEMAS))}; a newer rig wrote it?)")
    for i, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or not all(
                isinstance(cell.get(k), str) for k in ("board", "mode", "case", "verdict")):
            return f"{results}: skipped, cell {i} lacks board/mode/case/verdict"
        _tidy(cell)
    if not isinstance(data.get("environment", {}), dict):
        data["environment"] = {}
    run_id = str(data.get("run") or path.name)
    return Run(run_id, path, int(schema), data)


MAX_NUMBER = 1e12  # larger is no time nor share a run can have measured (and overflows math)


def number(value: object) -> float | None:
    """A finite number from results.json, else None (a bool, a string, NaN, infinity or an
    absurd magnitude are no time)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and abs(value) <= MAX_NUMBER else None


def _tidy(cell: dict[str, Any]) -> None:
    """What the report reads of a cell, made safe to read: properties a dict of them, the
    times finite numbers or None, the texts texts."""
    props = cell.get("properties")
    cell["properties"] = props = dict(props) if isinstance(props, dict) else {}
    for key in ("handshake_ms", "duration_s"):
        cell[key] = number(cell.get(key))
    for key in ("cell_ms", "reconnect_ms", "detect_ms"):
        if key in props:
            props[key] = number(props[key])
    for key in ("reason", "cipher_suite"):
        cell[key] = str(cell.get(key) or "")


def _candidates(root: Path) -> Iterable[Path]:
    """Run directories in `root`: itself, or its children and grandchildren with results."""
    if (root / RESULTS).exists():
        yield root
        return
    for level in ("*", "*/*"):
        for results in sorted(root.glob(f"{level}/{RESULTS}")):
            if results.parent.name != "latest" and not results.parent.is_symlink():
                yield results.parent


def collect(current: Run, roots: Iterable[Path]) -> tuple[list[Run], list[str]]:
    """The runs older than `current` (by run id, whatever their directories are called) found
    under `roots`, each once, oldest first; and a line for each run directory skipped."""
    seen: dict[str, Run] = {}
    skipped: list[str] = []
    here = current.path.resolve()
    current_id = current.id
    for root in roots:
        if not root.exists():
            skipped.append(f"{root}: history directory does not exist")
            continue
        for path in _candidates(root):
            if path.resolve() == here:
                continue
            run = read_run(path)
            if isinstance(run, str):
                skipped.append(run)
            elif run.id != current_id and run.order < current_id:
                seen.setdefault(run.id, run)
    return sorted(seen.values(), key=lambda r: r.order), skipped


def prune(root: Path, keep: int, protect: Path) -> list[Path]:
    """Remove the oldest run directories under `root` (names like 20261130-115343-22103) so
    that `keep` remain, never `protect` (the run just made); returns what was removed."""
    if keep <= 0:
        return []
    runs = sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.is_symlink() and RUN_ID.match(p.name))
    doomed = [p for p in runs[:-keep] if p.resolve() != protect.resolve()]
    for p in doomed:
        shutil.rmtree(p, ignore_errors=True)
    return doomed
