"""The virtual board: the firmware's portable core built for Linux (`hil-agent`), its console
on a pseudo-terminal.

It stands in for an ESP32 on USB. The agent's stdin/stdout are the pty's controlling side; the
other side has a /dev/pts path that pytest-embedded's `serial` service opens exactly as it opens
/dev/ttyUSB0. Reset = restart the process; the per-board state file stands for flash/NVS, so
`config save` survives a reset. Exercised for real: console, MQTT client, mbedTLS handshakes
against the real Mosquitto. Not exercised: Wi-Fi, the chip's crypto accelerators and timing,
esptool.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import termios
import tty
from pathlib import Path
from typing import Any

from rig.boards import BoardConsole, BoardUnavailable
from rig.boards.serial_reader import use_blocking_reader
from rig.local.children import die_with_parent, exit_description, terminate

VARIANTS = {"native": "Debian's mbedTLS 2.28, 64-bit, the host's clock",
            "esp": "what the chip runs: mbedTLS 3.6 configured like ESP-IDF, 32-bit, no clock "
                   "until the rig sets it"}
_EXERCISED = ("the console, MQTT client and mbedTLS handshakes are real; Wi-Fi, the chip's "
              "crypto accelerators and timing, and esptool are not exercised")
WHAT_IT_IS = ("virtual board: the firmware's portable core on Linux behind a pty (variants: "
              + "; ".join(f"{k}: {v}" for k, v in VARIANTS.items()) + "); " + _EXERCISED)


def what_it_is(variant: str) -> str:
    """One virtual board's description, for reports."""
    return (f"virtual board: the firmware's portable core on Linux behind a pty, variant "
            f"{variant} ({VARIANTS.get(variant, '?')}); {_EXERCISED}")


class VirtualBoard:
    kind = "virtual"

    def __init__(self, name: str, agent: Path, state_dir: Path, log_dir: Path, *,
                 erase: bool = False) -> None:
        """erase: the first open starts from an empty state file, as --erase-nvs and
        --erase-all leave a physical board's NVS."""
        self.name = name
        self.agent = agent
        self._erase = erase
        self.state_path = state_dir / f"{name}.state"
        # stands for the chip's `nvs` partition once an image was written (write_nvs)
        self.nvs_path = state_dir / f"{name}.nvs.bin"
        self._nvs = False
        self.stderr_path = log_dir / f"{name}.agent-stderr.log"
        self._master: int | None = None
        self._slave: int | None = None
        self._port = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_mark = 0
        state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)  # the state file stands for flash: it may hold secrets
        log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def firmware_file(self) -> Path:
        """What the board runs (its SHA-256 goes into the reports)."""
        return self.agent

    @property
    def port(self) -> str:
        """The pty path a serial client opens (created on first use)."""
        if self._master is None:
            self._master, self._slave = os.openpty()
            # Raw: no echo (the agent would read its own output back) and no newline mangling.
            tty.setraw(self._slave)
            self._port = os.ttyname(self._slave)
            # We keep our slave fd open so the agent never sees a hang-up when a test closes
            # the port between tests.
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def start(self) -> None:
        """Power on: start the agent with its console on the pty."""
        if not self.agent.exists():  # like an esp32 without its build: not available
            raise BoardUnavailable(f"board {self.name}: {self.agent} does not exist; build it "
                                   "with `firmware/host/build.sh`")
        self.port  # noqa: B018 - creates the pty
        assert self._master is not None
        self.stop()
        # A power cycle loses what was on the wire: a command written while the agent was
        # down must not reach the new one, nor the old one's unread output the rig.
        assert self._slave is not None
        termios.tcflush(self._master, termios.TCIOFLUSH)
        termios.tcflush(self._slave, termios.TCIOFLUSH)
        self._stderr_mark = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        nvs = ["--nvs", str(self.nvs_path)] if self._nvs else []
        with self.stderr_path.open("ab") as err:
            self._proc = subprocess.Popen(
                [str(self.agent), "--state", str(self.state_path), *nvs],
                stdin=self._master, stdout=self._master, stderr=err,
                start_new_session=True, close_fds=True, preexec_fn=die_with_parent(),
            )

    def open(self) -> Any:
        """A pytest-embedded serial Dut on the pty, then a reset (power cycle) of the agent."""
        from pytest_embedded.dut_factory import DutFactory

        dut = DutFactory.create(embedded_services="serial", port=self.port)
        use_blocking_reader(dut)  # before the reset: the stream has the whole boot
        if self._erase:
            self.stop()
            self.state_path.unlink(missing_ok=True)
            self._erase = False
        self.reset()
        return dut

    def prepare(self, console: BoardConsole) -> None:
        """Nothing to join: the virtual board's network is the host's loopback."""

    def address(self, console: BoardConsole) -> str:
        return "127.0.0.1"

    def after_test(self) -> str:
        """Power off; an agent that had exited on its own, or a sanitizer report since the last
        start, is a failure."""
        death = self.death()
        if death:
            self.stop()
            return f"board {self.name}: {death}"
        self.stop()
        report = self.sanitizer_report()
        return f"sanitizer report from {self.name}:\n{report}" if report else ""

    @property
    def powered(self) -> bool:
        """Whether the agent was started and not stopped by the rig (it may have died)."""
        return self._proc is not None

    def death(self) -> str:
        """'' while the agent runs (or was stopped by the rig), else how it ended."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return ""
        report = self.sanitizer_report()
        return f"agent exited ({exit_description(proc.returncode)})" + (
            f"; sanitizer report:\n{report}" if report else "")

    def write_nvs(self, dut: Any, image: bytes) -> None:
        """The image (it holds the board's keys) replaces the virtual `nvs` partition, 0600 in
        the 0700 state directory; every later start reads it (hil-agent --nvs)."""
        tmp = self.nvs_path.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(image)
        os.replace(tmp, self.nvs_path)
        self._nvs = True

    def restart(self, dut: Any) -> str:
        """Power cycle with the port kept open; returns what the power-off found."""
        problem = self.after_test()
        self.start()
        return problem

    def power_cycle(self) -> str:
        """Its restart already is one (the process is its power): nothing more to cut."""
        return ""

    def reset(self) -> None:
        self.stop()
        self.start()

    def stop(self, timeout: float = 3.0) -> int | None:
        """Power off; returns the agent's exit code (None if it was not running)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        return terminate(proc, timeout)

    def sanitizer_report(self) -> str:
        """What AddressSanitizer/UBSan printed since the last start ('' if nothing)."""
        if not self.stderr_path.exists():
            return ""
        with self.stderr_path.open("rb") as fh:
            fh.seek(self._stderr_mark)
            text = fh.read().decode("utf-8", "replace")
        markers = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
        return text if any(m in text for m in markers) else ""

    def close(self) -> None:
        self.stop()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
