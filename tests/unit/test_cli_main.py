"""rig.cli.main in this process (the `hil` command run as a user runs it, in a subprocess:
tests/cli/test_cli.py)."""

from __future__ import annotations

import pytest


def test_other_key_errors_are_not_reported_as_a_board(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Only an unknown --board is a usage error; any other KeyError is a bug and surfaces."""
    from rig import cli

    def broken(args: object) -> int:
        settings: dict[str, int] = {}
        return settings["missing"]

    monkeypatch.setattr(cli, "cmd_doctor", broken)
    with pytest.raises(KeyError, match="missing"):
        cli.main(["doctor"])
    assert "hil: error" not in capsys.readouterr().err
