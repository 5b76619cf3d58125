"""The hardware-in-the-loop rig: `hil` (cli.py), the pytest plugin (pytest_plugin/) and the
product's tests (cases/).

The tree reads in the order data flows, lowest first (STAGES): a module imports only from its
own stage or lower ones (tests/unit/test_layers.py checks every import, also those inside
functions and under TYPE_CHECKING).
"""

# rig.<stage>: a module (config.py) or a folder (boards/), lowest first
STAGES = (
    "errors",         # RigError and its exit code / pytest outcome: every stage raises them
    "config",         # hil.toml, validated
    "local",          # the runner itself: child processes, private dirs and files, locks, cache
    "pki",            # the test PKI, generated once
    "broker",         # a Mosquitto per mode
    "host",           # the host's end of every connection (TLS, observer, peers, captures)
    "boards",         # move bytes, reset, power; nothing of the console
    "device",         # the console, the board strategy, provisioning, the HTTPS server
    "cases",          # the matrix, HTTPS and negative tables and their tests
    "report",         # reads what the plugin wrote (results.json, farm.json); never imports it
    "pytest_plugin",  # options, fixtures, hooks, results.json and JUnit names
    "doctor",         # `hil doctor`'s checks
    "cli",            # `hil`
)
