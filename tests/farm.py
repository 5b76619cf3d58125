"""A labgrid farm on loopback for the rig's tests: a real `labgrid-coordinator` and a real
`labgrid-exporter` (labgrid from PyPI, ser2net from Debian) on 127.0.0.1 export virtual boards'
consoles (`RawSerialPort` on their ptys), one group and one place per board.

Stand-in (for what cannot exist here): each board's power switch, which on a real farm is a USB
hub port, a PDU outlet or a relay. It is an HTTP endpoint on 127.0.0.1 that speaks labgrid's
`rest` power model (GET/PUT /relay/<index>/value with "0"/"1"), declared in the exporter's YAML
as a `NetworkPowerPort`, so labgrid-client drives it as it would a real one. Off stops the
virtual board's agent process, on starts it: the process is a virtual board's power.
`hang_from` makes a board's firmware hang at boot from its N-th power-on on (the agent is
started and stopped at once with SIGSTOP), a board a reset cannot bring back.

Loopback only: labgrid's exporter has ser2net listen on every interface (a farm serves its
LAN). Here the exporter finds a `ser2net` first on its PATH that runs the real one with the
same configuration except the accepter's address, 127.0.0.1 (`tcp,127.0.0.1,PORT`).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from rig.boards.farm import LabgridClient
from rig.boards.virtual import VirtualBoard

HOST = "127.0.0.1"
READY_TIMEOUT = 20.0


SER2NET_ON_LOOPBACK = """#!/bin/sh
# the real ser2net, its RFC 2217 accepter bound to 127.0.0.1 (tests/farm.py)
for arg do
  shift
  case "$arg" in
    *accepter:*,tcp,*) arg=$(printf '%s' "$arg" | sed -E 's/,tcp,([0-9]+)$/,tcp,127.0.0.1,\\1/') ;;
  esac
  set -- "$@" "$arg"
done
exec {ser2net} "$@"
"""


def _ser2net() -> str:
    found = shutil.which("ser2net") or ("/usr/sbin/ser2net"
                                        if Path("/usr/sbin/ser2net").exists() else "")
    if not found:
        raise RuntimeError("ser2net is not installed (Debian package ser2net; ./hil.sh setup)")
    return found


@dataclass
class FarmBoard:
    """One exported virtual board: its place, tags, agent and power state."""

    place: str
    agent: Path
    tags: dict[str, str] = field(default_factory=dict)
    hang_from: int = 0  # power-on number from which its firmware hangs at boot (0: never)
    power_ons: int = 0
    board: VirtualBoard | None = None

    def power(self, on: bool) -> None:
        assert self.board is not None
        if not on:
            if self.board.pid:  # a hung agent gets going again only to die
                os.kill(self.board.pid, signal.SIGCONT)
            self.board.stop()
            return
        self.power_ons += 1
        self.board.start()
        if self.hang_from and self.power_ons >= self.hang_from and self.board.pid:
            os.kill(self.board.pid, signal.SIGSTOP)

    @property
    def on(self) -> bool:
        return self.board is not None and self.board.pid is not None


class _PowerHandler(http.server.BaseHTTPRequestHandler):
    farm: LoopbackFarm

    def _board(self) -> FarmBoard | None:
        parts = self.path.strip("/").split("/")  # relay/<index>/value
        if len(parts) != 3 or parts[0] != "relay" or not parts[1].isdigit():
            return None
        index = int(parts[1])
        return self.farm.boards[index] if index < len(self.farm.boards) else None

    def _reply(self, code: int, body: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        board = self._board()
        if board is None:
            self._reply(404)
        else:
            self._reply(200, b"1" if board.on else b"0")

    def do_PUT(self) -> None:
        board = self._board()
        value = self.rfile.read(int(self.headers.get("Content-Length") or 0)).strip()
        if board is None or value not in (b"0", b"1"):
            self._reply(400)
            return
        self.farm.switch(board, value == b"1")
        self._reply(200)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _wait_line(proc: subprocess.Popen[str], marker: str, what: str, log: Path) -> str:
    """Read the child's stdout until a line holds `marker` (readiness without sleeps)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    out: IO[str] = proc.stdout
    while time.monotonic() < deadline:
        line = out.readline()
        if marker in line:
            return line.strip()
        if not line and proc.poll() is not None:
            break
    raise RuntimeError(f"{what} did not say {marker!r} (exit {proc.poll()}); log: "
                       f"{log.read_text()[-2000:] if log.exists() else ''}")


