"""Boards on a labgrid farm: a board in hil.toml names a labgrid place (`place = "bench1-esp0"`)
or tags (`tags = { board = "esp32" }`); the rig reserves and acquires its place from the
coordinator, reads the serial port the place's exporter serves (ser2net, RFC 2217) and releases
the place at the end of the run.

    client = LabgridClient("127.0.0.1:20408")
    held = hold_place(client, board, lock_dir=..., timeout=300.0)   # reserve, acquire
    held.url        # rfc2217://exporter-host:port, what pytest-embedded opens
    client.power(held.place, "cycle")
    release_place(client, held, lock_dir=...)

Everything goes through `labgrid-client`, labgrid's own command line, so the rig needs no
private part of labgrid's Python API and every step is what a person can type to see the same
thing. Each call is one short process (about 0.25 s; an acquire about 0.5 s more, the exporter
starting ser2net).

An acquisition outlives the process that made it (labgrid has no lease). So while the rig holds
a place it keeps a lock file (held by a live process) and a marker (the pid that acquired it)
for the place in this user's lock directory. At the next start, a place acquired by this
runner's labgrid identity (host/user) whose marker's lock nobody holds was left by a dead run:
it is released before it is acquired again. A place acquired by the same identity without a
marker was acquired by hand (`labgrid-client acquire`) and is left alone, like any other holder.
"""

from __future__ import annotations

import ast
import contextlib
import getpass
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rig.boards import BoardError
from rig.boards.locks import BoardBusy, board_lock, private_dir
from rig.config import Board

CALL_TIMEOUT = 30.0  # one labgrid-client call (a coordinator that does not answer)
RETRY_S = 1.0  # between two attempts at a place another client holds
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


_PLACE = re.compile(r"^Place '([^']+)':$", re.MULTILINE)
_ACQUIRED = re.compile(r"^  acquired: (\S+)$", re.MULTILINE)
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
    return PlaceInfo(m.group(1), "" if value == "None" else value, resources)


# what labgrid-client says when a place cannot be had now: acquired by someone (or by this
# identity), reserved for another's reservation, a resource another place holds
_BUSY = ("already acquired", "was not reserved for", "Failed to acquire resources")


class LabgridClient:
    """labgrid-client against one coordinator."""

    def __init__(self, coordinator: str, program: str | None = None) -> None:
        self.coordinator = coordinator
        self.program = program or labgrid_client_program()

    def run(self, *args: str, place: str = "", timeout: float = CALL_TIMEOUT,
            waiting_for: str = "") -> str:
        """One labgrid-client call; its stdout, or FarmError with what it said. The call runs
        in its own session and is let finish when Ctrl-C or SIGTERM reach the rig meanwhile
        (the interrupt is raised after it): an acquire or release the coordinator has done
        is then known. `waiting_for`: what a timeout means (default: no answer)."""
        argv = [self.program, "-x", self.coordinator, *(("-p", place) if place else ()), *args]
        env = {k: v for k, v in os.environ.items() if k not in ("LG_PLACE", "LG_TOKEN", "LG_ENV")}
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, text=True, env=env,
                                    start_new_session=True)
        except OSError as exc:
            raise FarmError(f"cannot run {self.program}: {exc.strerror}") from None
        deadline = time.monotonic() + timeout
        interrupted: BaseException | None = None
        while True:
            try:
                out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 0.0))
                break
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise FarmError(f"labgrid-client {' '.join(args)}: " + (
                    waiting_for or f"no answer from the coordinator {self.coordinator}") +
                    f" within {timeout:g} s") from interrupted
            except KeyboardInterrupt as exc:  # finish the call, then stop
                interrupted = exc
        if interrupted is not None:
            raise interrupted
        if proc.returncode != 0:
            said = (err.strip() or out.strip()).splitlines()
            text = said[-1].removeprefix("labgrid-client: ") if said else f"exit {proc.returncode}"
            if "Could not connect to coordinator" in err or "UNAVAILABLE" in err:
                text = f"cannot reach the labgrid coordinator at {self.coordinator} ({text})"
            elif "already acquired by place" in out:  # a resource another place holds
                text = f"{text} ({out.strip().splitlines()[-1]})"
            raise FarmError(f"labgrid-client {' '.join(args)}"
                            f"{' (place ' + place + ')' if place else ''}: {text}")
        return out

    def show(self, place: str) -> PlaceInfo:
        return parse_show(self.run("show", place=place))

    def acquire(self, place: str) -> None:
        try:
            self.run("acquire", place=place)
        except FarmError as exc:
            if any(m in str(exc) for m in _BUSY):
                raise PlaceBusy(str(exc)) from None
            raise

    def release(self, place: str) -> None:
        self.run("release", place=place)

    def reserve(self, tags: dict[str, str]) -> str:
        """A reservation for one place with these tags; its token."""
        out = self.run("reserve", "--shell", *(f"{k}={v}" for k, v in sorted(tags.items())))
        m = re.search(r"LG_TOKEN=(\S+)", out)
        if not m:
            raise FarmError(f"labgrid-client reserve printed no token: {out.strip()[:200]!r}")
        return m.group(1)

    def wait(self, token: str, timeout: float) -> None:
        """Until the reservation is allocated (or expired, or invalid)."""
        self.run("wait", token, timeout=timeout, waiting_for="the reservation was not allocated")

    def cancel(self, token: str) -> None:
        self.run("cancel-reservation", token)

    def power(self, place: str, action: str) -> None:
        """on, off or cycle through the place's power resource."""
        extra = ("-t", str(POWER_CYCLE_DELAY_S)) if action == "cycle" else ()
        self.run("power", action, *extra, place=place)


