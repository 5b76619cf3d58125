"""The rig as a firmware team installs it: a wheel built from this checkout, installed into a
fresh venv outside the repository, runs the whole matrix with `hil run` in an empty directory
that holds only a hil.toml pointing at a hil-agent build. Nothing of the checkout (its
conftest.py, tests/ or pyproject settings) takes part."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rig.config import HilConfig
from tests.support import committed_toml

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "HIL_CONFIG")}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv with the wheel of this checkout installed."""
    base = tmp_path_factory.mktemp("wheel")
    # from a clean copy of the checkout's files (an in-tree build/ could carry stale modules)
    tracked = _run(["git", "ls-files", "-z"], ROOT).stdout.split("\0")
    source = base / "source"
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                  str(base / "dist"), str(source)], base)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (base / "dist").glob("hil_rig-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {n for n in filter(None, tracked)
               if n.startswith("rig/") and n.endswith(".py") and (ROOT / n).is_file()}
    assert {n for n in names if n.endswith(".py")} == modules, "the wheel's modules differ"
    assert not any(n.startswith(("tests/", "conftest.py")) for n in names), names
    venv = base / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], base)
    assert made.returncode == 0, made.stderr
    pip = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                "--disable-pip-version-check", str(wheel)], base, timeout=900)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv / "bin"


def test_an_installed_wheel_runs_the_matrix_from_an_empty_directory(
        installed: Path, tmp_path: Path, hil_config: HilConfig, hil_agent: Path) -> None:
    work = tmp_path / "firmware-repo"
    work.mkdir()
    text = committed_toml(hil_config).replace(
        'kind = "virtual"', f'kind = "virtual"\nbuild_dir = "{hil_agent.parent}"', 1)
    (work / "hil.toml").write_text(text)
    assert sorted(p.name for p in work.iterdir()) == ["hil.toml"]

    proc = _run([str(installed / "hil"), "run"], work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # one hil-agent board: 31 cells and its 11 resilience cells
    assert "42 passed, 0 failed" in proc.stdout, proc.stdout
    # everything it made is beside hil.toml, and the package it ran is the installed one
    assert (work / "runs" / "latest" / "results.json").exists() and (work / "pki").is_dir()
    log = (work / "runs" / "latest" / "pytest.log").read_text()
    assert str(ROOT) not in log.replace(str(hil_agent.parent), ""), log[-2000:]
    plugin = _run([str(installed / "python"), "-c",
                   "import rig.pytest_plugin as p; print(p.__file__)"], work)
    assert str(installed.parent) in plugin.stdout, plugin.stdout
