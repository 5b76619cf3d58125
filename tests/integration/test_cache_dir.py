"""The rig's cache directory has one rule in Python (rig/local/cache.py) and one in shell
(rig/local/cache_dir.sh, sourced by hil.sh and firmware/host/mbedtls3/fetch.sh, which may run
before the venv exists): the two agree, and the scripts use the shared file, not a copy."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from rig.local import cache

ROOT = Path(__file__).resolve().parents[2]
SHELL_RULE = ROOT / "rig" / "local" / "cache_dir.sh"
SCRIPTS = (ROOT / "hil.sh", ROOT / "firmware" / "host" / "mbedtls3" / "fetch.sh")
CASES = {
    "HIL_CACHE_DIR": {"HIL_CACHE_DIR": "/srv/hil cache", "XDG_CACHE_HOME": "/xdg"},
    "XDG_CACHE_HOME": {"XDG_CACHE_HOME": "/xdg"},
    "empty HIL_CACHE_DIR": {"HIL_CACHE_DIR": "", "XDG_CACHE_HOME": "/xdg"},
    "HOME only": {},
    "empty XDG_CACHE_HOME": {"XDG_CACHE_HOME": ""},
}


def _shell_rule(env: dict[str, str]) -> Path:
    proc = subprocess.run(["sh", "-euc", '. "$1"; hil_cache_dir', "sh", str(SHELL_RULE)],
                          env=env, capture_output=True, text=True, timeout=10, check=True)
    return Path(proc.stdout.removesuffix("\n"))


@pytest.mark.parametrize("case", CASES)
def test_shell_and_python_name_the_same_cache_dir(case: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"HOME": str(tmp_path / "home"), "PATH": os.environ["PATH"], **CASES[case]}
    for name in ("HIL_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _shell_rule(env) == cache.cache_dir()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_scripts_source_the_rule_instead_of_spelling_it(script: Path) -> None:
    text = script.read_text()
    assert re.search(r"^\s*\. .*rig/local/cache_dir\.sh", text, re.MULTILINE), (
        f"{script.name} does not source rig/local/cache_dir.sh")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "HIL_CACHE_DIR" not in code and "hil-rig" not in code, (
        f"{script.name} spells the cache rule itself: call hil_cache_dir")
