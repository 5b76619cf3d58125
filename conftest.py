"""The repository's own pytest settings. The rig's options, fixtures and hooks are not here:
they are the pytest plugin `rig.pytest_plugin`, which the hil-rig package registers through its
`pytest11` entry point (`./hil.sh setup` installs the package into .venv), so that a firmware
repository that installs hil-rig gets them too."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("hil"):
        raise pytest.UsageError("the rig's pytest plugin (entry point `hil`) is not registered: "
                                "install the package with ./hil.sh setup (pip install -e .)")
