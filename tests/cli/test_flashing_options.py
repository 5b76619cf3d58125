"""--erase-nvs / --erase-all as a user gives them: pytest checks the values, and `hil run --hil
--erase-nvs` hands the option to the esp32 driver."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from rig.config import HilConfig
from tests.support import ROOT, hil, tmp_config


def test_erase_option_values_are_checked() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--erase-nvs", "maybe",
                           "--collect-only", "-q"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--erase-nvs: expected y/yes/true or n/no/false, got 'maybe'" in proc.stderr


def test_hil_run_erase_nvs_reaches_the_board_driver(tmp_path: Path,
                                                    hil_config: HilConfig) -> None:
    """`hil run --hil --erase-nvs` hands the option to the esp32 driver, which refuses it for a
    board with flash = false: the cell errors with that reason."""
    port = tmp_path / "ttyFAKE"
    port.touch()
    config = tmp_config(tmp_path, hil_config)
    config.write_text(config.read_text() + f'\n[[boards]]\nname = "esp-a"\nkind = "esp32"\n'
                      f'port = "{port}"\nflash = false\n')
    proc = hil("run", "--hil", "--erase-nvs", "--mode", "psk", "--no-negative",
               "--no-resilience", config=config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"esp-a +psk +connect_publish .*ERROR .*--erase-nvs needs esptool",
                     proc.stdout), proc.stdout
