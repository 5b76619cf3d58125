"""One `serial` package for two owners: pytest-embedded and esptool need `pyserial`, labgrid
needs `pyserial-labgrid` (pyserial 3.5 plus RFC 2217 fixes), and both install `serial/`. hil.sh
installs labgrid's last (docs/farm.md, "Dependencies"); these check that the venv resolved it so and
that both sides work with it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import serial

from rig.device.console import Console


def test_serial_is_pyserial_labgrid_and_both_distributions_are_there() -> None:
    assert serial.__version__ == importlib.metadata.version("pyserial-labgrid"), (
        f"`serial` is {serial.__version__}: pyserial was installed after pyserial-labgrid; "
        "run ./hil.sh setup (it reinstalls pyserial-labgrid last)")
    assert importlib.metadata.version("pyserial").startswith("3.5")  # what pytest-embedded wants


def test_labgrid_uses_it() -> None:
    """labgrid's serial driver and its client import with this `serial`."""
    proc = subprocess.run([sys.executable, "-c", "import labgrid.driver.serialdriver, "
                           "labgrid.remote.client, serial; print(serial.__file__)"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).parent == Path(serial.__file__).parent
    assert importlib.metadata.version("labgrid").startswith("26.")
    client = Path(sys.executable).parent / "labgrid-client"
    usage = subprocess.run([str(client), "--help"], capture_output=True, text=True,
                           timeout=60, check=False)
    assert usage.returncode == 0 and "acquire" in usage.stdout, usage.stderr


def test_pytest_embedded_serial_service_uses_it(agent: Console) -> None:
    """pytest-embedded's serial service opens a board's port with this `serial`."""
    port = agent.dut.serial.proc
    assert type(port).__module__.startswith("serial.")
    assert any(line.startswith("version=") for line in agent.send("version").data)
