"""Boards on a labgrid farm: a board in hil.toml names a labgrid place (`place = "bench1-esp0"`)
or tags (`tags = { board = "esp32" }`); the rig reserves and acquires its place from the
coordinator (rig/boards/places.py), reads the serial port the place's exporter serves (ser2net,
RFC 2217) and releases the place at the end of the run. This module is the coordinator's side:

    client = LabgridClient("127.0.0.1:20408")
    token = client.reserve({"name": "bench1-esp0"}); client.wait(token, 300.0)
    client.acquire("bench1-esp0")
    held = resolve(client, "bench1-esp0", board="esp0")
    held.url        # rfc2217://exporter-host:port, what pytest-embedded opens
    client.power(held.place, "cycle")
    client.release("bench1-esp0"); client.cancel(token)

Everything goes through `labgrid-client`, labgrid's own command line, so the rig needs no
private part of labgrid's Python API and every step is what a person can type to see the same
thing. Each call is one short process (about 0.25 s; an acquire about 0.5 s more, the exporter
starting ser2net). Each child dies with the rig (a parent-death signal) and runs in its own
session, so a Ctrl-C at the terminal reaches the rig, which decides: a call that only reads
(show, wait) is stopped at once; one that changes the coordinator's state (reserve, acquire,
release, cancel, power) is let finish for up to INTERRUPT_GRACE_S, so its outcome is known,
then the interrupt goes on (CallInterrupted, a KeyboardInterrupt carrying that outcome). A
second interrupt stops any call at once.
"""

from __future__ import annotations

import ast
import contextlib
import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rig.boards import BoardError
from rig.local.children import die_with_parent

CALL_TIMEOUT = 30.0  # one labgrid-client call (a coordinator that does not answer)
# after Ctrl-C/SIGTERM: how long a call that changes the coordinator's state may still take
INTERRUPT_GRACE_S = 5.0
# calls that change nothing on the coordinator: stopped at once on an interrupt
READ_ONLY_CALLS = frozenset({"show", "wait", "reservations", "places", "who"})
POWER_CYCLE_DELAY_S = 1.0  # how long a power cycle keeps the power off

# The resources of a place that `labgrid-client power` drives (labgrid 26's client picks the
# driver: NetworkPowerDriver, PDUDaemonDriver, USBPowerDriver (uhubctl on the exporter host),
# SiSPMPowerDriver, TasmotaPowerDriver, YKUSHPowerDriver, a GPIO through DigitalOutputPowerDriver).
POWER_RESOURCES = ("NetworkPowerPort", "PDUDaemonPort", "NetworkUSBPowerPort",
                   "NetworkSiSPMPowerPort", "TasmotaPowerPort", "NetworkYKUSHPowerPort",
                   "NetworkSysfsGPIO")


class FarmError(BoardError):
    """The farm cannot give the board (coordinator down, place busy too long, no serial port
    on the place): the board's cells fail with this reason."""


class PlaceBusy(FarmError):
    """The place is acquired by another client; the message names it."""


class CallTimeout(FarmError):
    """A labgrid-client call got no answer in time (it was stopped): what it asked of the
    coordinator may or may not have been done."""


class PlaceNotHeld(FarmError):
    """The run could not get the board's place (busy, no such place, coordinator down): the
    board's cells fail with this reason; nothing was reset or power cycled."""


class CallInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM reached the rig during a labgrid-client call. `completed`: the call's
    outcome when it was let finish (a state-changing call within INTERRUPT_GRACE_S), None
    when it was stopped (its effect on the coordinator unknown)."""

    def __init__(self, call: str, completed: subprocess.CompletedProcess[str] | None) -> None:
        super().__init__(f"interrupted during labgrid-client {call}")
        self.completed = completed


@dataclass(frozen=True)
class HeldPlace:
    """A place the rig holds for one board, and what its exporter serves."""

    board: str
    place: str
    exporter: str  # the exporter's name (labgrid-exporter --name)
    host: str  # where the exporter serves the serial port
    port: int
    device: str  # the serial device on the exporter (/dev/ttyUSB0, or /dev/pts/N)
    power: str  # the place's power resource class ('' when it has none)
    token: str = ""  # the reservation (tags), '' for a place named in hil.toml
    coordinator: str = ""

    @property
    def modem_lines(self) -> bool:
        """A pty (a virtual board on the exporter) has no DTR/RTS: ser2net acknowledges no
        line change on it, and nothing would reach an EN pin anyway."""
        return not self.device.startswith("/dev/pts/")

    @property
    def url(self) -> str:
        """The pyserial URL of the place's serial port (pyserial must not wait for line
        acknowledgements ser2net does not send for a pty)."""
        return f"rfc2217://{self.host}:{self.port}" + (
            "" if self.modem_lines else "?ign_set_control")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HeldPlace:
        return cls(**data)


def labgrid_client_program() -> str:
    """labgrid-client next to this Python (the venv the rig runs in), else on PATH."""
    here = Path(sys.executable).parent / "labgrid-client"
    if here.exists():
        return str(here)
    found = shutil.which("labgrid-client")
    if not found:
        raise FarmError("labgrid-client not found (neither next to "
                        f"{sys.executable} nor on PATH): install labgrid with the rig's farm "
                        "extra (pip install 'hil-rig[farm]'; ./hil.sh setup does)")
    return found


def owner() -> str:
    """This runner's labgrid identity (host/user), as labgrid-client names it."""
    return (f"{os.environ.get('LG_HOSTNAME') or socket.gethostname()}/"
            f"{os.environ.get('LG_USERNAME') or getpass.getuser()}")


