"""The rig as a pytest plugin, registered through the `pytest11` entry point `hil` (so it is
active wherever hil-rig is installed, as pytest-embedded's and labgrid's plugins are):

    options.py    --hil, --board, --mode, --hil-allow-missing, --hil-config, --hil-run-dir,
                  --hil-results, markers
    inventory.py  hil.toml, loaded only by what needs it; what the plugin keeps per run
    fixtures.py   hil_config, pki, run_dir, broker, observer, board_driver, board_console, ...
    farm.py       boards on a labgrid farm: places acquired at the start, released at the end
    capture.py    --hil-capture: a failing cell's traffic as a decryptable pcapng; the
                  capture_port fixture for a port known only during the cell; wire_suite
                  (the suite in the Server Hello, for a firmware that prints none)
    hooks.py      parametrization, --mode deselection, each report's cell and failure cause,
                  boards that were not there under --hil (they fail the session)
    xdist.py      one worker per board, one shared run directory (scheduling.py: the scheduler)
    results.py    each cell's verdict: live progress, results.json (--hil-results), JUnit
                  names (junit.py), registered by options.py; rig/report/ reads what it wrote

The product's own tests (the mode matrix, the device's HTTPS server, the negative matrix) ship
in `rig.cases`; `hil run` runs them with `pytest --pyargs rig.cases...` from any directory
that holds a hil.toml.
"""

# in import order (a module another one imports comes first, so pytest can rewrite its asserts)
pytest_plugins = [
    "rig.pytest_plugin.results",
    "rig.pytest_plugin.xdist",
    "rig.pytest_plugin.options",
    "rig.pytest_plugin.farm",
    "rig.pytest_plugin.fixtures",
    "rig.pytest_plugin.capture",
    "rig.pytest_plugin.hooks",
]