class LoopbackFarm:
    """with LoopbackFarm(work_dir, [FarmBoard("virt-a", agent), ...]) as farm: ..."""

    def __init__(self, work: Path, boards: list[FarmBoard], exporter: str = "bench1") -> None:
        self.work = work
        self.boards = boards
        self.exporter_name = exporter
        self.address = ""
        # the agents are started from one long-lived thread: a child started with
        # die_with_parent() dies with the *thread* that started it (PR_SET_PDEATHSIG), and
        # the HTTP server's request threads end after each request
        self._switches: queue.Queue[tuple[FarmBoard, bool, threading.Event] | None] = (
            queue.Queue())
        self._switcher = threading.Thread(target=self._switch_loop, name="farm-switcher",
                                          daemon=True)
        self._procs: list[subprocess.Popen[str]] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        work.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> LoopbackFarm:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _switch_loop(self) -> None:
        while (job := self._switches.get()) is not None:
            board, on, done = job
            try:
                board.power(on)
            finally:
                done.set()

    def switch(self, board: FarmBoard, on: bool) -> None:
        """Power a board on or off (from the switcher thread); returns when done."""
        done = threading.Event()
        self._switches.put((board, on, done))
        done.wait(30)

    def _bin(self, name: str) -> str:
        return str(Path(sys.executable).parent / name)

    def _start(self) -> None:
        handler = type("Handler", (_PowerHandler,), {"farm": self})
        self._server = http.server.ThreadingHTTPServer((HOST, 0), handler)
        threading.Thread(target=self._server.serve_forever, name="farm-power",
                         daemon=True).start()
        power_port = self._server.server_address[1]
        self._switcher.start()
        for b in self.boards:
            b.board = VirtualBoard(b.place, b.agent, self.work / "state", self.work)
            self.switch(b, True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        shim = self.work / "bin"
        shim.mkdir(exist_ok=True)
        (shim / "ser2net").write_text(SER2NET_ON_LOOPBACK.format(ser2net=_ser2net()))
        (shim / "ser2net").chmod(0o755)
        exporter_env = dict(env, PATH=f"{shim}:{env.get('PATH', '/usr/bin:/bin')}")
        coord_log = self.work / "coordinator.log"
        coord = subprocess.Popen([self._bin("labgrid-coordinator"), "--listen", f"{HOST}:0"],
                                 cwd=self.work, env=env, text=True, stdout=subprocess.PIPE,
                                 stderr=coord_log.open("w"), start_new_session=True)
        self._procs.append(coord)
        self.address = _wait_line(coord, "listening on ", "labgrid-coordinator",
                                  coord_log).split()[-1]
        yaml = ""
        for i, b in enumerate(self.boards):
            assert b.board is not None
            yaml += (f"{b.place}:\n"
                     f"  location: \"loopback farm, virtual board {b.place}\"\n"
                     f"  RawSerialPort:\n    port: \"{b.board.port}\"\n    speed: 115200\n"
                     f"  NetworkPowerPort:\n    model: rest\n"
                     f"    host: \"http://{HOST}:{power_port}/relay/{{index}}/value\"\n"
                     f"    index: {i}\n")
        (self.work / "exporter.yaml").write_text(yaml)
        exp_log = self.work / "exporter.log"
        exporter = subprocess.Popen(
            [self._bin("labgrid-exporter"), "-c", self.address, "--name", self.exporter_name,
             "--hostname", HOST, "exporter.yaml"], cwd=self.work, env=exporter_env, text=True,
            stdout=subprocess.PIPE, stderr=exp_log.open("w"), start_new_session=True)
        self._procs.append(exporter)
        _wait_line(exporter, "Exporter ready", "labgrid-exporter", exp_log)
        threading.Thread(target=self._drain, args=(coord, exporter), daemon=True).start()
        client = self.client()
        for b in self.boards:
            client.run("create", place=b.place)
            client.run("add-match", f"{self.exporter_name}/{b.place}/*", place=b.place)
            if b.tags:
                client.run("set-tags", *(f"{k}={v}" for k, v in b.tags.items()), place=b.place)

    @staticmethod
    def _drain(*procs: subprocess.Popen[str]) -> None:
        """Keep reading their stdout so that they never block on a full pipe."""
        def drain(p: subprocess.Popen[str]) -> None:
            assert p.stdout is not None
            for _ in p.stdout:
                pass
        for p in procs:
            threading.Thread(target=drain, args=(p,), daemon=True).start()

    def client(self) -> LabgridClient:
        return LabgridClient(self.address)

    def as_other(self, user: str, *args: str, place: str = "") -> str:
        """labgrid-client as another user of the farm (LG_USERNAME)."""
        env = dict(os.environ, LG_USERNAME=user)
        proc = subprocess.run([self._bin("labgrid-client"), "-x", self.address,
                               *(("-p", place) if place else ()), *args],
                              capture_output=True, text=True, env=env, timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def holder(self, place: str) -> str:
        """Who holds the place ('' when free)."""
        return self.client().show(place).acquired

    def reservations(self) -> str:
        return self.client().run("reservations")

    def close(self) -> None:
        for p in reversed(self._procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self._procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        self._procs = []
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for b in self.boards:
            if b.board is not None:
                if self._switcher.is_alive():
                    self.switch(b, False)
                b.board.close()
        if self._switcher.is_alive():
            self._switches.put(None)
            self._switcher.join(10)
