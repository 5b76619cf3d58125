"""Boards in parallel with pytest-xdist: one worker per board, never two workers on one board.

A test's board is an `xdist_group` mark (set where tests are parametrized by board). pytest-xdist's
own `loadgroup` finds groups in node ids (`...[psk-virtual-0]@virtual-0`), which it makes by
rewriting each item's id; from pytest 9.2 that rewrite no longer takes effect, and tests of one
board silently spread over every worker (pytest-xdist issue #1386). So the rig does not depend on
node ids: each worker writes the groups it collected to `<run dir>/.xdist-groups/<worker>.json`
before reporting its collection, and the controller's `BoardScheduling` reads them. All tests of
a group form one unit of work, which goes to one worker; tests without a group are spread out.

A per-board lock file (rig.local.locks.board_lock) backs this up at run time, and also stops two
separate runs on one machine from sharing a board.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

GROUPS_DIR = ".xdist-groups"


def item_group(item: pytest.Item) -> str | None:
    """The xdist_group of a collected test (its board), or None."""
    names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                    for m in item.iter_markers("xdist_group")})
    return "_".join(names) if names else None


def write_groups(run_dir: Path, worker_id: str, items: Iterable[pytest.Item]) -> Path:
    """Worker side: node id -> group of every collected test that has one."""
    groups = {item.nodeid: g for item in items if (g := item_group(item)) is not None}
    path = run_dir / GROUPS_DIR / f"{worker_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups))
    os.replace(tmp, path)
    return path


def read_groups(run_dir: Path) -> dict[str, str]:
    """Controller side: the groups every worker wrote (they collect the same tests)."""
    groups: dict[str, str] = {}
    for path in sorted((run_dir / GROUPS_DIR).glob("*.json")):
        groups.update(json.loads(path.read_text()))
    return groups


class BoardScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped here
    """pytest-xdist scheduling where a unit of work is one board's tests (see module doc)."""

    def __init__(self, config: pytest.Config, log: Any, run_dir: Path) -> None:
        super().__init__(config, log)
        self.run_dir = run_dir
        self._groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:  # first call: every worker has reported its collection
            self._groups = read_groups(self.run_dir)
        group = self._groups.get(nodeid)
        return f"board:{group}" if group is not None else nodeid
