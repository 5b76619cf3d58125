"""A failing test run with `pytest -l` (locals in the report), as a user runs it in a
subprocess: no key in its output."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support import ROOT, assert_no_secret

KEY = "0123456789abcdef0123456789abcdef"


def test_pytest_report_with_locals_shows_no_secret(tmp_path: Path) -> None:
    """A failing test run with `pytest -l` (locals in the report) and failed `==` of settings
    and credentials (pytest drills into dataclasses with a generated __eq__): no key."""
    test = tmp_path / "test_leaky.py"
    # the keys are computed, so the source lines pytest quotes do not hold them
    test.write_text(textwrap.dedent("""
        from rig.device.provision import Setting
        from rig.host.tls import ClientCredentials

        KEY = "0123456789abcdef" * 2

        def test_settings():
            mine = Setting("mqtt.ssl_psk_key", KEY.encode())
            theirs = Setting("mqtt.ssl_psk_key", KEY[::-1].encode())
            assert mine == theirs

        def test_credentials():
            mine = ClientCredentials("psk", psk_identity="me", psk_hex=KEY)
            theirs = ClientCredentials("psk", psk_identity="me", psk_hex=KEY[::-1])
            assert [mine] == [theirs]
    """))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the checkout's conftest/config
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-l", "-vv", "-p", "no:cacheprovider",
         "-p", "no:labgrid", str(test)],  # labgrid's plugin would skip both (README)
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    out = proc.stdout + proc.stderr
    lines = out.splitlines()
    assert_no_secret(KEY, "KEY", {"the pytest run's output": lines})  # before `out` is shown
    assert_no_secret(KEY[::-1], "KEY reversed", {"the pytest run's output": lines})
    assert proc.returncode == 1 and "2 failed" in out, out
    assert "mine       = Setting(key='mqtt.ssl_psk_key', value=<32 bytes>)" in out  # -l at work
