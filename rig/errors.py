"""The root of the rig's errors. Every error the rig raises on purpose is a RigError that says
what it means for the two places that report it, each mapping it once: the `hil` command
(`exit_code`) and the pytest plugin (`outcome`: a test that hits it fails, or is skipped for a
board that is not there). Its message names what was wrong and where."""

from __future__ import annotations

from typing import ClassVar, Literal


class RigError(Exception):
    exit_code: ClassVar[int] = 1  # 1: a check failed or something could not be done
    outcome: ClassVar[Literal["fail", "skip"]] = "fail"


class UsageError(RigError):
    """Bad input (hil.toml, an option): nothing was started."""

    exit_code = 2
