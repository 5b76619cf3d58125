"""Boards in parallel with pytest-xdist: every worker writes into one run directory (its own
logs in <run dir>/gw<N>/), and the controller schedules one worker per board
(rig/pytest_plugin/scheduling.py, since xdist's loadgroup no longer groups on pytest 9.2)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from rig.pytest_plugin.inventory import RUN_DIR, config_path, inventory
from rig.pytest_plugin.scheduling import GROUPS_DIR, BoardScheduling, write_groups
from rig.report.run_dir import new_run_dir


def shared_run_dir(config: pytest.Config) -> Path:
    """The run's directory (--hil-run-dir, or a new runs/<id> of hil.toml's run_dir, or, with
    no hil.toml at all, a temporary one), made once per pytest run."""
    path = config.stash.get(RUN_DIR, None)
    if path is None:
        given = config.getoption("--hil-run-dir")
        if given:
            path = Path(given)
            path.mkdir(parents=True, exist_ok=True)
        elif config_path(config).exists():
            path = new_run_dir(inventory(config).run_dir)
        else:
            path = Path(tempfile.mkdtemp(prefix="hil-run-"))
        shutil.rmtree(path / GROUPS_DIR, ignore_errors=True)  # a reused dir's earlier workers
        config.stash[RUN_DIR] = path
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: every worker writes into the same run directory."""
    node.workerinput["hil_run_dir"] = str(shared_run_dir(node.config))
    node.workerinput["hil_config"] = str(config_path(node.config).resolve())


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist controller: one worker per board (rig/pytest_plugin/scheduling.py)."""
    return BoardScheduling(config, log, shared_run_dir(config))


@pytest.hookimpl(tryfirst=True)  # before the xdist worker reports its collection
def pytest_collection_finish(session: pytest.Session) -> None:
    worker_id, _ = worker(session.config)
    if worker_id:
        write_groups(Path(session.config.workerinput["hil_run_dir"]),  # type: ignore[attr-defined]
                     worker_id, session.items)


def worker(config: pytest.Config) -> tuple[str, int]:
    """This process's xdist worker id and index ("", 0 without -n)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return "", 0
    worker_id = str(workerinput["workerid"])
    return worker_id, int(worker_id.removeprefix("gw") or 0)


def broker_ports(config: pytest.Config) -> tuple[int, int]:
    """(session broker port, extra broker port) of this process. With a fixed `[broker] port`
    P, worker gwN (N = 0 without -n) owns P + 2N for the mode's session broker and P + 2N + 1
    for a test's own broker (negative cases and the like, one at a time); 0 = any free port."""
    base = inventory(config).broker.port
    if not base:
        return 0, 0
    _, index = worker(config)
    return base + 2 * index, base + 2 * index + 1

