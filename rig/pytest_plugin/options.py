"""The rig's command-line options and configuration: --hil, --board, --mode,
--hil-allow-missing, --hil-config, --hil-run-dir, --hil-results; pytest-embedded's --erase-nvs
/ --erase-all; markers; the distribution modes that keep one board on one worker; SIGTERM/SIGHUP
as Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.boards.flashing import FlashOptions
from rig.config import MODES, WEB_MODES
from rig.local.children import interrupt_on_termination
from rig.pytest_plugin.inventory import FLASH, rig_in_use
from rig.pytest_plugin.results import JunitNames, MatrixReporter


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop rig")
    group.addoption("--hil", action="store_true", default=False,
                    help="run on the physical (esp32) boards of hil.toml instead of virtual ones")
    group.addoption("--board", action="append", default=None, metavar="NAME",
                    help="board(s) from hil.toml to run on (default: all of the selected kind)")
    group.addoption("--mode", action="append", choices=MODES + WEB_MODES, default=None,
                    help="mode(s) to run: broker modes ca, mutual, psk; device HTTPS server "
                         "modes https, https-mutual (default: all)")
    group.addoption("--hil-allow-missing", action="store_true", default=False,
                    help="with --hil: board cells skipped because their board is not there "
                         "(not attached, unreachable, no build, Wi-Fi variables unset) do not "
                         "fail the session; the summary still names each board and why")
    group.addoption("--hil-config", default=None,
                    help="hil.toml to use (default: $HIL_CONFIG or ./hil.toml)")
    group.addoption("--hil-run-dir", default=None,
                    help="directory for broker logs and board logs (default: a new runs/<id>)")
    group.addoption("--hil-results", default=None,
                    help="write every matrix cell's verdict to this JSON file (and print a "
                         "line per cell as it finishes)")


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM / SIGHUP (and the SIGTERM a dying `hil run` sends, see rig/local/children.py) stop the
    # run like Ctrl-C: fixtures tear down, brokers and boards stop, secret files go.
    config.addinivalue_line("markers", "modes(*names): run this test only in these broker modes")
    config.addinivalue_line("markers", "fresh_board: reset the board before this test")
    config.addinivalue_line("markers", "chip_clock: run this test only on boards that check "
                            "certificate dates against their own clock, as a chip does (esp32, "
                            "and virtual boards with variant = \"esp\")")
    config.addinivalue_line("markers", "resilience: run this test only on boards whose profile "
                            "reconnects (reconnect = true)")
    # also declared by pytest-xdist; here too so that `-p no:xdist` runs without warnings
    config.addinivalue_line("markers", "xdist_group(name): the board a test runs on")
    config.stash[FLASH] = _flash_options(config)
    if not rig_in_use(config):
        return  # another project's run with hil-rig installed: stay out of its way
    if config.pluginmanager.has_plugin("labgrid"):
        raise pytest.UsageError(
            "labgrid's pytest plugin is active: it replaces pytest-embedded's `target` fixture "
            "(and skips every test without --lg-env). The rig reaches labgrid itself (hil.toml "
            "[labgrid]): run pytest with -p no:labgrid (hil run does; add it to addopts)")
    interrupt_on_termination()
    dist = config.getoption("dist", "no")
    if dist not in ("no", "load", "loadgroup"):
        raise pytest.UsageError(
            f"--dist {dist}: the rig schedules boards itself (one worker per board, "
            "rig/pytest_plugin/scheduling.py); use -n N alone, or --dist load / loadgroup")
    if not hasattr(config, "workerinput"):  # where reports arrive (xdist: the controller)
        config.pluginmanager.register(JunitNames(config), "hil-junit-names")
        results = config.getoption("--hil-results")
        if results:
            config.pluginmanager.register(MatrixReporter(config, Path(results)),
                                          "hil-matrix-reporter")


def _flash_options(config: pytest.Config) -> FlashOptions:
    """pytest-embedded's own --erase-nvs / --erase-all (y/yes/true, n/no/false) and
    --part-tool, applied by the rig's board drivers on each board's first open."""
    def yes(dest: str) -> bool:
        raw = config.getoption(dest, None)
        if raw is None or str(raw).lower() in ("n", "no", "false"):
            return False
        if str(raw).lower() in ("y", "yes", "true"):
            return True
        raise pytest.UsageError(f"--{dest.replace('_', '-')}: expected y/yes/true or "
                                f"n/no/false, got {raw!r}")

    return FlashOptions(erase_nvs=yes("erase_nvs"), erase_all=yes("erase_all"),
                        part_tool=config.getoption("part_tool", None))
