"""hil-rig installed in another project's venv must not change that project's pytest runs: no
parametrization of its own `mode`, no refusal of its --dist, no rig files or processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_plugin_stays_out_of_another_projects_way(tmp_path: Path) -> None:
    (tmp_path / "test_theirs.py").write_text(
        "import pytest\n\n"
        "@pytest.fixture\n"
        "def mode():\n"
        "    return 'theirs'\n\n"
        "def test_own_mode_fixture(mode):\n"
        "    assert mode == 'theirs'\n\n"
        "@pytest.mark.parametrize('mode', ['a', 'b'])\n"
        "def test_own_parametrize(mode):\n"
        "    assert mode in ('a', 'b')\n")
    env = {k: v for k, v in os.environ.items() if k != "HIL_CONFIG"}
    # -p no:labgrid: this venv has the rig's farm extra, and labgrid's own plugin (not the
    # rig's) skips every test where pytest-embedded's plugin is active (README "Dependencies")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:labgrid", "-n", "2", "--dist", "loadscope", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout, proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == \
        ["test_theirs.py"]
    traced = subprocess.run(  # the plugin was there all along
        [sys.executable, "-m", "pytest", "--trace-config", "--co", "-q", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert "rig.pytest_plugin" in traced.stdout + traced.stderr
