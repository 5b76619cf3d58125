"""A session broker that dies between two modes, in a real pytest run of the rig's plugin (real
Mosquitto, killed with SIGKILL): the death is the fault of the mode whose broker it was, said
for the run at its end; the next mode's first cell is clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from rig.config import HilConfig
from tests.support import tmp_config

# In the nested run: after its last ca cell (its set-up, call and tear-down are over), the
# session's broker is killed, and the hook returns only once it is dead (a zombie: its parent,
# pytest, has not reaped it yet). Then the mutual cell asks for its broker.
KILL_AFTER_THE_CA_CELL = textwrap.dedent("""
    import os, signal, time
    from rig.broker.mosquitto import child_brokers

    def pytest_runtest_logfinish(nodeid, location):
        if not nodeid.endswith("[ca]"):
            return
        pids = child_brokers()
        assert len(pids) == 1, f"the ca cell's broker: {pids}"
        os.kill(pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while child_brokers() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not child_brokers(), "the killed broker did not die"
        with open("killed.txt", "w") as fh:
            fh.write(str(pids[0]))
""")

CELLS = textwrap.dedent("""
    import pytest

    @pytest.mark.modes("ca", "mutual")
    def test_cell(broker, mode):
        assert broker.running and broker.mode == mode
""")


def test_a_broker_dead_after_its_modes_last_cell_is_that_modes_fault(
        tmp_path: Path, hil_config: HilConfig) -> None:
    config = tmp_config(tmp_path, hil_config)
    (tmp_path / "conftest.py").write_text(KILL_AFTER_THE_CA_CELL)
    (tmp_path / "test_cells.py").write_text(CELLS)
    run_dir, results = tmp_path / "run", tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if k not in ("HIL_CONFIG", "PYTEST_ADDOPTS")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:labgrid", "-v",
         "-c", os.devnull, "--rootdir", str(tmp_path), "--hil-config", str(config),
         "--hil-run-dir", str(run_dir), "--hil-results", str(results), "test_cells.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
    out = proc.stdout + proc.stderr
    assert (tmp_path / "killed.txt").exists(), f"the ca cell never ran:\n{out}"
    cells = {c["mode"]: c for c in json.loads(results.read_text())["cells"]}
    assert [cells[m]["verdict"] for m in ("ca", "mutual")] == ["pass", "pass"], cells
    # the mutual cell started with a broker of its own: nothing of ca's death is its
    assert "fault" not in cells["mutual"]["properties"], cells["mutual"]["properties"]
    death = ("broker ca: mosquitto exited (signal 9 (SIGKILL)) after its mode's last cell; "
             f"log: {run_dir / 'broker-ca.log'} (found when mode mutual started)")
    faults = (run_dir / "session-faults.txt").read_text().splitlines()
    assert faults == [death], faults
    assert "faults no cell saw" in proc.stdout and death in proc.stdout, out
    assert proc.returncode == 1, out  # the run fails at its end, blaming no cell