# ------------------------------------------------------------------ holding a place

def _lock_name(coordinator: str, place: str) -> str:
    return "labgrid-" + re.sub(r"[^A-Za-z0-9._-]", "_", f"{coordinator}-{place}")


@contextlib.contextmanager
def _place_lock(lock_dir: Path, coordinator: str, place: str) -> Iterator[Path]:
    """This process's claim on a place among the rig's processes on this machine; yields the
    marker path (written once the place is acquired)."""
    name = _lock_name(coordinator, place)
    try:
        with board_lock(lock_dir, name, what=f"labgrid place {place}"):
            yield lock_dir / f"{name}.acquired"
    except BoardBusy as exc:
        raise PlaceBusy(str(exc)) from None


def state_dir() -> Path:
    """Where this user's rig processes keep their place locks and markers: a private directory
    that survives a reboot (<cache>/labgrid, the cache being $HIL_CACHE_DIR, else
    $XDG_CACHE_HOME/hil-rig, else ~/.cache/hil-rig, as for the esp board's mbedTLS source), so
    a place a killed run left acquired is still known after the runner restarts."""
    base = Path(os.environ.get("HIL_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hil-rig")
    base.mkdir(parents=True, exist_ok=True)
    return private_dir(base / "labgrid", "labgrid state directory",
                       "release places this runner holds")


def _marker(place: str, token: str) -> str:
    return json.dumps({"place": place, "token": token, "pid": os.getpid(), "owner": owner(),
                       "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def release_leftovers(client: LabgridClient, lock_dir: Path) -> list[str]:
    """Places of this coordinator that a dead run of this runner left acquired: a marker
    whose lock no live process holds, the place still acquired by this runner's identity.
    Each is released and its reservation cancelled; returns what was done, one line each (a
    failure too)."""
    notes: list[str] = []
    prefix = _lock_name(client.coordinator, "")
    for marker in sorted(lock_dir.glob(f"{prefix}*.acquired")):
        try:
            left = json.loads(marker.read_text())
            place = str(left["place"])
        except (OSError, ValueError, KeyError):
            marker.unlink(missing_ok=True)
            continue
        try:
            with _place_lock(lock_dir, client.coordinator, place):
                if left.get("token"):
                    with contextlib.suppress(FarmError):  # expired by now, most likely
                        client.cancel(str(left["token"]))
                try:
                    info = client.show(place)
                except FarmError:
                    info = None  # the place is gone: nothing to release
                if info is not None and info.acquired == owner():
                    client.release(place)
                    notes.append(f"released place {place}, left acquired by a run that died "
                                 f"(pid {left.get('pid', '?')}, acquired {left.get('at', '?')})")
                marker.unlink(missing_ok=True)
        except PlaceBusy:
            continue  # a live run holds it
        except FarmError as exc:
            notes.append(f"could not release place {place} left by a run that died: {exc}")
    return notes


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


class Holding:
    """One board's place while the rig holds it: the lock, the reservation, the acquisition."""

    def __init__(self, client: LabgridClient, board: Board, lock_dir: Path) -> None:
        self.client = client
        self.board = board
        self.lock_dir = lock_dir
        self.place = board.place
        self.token = ""
        self.acquired = False
        self.attempted = False  # an acquire was sent (it may have been done)
        self.notes: list[str] = []  # what happened on the way (a wait)
        self._stack = contextlib.ExitStack()
        self._marker: Path | None = None

    def hold(self, timeout: float) -> HeldPlace:
        """Reserve (tags) and acquire the place, waiting up to `timeout` s for another
        holder; FarmError (PlaceBusy naming the holder) when it cannot. On any failure what
        was reserved or acquired is given back at once."""
        try:
            return self._hold(time.monotonic() + timeout, timeout)
        except BaseException:
            self.release()
            raise

    def _hold(self, deadline: float, timeout: float) -> HeldPlace:
        if not self.place:
            self.token = self.client.reserve(self.board.tags)
            tags = ", ".join(f"{k}={v}" for k, v in sorted(self.board.tags.items()))
            try:
                self.client.wait(self.token, max(deadline - time.monotonic(), 1.0))
                self.place = self.client.show("+" + self.token).name
            except FarmError as exc:
                raise PlaceBusy(f"no place with tags {tags} was free within {timeout:g} s "
                                f"(hil.toml [labgrid] acquire_timeout): {exc}") from None
        else:
            matched = self.client.show(self.place).name  # labgrid-client matches substrings
            if matched != self.place:
                raise FarmError(f"the coordinator has no place named {self.place} "
                                f"(labgrid-client matched {matched})")
        while True:  # another rig process of this machine may hold it: wait for it too
            try:
                self._marker = self._stack.enter_context(
                    _place_lock(self.lock_dir, self.client.coordinator, self.place))
                break
            except PlaceBusy as exc:
                if time.monotonic() + RETRY_S > deadline:
                    raise PlaceBusy(f"place {self.place}: {exc}; waited {timeout:g} s "
                                    "(hil.toml [labgrid] acquire_timeout)") from None
                time.sleep(RETRY_S)  # a flock has no event to wait on: try again (bounded)
        # the marker goes first: a kill -9 right after the acquisition leaves it behind
        self._marker.write_text(_marker(self.place, self.token))
        waited_for = ""
        while True:
            try:
                self.attempted = True
                self.client.acquire(self.place)
                break
            except PlaceBusy as exc:
                holder = self.client.show(self.place).acquired or "another client"
                waited_for = holder
                if time.monotonic() + RETRY_S > deadline:
                    raise PlaceBusy(f"place {self.place} is acquired by {holder}; waited "
                                    f"{timeout:g} s (hil.toml [labgrid] acquire_timeout)"
                                    f"{_own_hint(self, holder)} ({exc})") from None
                # the coordinator tells no one when a place is released (labgrid-client polls
                # too): ask again until the deadline
                time.sleep(RETRY_S)
        self.acquired = True
        if waited_for:
            self.notes.append(f"waited for place {self.place} (held by {waited_for})")
        return resolve(self.client, self.place, self.board.name, self.token)

    def release(self) -> list[str]:
        """Release the place and cancel the reservation; returns what failed (never
        raises: it runs on every exit path)."""
        problems: list[str] = []
        if self.attempted and not self.acquired:  # an acquire cut short may have been done
            with contextlib.suppress(FarmError):
                self.acquired = self.client.show(self.place).acquired == owner()
        if self.acquired:
            try:
                self.client.release(self.place)
                self.acquired = False
            except FarmError as exc:
                problems.append(str(exc))
        if self.token:
            try:
                self.client.cancel(self.token)
                self.token = ""
            except FarmError as exc:
                problems.append(str(exc))
        if self._marker is not None and not self.acquired:
            self._marker.unlink(missing_ok=True)
        self.attempted = False
        self._stack.close()
        return problems


def _own_hint(holding: Holding, holder: str) -> str:
    """When the holder is this runner's own identity: by hand, or a run whose marker is gone."""
    if holder != owner():
        return ""
    return (f"; that is this runner's own labgrid identity (an acquire by hand, or a killed "
            f"run whose marker is gone): release it with `labgrid-client -x "
            f"{holding.client.coordinator} -p {holding.place} release`")
