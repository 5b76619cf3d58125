"""`pytest --hil`, as a runner's nightly calls it (a real, nested `pytest --pyargs rig.cases
--hil`): a physical board that is not there, or none in hil.toml at all, fails the session and
the summary names each board and why; --hil-allow-missing accepts a missing board, as
`hil run --allow-missing` does, and still names it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rig.config import HilConfig
from tests.support import hil, tmp_config

GONE = "/dev/ttyUSB-hil-not-here"
BOARD = f'\n[[boards]]\nname = "esp32-gone"\nkind = "esp32"\nport = "{GONE}"\nflash = false\n'
SECTION = "boards that did not run (--hil)"


def pytest_hil(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`pytest --pyargs rig.cases --hil <args>` with `config` as hil.toml, in its directory
    (none of the checkout's pytest settings)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HIL_CONFIG", "PYTEST_ADDOPTS", "ESPPORT")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "rig.cases", "--hil", "-p", "no:labgrid",
         "-p", "no:cacheprovider", "-ra", "-c", os.devnull, "--rootdir", str(config.parent),
         "--hil-config", str(config), "--hil-run-dir", str(config.parent / "run"), *args],
        cwd=config.parent, capture_output=True, text=True, timeout=300, env=env)


def board_line(out: str) -> str:
    """The summary's line for esp32-gone (after the section's title)."""
    assert SECTION in out, out
    after = out.split(SECTION, 1)[1].splitlines()
    return next((ln for ln in after if ln.startswith("board esp32-gone: ")), "")


@pytest.fixture
def config_with_a_missing_board(tmp_path: Path, hil_config: HilConfig) -> Path:
    config = tmp_config(tmp_path, hil_config)
    config.write_text(config.read_text() + BOARD)
    return config


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_board_that_is_not_attached_fails_pytest_hil(config_with_a_missing_board: Path,
                                                       workers: list[str]) -> None:
    proc = pytest_hil(config_with_a_missing_board, *workers)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert f"{SECTION}: counted as a failure (--hil-allow-missing accepts them)" in out, out
    line = board_line(proc.stdout)
    assert line.endswith(f"cell(s) skipped: {GONE} does not exist (not attached?)"), out
    assert int(line.split(": ")[1].split()[0]) > 1, line  # every cell of the board, counted


def test_hil_allow_missing_accepts_it_and_still_names_it(
        config_with_a_missing_board: Path) -> None:
    proc = pytest_hil(config_with_a_missing_board, "--hil-allow-missing")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"{SECTION}: accepted (--hil-allow-missing)" in out, out
    assert f"{GONE} does not exist (not attached?)" in board_line(proc.stdout), out


def test_a_board_selection_is_not_a_missing_board(config_with_a_missing_board: Path) -> None:
    """--board names no esp32 board: the board cells are skipped by the user's choice, and
    hil.toml does list one, so nothing is missing."""
    proc = pytest_hil(config_with_a_missing_board, "--board", "virtual-0")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "no esp32 board named virtual-0" in out and SECTION not in out, out


@pytest.mark.parametrize("allow", [[], ["--hil-allow-missing"]], ids=["plain", "allow-missing"])
def test_no_esp32_board_in_hil_toml_fails_pytest_hil(tmp_path: Path, hil_config: HilConfig,
                                                     allow: list[str]) -> None:
    config = tmp_config(tmp_path, hil_config)  # virtual boards only
    proc = pytest_hil(config, *allow)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert SECTION in out, out
    assert f"no esp32 board in {config}: --hil runs the physical boards it lists" in out, out


def test_hil_run_allow_missing_is_the_plugins(config_with_a_missing_board: Path) -> None:
    """`hil run --hil --allow-missing` hands the option to its pytest, whose own verdict then
    accepts the missing board (the run still fails: no board cell passed)."""
    proc = hil("run", "--hil", "--allow-missing", "--mode", "ca", "--no-negative",
               "--no-resilience",
               config=config_with_a_missing_board)
    assert proc.returncode == 1 and "no board cell passed" in proc.stdout, proc.stdout
    log = (config_with_a_missing_board.parent / "runs" / "latest" / "pytest.log").read_text()
    assert f"{SECTION}: accepted (--hil-allow-missing)" in log, log
