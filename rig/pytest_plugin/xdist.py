"""Boards in parallel with pytest-xdist: every worker writes into one run directory (its own
logs in <run dir>/gw<N>/), and the controller schedules one worker per board
(rig/pytest_plugin/scheduling.py, since xdist's loadgroup no longer groups on pytest 9.2)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from rig.broker.mosquitto import free_ports
from rig.pytest_plugin.inventory import RUN_DIR, config_path, inventory, rig_in_use
from rig.pytest_plugin.scheduling import GROUPS_DIR, BoardScheduling, write_groups
from rig.report.run_dir import SESSION_FAULTS, new_run_dir


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
    if not rig_in_use(node.config):
        return
    node.workerinput["hil_run_dir"] = str(shared_run_dir(node.config))
    node.workerinput["hil_config"] = str(config_path(node.config).resolve())


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist controller: one worker per board (rig/pytest_plugin/scheduling.py); another
    project's run keeps xdist's own scheduler."""
    if not rig_in_use(config):
        return None
    return BoardScheduling(config, log, shared_run_dir(config))


@pytest.hookimpl(tryfirst=True)  # before the xdist worker reports its collection
def pytest_collection_finish(session: pytest.Session) -> None:
    worker_id, _ = worker(session.config)
    if worker_id and "hil_run_dir" in session.config.workerinput:  # type: ignore[attr-defined]
        write_groups(Path(session.config.workerinput["hil_run_dir"]),  # type: ignore[attr-defined]
                     worker_id, session.items)


def worker(config: pytest.Config) -> tuple[str, int]:
    """This process's xdist worker id and index ("", 0 without -n)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return "", 0
    worker_id = str(workerinput["workerid"])
    return worker_id, int(worker_id.removeprefix("gw") or 0)


PICKED_PORTS = pytest.StashKey[list[int]]()


def broker_port(config: pytest.Config, which: int) -> dict[str, Any]:
    """start_for_mode's port keyword for this process's session brokers (which = 0) or a
    test's own broker (1): hil.toml's fixed port (broker_ports), or, with port = 0, a free port
    this process picked once and tries first at every start, so that the capture running on
    it goes on (rig/host/capture.py, Recorder); a busy one is replaced by any free port."""
    fixed = broker_ports(config)[which]
    if fixed:
        return {"port": fixed}
    picked = config.stash.get(PICKED_PORTS, None)
    if picked is None:
        picked = config.stash[PICKED_PORTS] = free_ports(inventory(config).broker.bind, 2)
    return {"preferred_port": picked[which]}


def broker_ports(config: pytest.Config) -> tuple[int, int]:
    """(session broker port, extra broker port) of this process. With a fixed `[broker] port`
    P, worker gwN (N = 0 without -n) owns P + 2N for the mode's session broker and P + 2N + 1
    for a test's own broker (negative cases and the like, one at a time); 0 = any free port."""
    base = inventory(config).broker.port
    if not base:
        return 0, 0
    _, index = worker(config)
    return base + 2 * index, base + 2 * index + 1



@pytest.hookimpl(trylast=True)  # after the session's fixtures are torn down (pytest's runner)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Where the run ends (the xdist controller, or the one process): faults no cell saw
    (session-faults.txt: a board's death between cells, a sanitizer report at power-off, a
    broker that died after its mode's last cell) are shown and fail the run, blaming no cell."""
    if hasattr(session.config, "workerinput"):
        return
    run_dir = session.config.stash.get(RUN_DIR, None)
    if run_dir is None:
        return
    faults = [line for path in sorted(run_dir.rglob(SESSION_FAULTS))
              for line in path.read_text().splitlines() if line]
    if not faults:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "faults no cell saw", red=True)
        for fault in faults:
            reporter.write_line(fault)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