@dataclass(frozen=True)
class PlaceInfo:
    """What `labgrid-client show` says of a place."""

    name: str
    acquired: str  # host/user, '' when free
    resources: list[tuple[str, str, dict[str, Any]]]  # (path, class, params) once acquired
    reservation: str = ""  # the token of the reservation the place is allocated to


_PLACE = re.compile(r"^Place '([^']+)':$", re.MULTILINE)
_ACQUIRED = re.compile(r"^  acquired: (\S+)$", re.MULTILINE)
_RESERVATION = re.compile(r"^  reservation: (\S+)$", re.MULTILINE)
_RESOURCE = re.compile(r"^Acquired resource '[^']*' \(([^)]+)\):$")


def parse_show(text: str) -> PlaceInfo:
    """`labgrid-client -p PLACE show`: the place's name, holder and acquired resources (each
    printed as a Python literal under its header)."""
    m = _PLACE.search(text)
    if not m:
        raise FarmError(f"labgrid-client show printed no place: {text.strip()[:200]!r}")
    acquired = _ACQUIRED.search(text)
    resources: list[tuple[str, str, dict[str, Any]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        header = _RESOURCE.match(lines[i])
        i += 1
        if not header:
            continue
        block: list[str] = []
        while i < len(lines) and lines[i].startswith(" "):
            block.append(lines[i])
            i += 1
        try:
            data = ast.literal_eval("\n".join(block).strip())
        except (ValueError, SyntaxError) as exc:
            raise FarmError(f"labgrid-client show: cannot read resource {header.group(1)}: "
                            f"{exc}") from None
        if isinstance(data, dict):
            resources.append((header.group(1), str(data.get("cls", "")),
                              dict(data.get("params", {}))))
    value = acquired.group(1) if acquired else ""
    reservation = _RESERVATION.search(text)
    return PlaceInfo(m.group(1), "" if value == "None" else value, resources,
                     reservation.group(1) if reservation else "")


# what labgrid-client says when a place cannot be had now: acquired by someone (or by this
# identity), reserved for another's reservation, a resource another place holds
_BUSY = ("already acquired", "was not reserved for", "Failed to acquire resources")


def _stop(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.communicate()


def _communicate(proc: subprocess.Popen[str], call: str, timeout: float, timeout_means: str,
                 what: str) -> tuple[str, str]:
    """The call's (stdout, stderr) within `timeout` s; FarmError (naming `timeout_means`)
    after it.
    A first interrupt stops a read-only call at once and gives a state-changing one up to
    INTERRUPT_GRACE_S more; a second stops it at once. Either way CallInterrupted follows."""
    interrupted = False
    deadline = time.monotonic() + timeout
    while True:
        try:
            out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 0.0))
            break
        except subprocess.TimeoutExpired:
            _stop(proc)
            if interrupted:
                raise CallInterrupted(call, None) from None
            raise CallTimeout(f"{what}: {timeout_means} within {timeout:g} s") from None
        except KeyboardInterrupt:
            if interrupted or call in READ_ONLY_CALLS:
                _stop(proc)
                raise CallInterrupted(call, None) from None
            interrupted = True
            deadline = min(deadline, time.monotonic() + INTERRUPT_GRACE_S)
    if interrupted:
        raise CallInterrupted(call, subprocess.CompletedProcess(proc.args, proc.returncode,
                                                                out, err))
    return out, err


def reserved_token(out: str) -> str:
    """The token `labgrid-client reserve --shell` printed ('' when none)."""
    m = re.search(r"LG_TOKEN=(\S+)", out)
    return m.group(1) if m else ""


class LabgridClient:
    """labgrid-client against one coordinator."""

    def __init__(self, coordinator: str, program: str | None = None) -> None:
        self.coordinator = coordinator
        self.program = program or labgrid_client_program()

    def run(self, *args: str, place: str = "", timeout: float = CALL_TIMEOUT,
            waiting_for: str = "") -> str:
        """One labgrid-client call; its stdout, or FarmError with what it said. On Ctrl-C or
        SIGTERM meanwhile: CallInterrupted (see the module's docstring). `waiting_for`: what
        a timeout means (default: no answer)."""
        argv = [self.program, "-x", self.coordinator, *(("-p", place) if place else ()), *args]
        env = {k: v for k, v in os.environ.items() if k not in ("LG_PLACE", "LG_TOKEN", "LG_ENV")}
        try:
            # own session: a Ctrl-C at the terminal reaches the rig only, which decides (the
            # parent-death signal still ends it with the thread that started it)
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, text=True, env=env,
                                    start_new_session=True,
                                    preexec_fn=die_with_parent(signal.SIGTERM))
        except OSError as exc:
            raise FarmError(f"cannot run {self.program}: {exc.strerror}") from None
        out, err = _communicate(proc, args[0] if args else "", timeout, waiting_for or (
                                    f"no answer from the coordinator {self.coordinator}"),
                                f"labgrid-client {' '.join(args)}")
        if proc.returncode != 0:
            raise FarmError(self._failure(args, place, proc.returncode, out, err))
        return out

    def _failure(self, args: tuple[str, ...], place: str, code: int, out: str, err: str) -> str:
        said = (err.strip() or out.strip()).splitlines()
        text = said[-1].removeprefix("labgrid-client: ") if said else f"exit {code}"
        if "Could not connect to coordinator" in err or "UNAVAILABLE" in err:
            text = f"cannot reach the labgrid coordinator at {self.coordinator} ({text})"
        elif "already acquired by place" in out:  # a resource another place holds
            text = f"{text} ({out.strip().splitlines()[-1]})"
        return f"labgrid-client {' '.join(args)}{' (place ' + place + ')' if place else ''}: {text}"

    def show(self, place: str, timeout: float = CALL_TIMEOUT) -> PlaceInfo:
        return parse_show(self.run("show", place=place, timeout=timeout))

    def acquire(self, place: str) -> None:
        try:
            self.run("acquire", place=place)
        except FarmError as exc:
            if any(m in str(exc) for m in _BUSY):
                raise PlaceBusy(str(exc)) from None
            raise

    def release(self, place: str, timeout: float = CALL_TIMEOUT) -> None:
        self.run("release", place=place, timeout=timeout)

    def reserve(self, tags: dict[str, str]) -> str:
        """A reservation for one place with these tags (`name` is the place's name); its
        token. Interrupted after the coordinator made it: CallInterrupted, whose completed
        output `reserved_token` reads."""
        out = self.run("reserve", "--shell", *(f"{k}={v}" for k, v in sorted(tags.items())))
        token = reserved_token(out)
        if not token:
            raise FarmError(f"labgrid-client reserve printed no token: {out.strip()[:200]!r}")
        return token

    def wait(self, token: str, timeout: float) -> None:
        """Until the reservation is allocated (or expired, or invalid)."""
        self.run("wait", token, timeout=timeout, waiting_for="the reservation was not allocated")

    def cancel(self, token: str, timeout: float = CALL_TIMEOUT) -> None:
        self.run("cancel-reservation", token, timeout=timeout)

    def power(self, place: str, action: str) -> None:
        """on, off or cycle through the place's power resource."""
        extra = ("-t", str(POWER_CYCLE_DELAY_S)) if action == "cycle" else ()
        self.run("power", action, *extra, place=place)


def resolve(client: LabgridClient, place: str, board: str, token: str = "") -> HeldPlace:
    """What the exporter serves for an acquired place: its one serial port (FarmError when
    it has none, or no TCP port yet) and its power resource."""
    info = client.show(place)
    serial = [(path, params) for path, cls, params in info.resources
              if cls == "NetworkSerialPort"]
    if not serial:
        raise FarmError(f"place {place} has no serial port (its matches name no "
                        "RawSerialPort/USBSerialPort an exporter serves)")
    if len(serial) > 1:
        raise FarmError(f"place {place} has {len(serial)} serial ports "
                        f"({', '.join(p for p, _ in serial)}); the rig drives one console")
    path, params = serial[0]
    if not params.get("port"):
        raise FarmError(f"place {place}: the exporter serves no port for {path} "
                        "(the device is gone, or ser2net did not start on the exporter)")
    power = next((cls for _, cls, _ in info.resources if cls in POWER_RESOURCES), "")
    extra = params.get("extra") or {}
    return HeldPlace(board=board, place=place, exporter=path.split("/")[0],
                     host=str(params.get("host", "")), port=int(params["port"]),
                     device=str(extra.get("path", "")), power=power, token=token,
                     coordinator=client.coordinator)
