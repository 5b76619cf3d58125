"""What the plugin keeps per pytest run, and the inventory (hil.toml), loaded lazily: only what
needs a board, a broker or the PKI reads it, so tests that need none run without a hil.toml."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rig.boards.flashing import FlashOptions
from rig.broker.mosquitto import Broker
from rig.config import Board, ConfigError, HilConfig, load
from rig.device.console import Console
from rig.device.profile import Profile
from rig.device.profile import check as check_profiles
from rig.host.observer import Observer

CONFIG = pytest.StashKey[HilConfig]()
CONSOLE = pytest.StashKey[Console]()  # a test's board console, for its failure report
BROKER_MARKS = pytest.StashKey[list[tuple[Broker, int]]]()  # a test's brokers + log positions
RUN_DIR = pytest.StashKey[Path]()
FLASH = pytest.StashKey[FlashOptions]()
OBSERVER = pytest.StashKey[Observer]()
PROFILES = pytest.StashKey[dict[str, Profile]]()  # the device profiles hil.toml can name
CELL_FAILED = pytest.StashKey[bool]()  # the test's set-up or call failed (for its board)


def config_path(config: pytest.Config) -> Path:
    """--hil-config, else $HIL_CONFIG, else hil.toml in the directory pytest was started in
    (an xdist worker takes the controller's)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "hil_config" in workerinput:
        return Path(workerinput["hil_config"])
    given = config.getoption("--hil-config") or os.environ.get("HIL_CONFIG")
    return Path(given) if given else Path(config.invocation_params.dir) / "hil.toml"


# the fixtures that make a test one of the rig's (its parametrization applies only to those)
RIG_FIXTURES = frozenset({"hil_config", "pki", "run_dir", "broker", "start_broker", "observer",
                          "board_driver", "board_strategy", "board_console", "virtual_board",
                          "agent", "hil_agent", "board_profile"})


def rig_in_use(config: pytest.Config) -> bool:
    """Whether this pytest run is the rig's (an inventory or a rig option is there), as opposed
    to another project's that merely has hil-rig installed: then the plugin stays out of its
    way (no signal handlers, no --dist check, no scheduler, no sweep)."""
    if hasattr(config, "workerinput") and "hil_config" in getattr(config, "workerinput", {}):
        return True
    return bool(config.getoption("--hil-config") or os.environ.get("HIL_CONFIG") or
                config.getoption("--hil-run-dir") or config.getoption("--hil-results") or
                config_path(config).exists())


def inventory(config: pytest.Config) -> HilConfig:
    """hil.toml, loaded and validated on first use (a broken or missing one is a usage error
    that names the file); --board names are checked against it."""
    hil = config.stash.get(CONFIG, None)
    if hil is None:
        path = config_path(config)
        if not path.exists():
            raise pytest.UsageError(
                f"{path}: file not found. Tests that use boards, brokers or the PKI read the "
                "runner's inventory: pass --hil-config FILE, set HIL_CONFIG, or run pytest in "
                "the directory that holds hil.toml")
        try:
            hil = load(path)
            config.stash[PROFILES] = check_profiles(hil)  # every board's is there and usable
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        for name in config.getoption("--board") or []:
            try:
                hil.board(name)
            except KeyError as exc:
                raise pytest.UsageError(str(exc.args[0])) from None
        config.stash[CONFIG] = hil
    return hil


def board_profile(config: pytest.Config, board: str) -> Profile:
    """The device profile of `board` (rig/device/profile.py), read with hil.toml."""
    hil = inventory(config)
    return config.stash[PROFILES][hil.board(board).profile]


def selected_boards(config: pytest.Config) -> tuple[list[Board], str]:
    """The boards this run uses, and why there are none when the list is empty."""
    hil = inventory(config)
    kind = "esp32" if config.getoption("--hil") else "virtual"
    names = config.getoption("--board")
    boards = [b for b in hil.boards if b.kind == kind and (not names or b.name in names)]
    if boards:
        return boards, ""
    wanted = f" named {', '.join(names)}" if names else ""
    return [], f"no {kind} board{wanted} in {hil.source}" + (
        " (--hil runs physical boards only)" if kind == "esp32" else "")
