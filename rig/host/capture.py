"""A cell's packet capture: tcpdump on the interface toward the board, filtered to the cell's
ports, and the TLS session secrets of every connection the cell made embedded into a pcapng by
Wireshark's editcap (`--inject-secrets tls,<keylog>`), so that the one file opens decrypted.

Why tcpdump and not dumpcap: Debian 12's dumpcap (4.0) has no immediate mode. Measured on
loopback, a capture stopped right after a cell's connection held 0 of its 8 packets (those in
the kernel's last, not yet retired block are dropped at the stop), and it announces `Capturing
on` before its filter is live. tcpdump `--immediate-mode -U` writes each packet as it comes, so
the stop loses nothing; the start is proved by a UDP probe to a port of the rig's own that must
reach the file before the cell goes on (the probes are filtered out of the kept file). mergecap,
tshark and editcap (Wireshark) make the pcapng.

The raw capture segments and the key log live in a 0700 secret directory (removed at stop, and
swept after a kill); the kept file is written 0600. A port that becomes known during the cell (a
negative case's own broker, the board's HTTPS server) starts one more segment filtered to all
the ports so far; the segments are merged at the end (mergecap)."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rig.errors import RigError
from rig.local.children import die_with_parent
from rig.local.user_tmp import note_children, remove_secret_dir, secret_dir, write_secret

START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0
PROBE_S = 0.0002  # between looks at the file: tcpdump gives no signal but the file it writes
# looks before another round of marks: a round every 20 ms at most, so that a tcpdump the
# scheduler keeps waiting is not sent more marks than its ring holds
ROUND_PROBES = 100
PCAP_HEADER = 24  # bytes of a pcap file with no packet
# tcpdump's ring in the kernel (-B, KiB). On loopback each packet takes a 64 KiB slot (its MTU)
# and passes twice (out and in): the default 2 MiB had 32 slots, 16 packets, and a tcpdump the
# scheduler left waiting a few ms on a busy runner lost packets. 16 MiB with only the inbound
# copy (the filter's `inbound`) holds 255.
BUFFER_KIB = 16384
DROPPED = re.compile(rb"(\d+) packets? dropped by kernel")
# the NSS key-log lines Wireshark reads: TLS 1.2 master secrets, TLS 1.3 traffic secrets
# tshark -O tls: a Server Hello's chosen suite (a Client Hello lists "Cipher Suites (N suites)")
SERVER_HELLO_SUITE = re.compile(r"^\s*Cipher Suite: (TLS_\w+) \(0x[0-9a-f]{4}\)$", re.M)
NSS_LINE = re.compile(
    r"^(?:CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}|(?:CLIENT_EARLY_TRAFFIC|CLIENT_HANDSHAKE_TRAFFIC"
    r"|SERVER_HANDSHAKE_TRAFFIC|CLIENT_TRAFFIC|SERVER_TRAFFIC|EARLY_EXPORTER|EXPORTER)_SECRET"
    r"(?:_0)? [0-9a-f]{64} [0-9a-f]{64,128})$", re.IGNORECASE)


class CaptureUnavailable(RigError):
    """The capture tools are missing or may not capture here; the cell runs without one.
    permanent: it will be so for every cell of the session (a missing tool, a refusal)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


TOOLS = ("tcpdump", "mergecap", "tshark", "editcap")


def tools_missing() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def how_to_permit() -> str:
    return ("run as root, or let tcpdump capture for this user: "
            "`sudo setcap cap_net_raw,cap_net_admin+eip $(command -v tcpdump)`")


def permitted(interface: str = "lo") -> tuple[bool, str]:
    """Can this user capture on `interface`? (ok, what was found or why not): a real capture
    of one probe packet."""
    missing = tools_missing()
    if missing:
        return False, f"{', '.join(missing)} not on PATH (apt-get install tcpdump tshark)"
    with tempfile.TemporaryDirectory(prefix="hil-capture-check-") as tmp:
        try:
            seg = _Segment.start(Path(tmp) / "check.pcap", interface, {})
        except CaptureUnavailable as exc:
            return False, str(exc)
        seg.kill()
    return True, f"tcpdump captures on {interface}"


def port_filter(ports: Iterable[int]) -> str:
    return " or ".join(f"tcp port {p}" for p in sorted(set(ports)))


@dataclass(eq=False)
class _Segment:
    """One tcpdump, from a proven start to its stop."""

    path: Path
    proc: subprocess.Popen[str]
    probe: socket.socket
    dropped_told: int = 0  # the kernel's drops tcpdump reported when last asked

    @classmethod
    def start(cls, path: Path, interface: str, ports: dict[int, str]) -> _Segment:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        mark = probe.getsockname()[1]
        wanted = " or ".join(filter(None, [port_filter(ports), f"udp port {mark}"]))
        if interface == "lo":  # each packet passes lo twice; the outgoing copy would take a slot
            wanted = f"inbound and ({wanted})"
        try:
            # -Z: keep this user's identity (as root, Debian's tcpdump would switch to user
            # tcpdump, and a changed identity loses the death signal die_with_parent sets)
            proc = subprocess.Popen(
                ["tcpdump", "-i", interface, "-U", "--immediate-mode", "-B", str(BUFFER_KIB),
                 "-n", "-Z",
                 pwd.getpwuid(os.getuid()).pw_name, "-w", str(path), wanted],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True, preexec_fn=die_with_parent())
        except OSError as exc:
            probe.close()
            raise CaptureUnavailable(f"no capture: tcpdump: {exc.strerror}",
                                     permanent=True) from None
        # with file capabilities (setcap) the death signal is not kept either: the next run's
        # sweep stops a tcpdump this process left behind when it was killed
        note_children([proc.pid])
        seg = cls(path, proc, probe)
        try:
            seg._wait_started(interface)
        except CaptureUnavailable:
            raise  # _wait_started has stopped it
        except BaseException:  # an interrupt while waiting
            seg.kill()
            raise
        return seg

    def _wait_started(self, interface: str) -> None:
        """Probe datagrams until one is in the file: then the filter is live."""
        if self._until_in_file(b"hil-capture-start", START_TIMEOUT_S) is not None:
            return
        died = self.proc.poll() is not None
        if not died:
            self.proc.kill()
        self.proc.wait()
        assert self.proc.stderr is not None
        said = [ln.strip() for ln in self.proc.stderr.read().splitlines()
                if ln.strip() and "listening on" not in ln]
        self._close()
        why = said[-1] if said else f"no packet reached the file within {START_TIMEOUT_S:g} s"
        # tcpdump refused (permission, no such interface): so will the next one; a slow start
        # under load is this cell's only
        raise CaptureUnavailable(f"no capture: tcpdump on {interface}: {why} ({how_to_permit()})",
                                 permanent=died)

    def mark(self, token: bytes) -> list[bytes]:
        """A datagram with `token` on its way into the file from each CPU this process may
        run on, and what each of them says (`token` and the CPU's number)."""
        sent: list[bytes] = []

        def send(cpu: int) -> None:
            sent.append(token + b"@cpu%d;" % cpu)  # ';': cpu1's is no part of cpu10's
            self.probe.sendto(sent[-1], self.probe.getsockname())

        _on_each_cpu(send)
        return sent

    def _until_in_file(self, token: bytes, timeout: float) -> list[bytes] | None:
        """A round of marks (`token`, the round's number, each CPU's) sent every ROUND_PROBES
        x PROBE_S, the file's tail looked at every PROBE_S (tcpdump gives no sign but the file
        it writes), until every mark of one of the last three rounds is there (that round's
        marks), tcpdump exited or `timeout` passed (None). A round still queued somewhere may
        come later: it never counts, as its marks are not those returned."""
        deadline = time.monotonic() + timeout
        rounds: list[list[bytes]] = []
        while time.monotonic() < deadline and self.proc.poll() is None:
            rounds.append(self.mark(token + b".%d" % len(rounds)))
            for _ in range(ROUND_PROBES):
                time.sleep(PROBE_S)
                tail = _tail(self.path)
                for sent in rounds[-3:]:  # an older round still queued is not waited for
                    if all(s in tail for s in sent):
                        return sent
                if self.proc.poll() is not None:
                    break
        return None

    def drain(self, token: bytes) -> list[bytes]:
        """`token` from each CPU, again and again until each is in the file. On loopback a
        packet reaches the capture when the receiving side takes it from the queue of the CPU
        that sent it (a queue per CPU, taken in order; under load, later, by ksoftirqd), not as
        it is sent: packets sent on two CPUs may be captured in another order than they were
        sent. A mark sent from a CPU is captured after everything that CPU queued before it,
        so once every CPU's mark is in the file, every packet sent before drain() was called is
        too, and every packet sent after it returns comes after the marks. Returns the marks
        that were waited for."""
        marks = self._until_in_file(token, STOP_TIMEOUT_S)
        if marks is not None:
            return marks
        raise CaptureUnavailable(
            f"no capture: tcpdump did not write its packets within {STOP_TIMEOUT_S:g} s"
            + ("" if self.proc.poll() is None else " (it exited)"))

    def dropped(self) -> int | None:
        """How many packets the kernel dropped since the last call (its ring was full: tcpdump
        was not scheduled in time), as tcpdump tells on SIGUSR1; None if it did not say within
        STOP_TIMEOUT_S."""
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        told = b""
        while select.select([fd], [], [], 0)[0]:  # what it said before: not this answer
            if not os.read(fd, 4096):
                return None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while not (found := DROPPED.search(told)):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            more = os.read(fd, 4096)
            if not more:
                return None
            told += more
        total = int(found.group(1))
        since, self.dropped_told = total - self.dropped_told, total
        return since

    def kill(self, wait: bool = True) -> None:
        """Kill without a drain. wait=False: reaped in the background (closing a packet
        socket takes the kernel about 20 ms; nobody need wait for it)."""
        if self.proc.poll() is None:
            self.proc.kill()
        if wait:
            self.proc.wait()
        else:
            threading.Thread(target=_reap, args=(self.proc,), name="reap-tcpdump",
                             daemon=True).start()
            self.probe.close()
            return
        self._close()

    def _close(self) -> None:
        self.probe.close()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def _on_each_cpu(send: Callable[[int], None]) -> None:
    """send(cpu) run on each CPU this thread may run on in turn (sched_setaffinity of the
    calling thread; no RPS on loopback, so a datagram is queued on the CPU that sends it);
    the thread's own set is given back after."""
    allowed = os.sched_getaffinity(0)
    if len(allowed) == 1:
        send(next(iter(allowed)))
        return
    try:
        for cpu in sorted(allowed):
            try:
                os.sched_setaffinity(0, {cpu})
            except OSError:  # gone offline since
                continue
            send(cpu)
    finally:
        os.sched_setaffinity(0, allowed)


def _reap(proc: subprocess.Popen[str]) -> None:
    proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def _tail(path: Path, size: int = 65536) -> bytes:
    """The last `size` bytes of a file that is being written ('' if unreadable)."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - size))
            return fh.read()
    except OSError:
        return b""


def _slice(source: Path, start: list[bytes], out: Path, fresh: bool) -> None:
    """The packets of the pcap `source` after the last of the cell's `start` marks (one per
    CPU), to the last whole one in the file (the cell's end was drained into it), as the pcap
    `out`. `fresh`: the capture started for this cell, so without the start marks it is all
    this cell's; otherwise a missing start mark is an error (the earlier cells' packets are
    no part of this one). Reads only the record framing (a 24-byte file header, then a 16-byte
    header per packet); a record tcpdump is still writing is left out."""
    with source.open("rb") as fh:
        head = fh.read(PCAP_HEADER)
        order = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        kept: list[bytes] = []
        pending = set(start)
        while len(rec := fh.read(16)) == 16:
            size = struct.unpack(f"{order}4I", rec)[2]
            data = fh.read(size)
            if len(data) < size:
                break  # being written
            hit = {m for m in pending if m in data}
            if hit:
                pending -= hit
                kept = []  # the cell's start: what came before is not its
                continue
            kept.append(rec + data)
    if pending and not fresh:
        raise CaptureUnavailable(f"no capture: the cell's start mark is not in {source.name} "
                                 "(the capture dropped it): its packets cannot be told from "
                                 "the cells' before it")
    with out.open("wb") as fh:
        fh.write(head)
        fh.writelines(kept)


class Recorder:
    """The tcpdumps of one process, one per (interface, port), running from the first cell that
    watches that port to close(): a cell's start and end are marks in their files, so a cell
    starts no capture of its own (a tcpdump's start costs ~25 ms: the kernel waits for a grace
    period as the packet socket binds). The files are in a secret directory (0700, removed at
    close, swept after a kill); one above `rotate_bytes` is started anew between cells."""

    IDLE_CELLS = 32  # a port no cell watched in this many cells is no longer captured

    def __init__(self, rotate_bytes: int = 64 << 20) -> None:
        missing = tools_missing()
        if missing:
            raise CaptureUnavailable(f"no capture: {', '.join(missing)} not on PATH "
                                     "(apt-get install tcpdump tshark)", permanent=True)
        self.rotate_bytes = rotate_bytes
        self.dir = secret_dir("capture")
        self._segments: dict[tuple[str, int], _Segment] = {}
        self._used: dict[tuple[str, int], int] = {}  # the cell count when last watched
        self._started = 0
        self._cells = 0

    def segment(self, interface: str, port: int) -> tuple[_Segment, bool]:
        """The running capture of `port` on `interface`, and whether it was started now."""
        key = (interface, port)
        self._used[key] = self._cells
        seg = self._segments.get(key)
        if seg is not None and seg.proc.poll() is None:
            return seg, False
        if seg is not None:  # its tcpdump died: its probe and pipe go with it
            seg.kill()
        path = self.dir / f"segment-{self._started}.pcap"
        self._started += 1
        seg = self._segments[key] = _Segment.start(path, interface, {port: ""})
        return seg, True

    def rotate(self) -> None:
        """Between cells: a file grown past rotate_bytes goes (its port's next cell starts
        a new tcpdump), and so does the capture of a port no cell watched in the last
        IDLE_CELLS cells (a port given up: a busy broker port replaced, a board's new one)."""
        self._cells += 1
        for key, seg in list(self._segments.items()):
            with contextlib.suppress(OSError):
                idle = self._cells - self._used.get(key, 0) > self.IDLE_CELLS
                if idle or seg.path.stat().st_size > self.rotate_bytes:
                    del self._segments[key]
                    seg.kill(wait=False)
                    seg.path.unlink()

    def close(self) -> None:
        """Stop every tcpdump (all killed, then each waited for: none outlives the session);
        the files go with the directory."""
        try:
            segments = list(self._segments.values())
            self._segments.clear()
            for seg in segments:
                if seg.proc.poll() is None:
                    seg.proc.kill()
            for seg in segments:
                seg.kill()
        finally:
            remove_secret_dir(self.dir)


@dataclass
class CellCapture:
    """One cell's capture. `watch(port)` before the traffic (with `keys`, where the TLS
    secrets of that port's server come from: a broker's take_tls_keys); `add_keys(lines)` with
    the NSS key-log lines the board exported; `host_keylog` is the file host peers (Python ssl,
    curl) write theirs to (SSLKEYLOGFILE); `finish(keep)` writes `out` or discards everything.
    `recorder`: the process's running captures (Recorder), shared with the cells before and
    after; without one the cell has its own, stopped at finish."""

    name: str
    interface: str
    out: Path
    recorder: Recorder | None = None
    dir: Path = field(init=False)
    ports: dict[int, str] = field(default_factory=dict)  # port -> what runs inside TLS
    starts: dict[_Segment, list[bytes]] = field(default_factory=dict)  # its start marks
    fresh: set[_Segment] = field(default_factory=set)  # those started for this cell
    keys: list[str] = field(default_factory=list, repr=False)  # TLS secrets: never shown
    key_sources: list[Callable[[], list[str]]] = field(default_factory=list, repr=False)
    lost: str = ""  # why the kept file may lack packets (set by finish)
    _own: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if self.recorder is None:
            self.recorder, self._own = Recorder(), True
        self.dir = secret_dir("capture")

    @property
    def host_keylog(self) -> Path:
        return self.dir / "host-keys.log"

    def watch(self, port: int, protocol: str,
              keys: Callable[[], list[str]] | None = None) -> None:
        """Capture this port too, from now on; `protocol` (mqtt, http) is what runs inside TLS
        there; `keys`, if given, hands over the secrets its server's TLS sessions made since it
        was last called (taken at finish, kept or not)."""
        if keys is not None and keys not in self.key_sources:
            self.key_sources.append(keys)
        if port in self.ports:
            return
        assert self.recorder is not None
        seg, new = self.recorder.segment(self.interface, port)
        self.ports[port] = protocol
        if new:
            self.fresh.add(seg)
        if seg not in self.starts:  # in the file before the cell's traffic is sent
            self.starts[seg] = seg.drain(b"hil-cell-start-" + secrets.token_hex(8).encode())

    def decode_args(self) -> list[str]:
        """tshark/Wireshark options that decode what runs inside TLS on this cell's ports
        (random ports: no dissector claims them by itself)."""
        return [a for port, proto in sorted(self.ports.items())
                for a in ("-d", f"tls.port=={port},{proto}")]

    def tshark_args(self, path: Path) -> str:
        """The command that shows the decrypted cell."""
        protos = sorted(set(self.ports.values()))
        shown = " || ".join(protos) if protos else "tls"
        return " ".join(["tshark", "-r", str(path), *self.decode_args(), "-Y", f"'{shown}'"])

    def decode_hint(self) -> str:
        """The pcapng's comment: what the file holds and how to read it."""
        return (f"hil cell {self.name}: TLS secrets embedded; "
                + "; ".join(f"port {p} is {proto.upper()} over TLS"
                            for p, proto in sorted(self.ports.items()))
                + " (Wireshark: Decode As, TLS port -> that protocol; tshark: "
                + " ".join(self.decode_args()) + ")")

    def server_hello_suite(self, port: int, client_port: int) -> str:
        """The cipher suite (IANA name, as Wireshark shows it) of the Server Hello the server
        on `port` sent to `client_port` during this cell so far: the evidence for a firmware
        that prints no ciphersuite line. '' when the capture holds no such Server Hello;
        CaptureUnavailable when the port is not captured or a tool fails."""
        assert self.recorder is not None
        if port not in self.ports:
            raise CaptureUnavailable(f"no capture of port {port} in this cell")
        seg, _ = self.recorder.segment(self.interface, port)
        if seg not in self.starts:
            raise CaptureUnavailable(f"no capture of port {port} in this cell")
        part = self.dir / f"peek-{secrets.token_hex(4)}.pcap"
        try:
            self._cut(seg, b"hil-cell-peek-", part)
            shown = _tool(["tshark", "-n", "-r", str(part), "-O", "tls", "-Y",
                           f"tcp.srcport == {port} && tcp.dstport == {client_port} && "
                           "tls.handshake.type == 2"])
        finally:
            part.unlink(missing_ok=True)
        m = SERVER_HELLO_SUITE.search(shown)
        return m.group(1) if m else ""

    def _cut(self, seg: _Segment, mark: bytes, out: Path) -> None:
        """`seg`'s packets from the cell's start marks to now (drained with a `mark` token)
        as the pcap `out`."""
        seg.drain(mark + secrets.token_hex(8).encode())
        _slice(seg.path, self.starts[seg], out, seg in self.fresh)

    def add_keys(self, lines: Iterable[str]) -> None:
        self.keys.extend(ln.strip() for ln in lines if ln.strip())

    def finish(self, keep: bool, comment: str = "") -> Path | None:
        """End the cell's capture. keep: write `out` (0600) with the cell's key log embedded
        and return it; else discard. The cell's secret directory goes either way (and its own
        recorder, if it had one). The key sources are taken either way: no secret of the
        cell's outlives it."""
        try:
            for take in self.key_sources:
                self.add_keys(take())
            if not keep:
                return None
            parts = []
            for i, seg in enumerate(self.starts):
                parts.append(self.dir / f"part-{i}.pcap")
                self._cut(seg, b"hil-cell-end-", parts[-1])
                self._count_lost(seg)
            if self.lost:
                comment = f"{comment} (INCOMPLETE: {self.lost})" if comment else self.lost
            return self._write(parts, comment)
        finally:
            try:
                if self._own and self.recorder is not None:
                    self.recorder.close()
            finally:  # also when an interrupt arrives while a tcpdump is killed
                remove_secret_dir(self.dir)

    def _count_lost(self, seg: _Segment) -> None:
        """Say in `lost` if the kernel dropped packets of `seg` (counted since the last cell kept
        from it: an earlier discarded cell's drops count here too, so it says `may`)."""
        dropped = seg.dropped()
        if dropped is None:
            self.lost = "tcpdump did not say whether it dropped packets"
        elif dropped:
            self.lost = (f"tcpdump was not scheduled in time and the kernel dropped {dropped} "
                         "packet(s) of this capture or of a cell before it: it may lack some")

    def _write(self, parts: list[Path], comment: str) -> Path | None:
        if not parts:
            return None
        merged = self.dir / "merged.pcapng"
        _tool(["mergecap", "-F", "pcapng", "-w", str(merged), *map(str, parts)])
        tcp = self.dir / "tcp.pcapng"  # the cell's ports only: no probe, no other cell's
        ports = ",".join(str(p) for p in sorted(self.ports))
        _tool(["tshark", "-n", "-r", str(merged), "-Y", f"tcp.port in {{{ports}}}", "-F",
               "pcapng", "-w", str(tcp)])
        keylog = self.dir / "keys.log"
        lines = [*self.keys]
        if self.host_keylog.exists():
            lines += self.host_keylog.read_text().splitlines()
        lines = list(dict.fromkeys(ln for ln in lines if NSS_LINE.match(ln)))
        write_secret(keylog, "".join(f"{ln}\n" for ln in lines))
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.unlink(missing_ok=True)
        argv = ["editcap"]
        if lines:
            argv += ["--inject-secrets", f"tls,{keylog}"]
        if comment:
            argv += ["--capture-comment", comment]
        _tool([*argv, str(tcp), str(self.out)])
        os.chmod(self.out, 0o600)
        return self.out


def _private_umask() -> None:
    os.umask(0o077)


def _tool(argv: list[str]) -> str:
    """Run a Wireshark tool (files it writes are private); what it printed, or
    CaptureUnavailable quoting its error."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          preexec_fn=_private_umask)
    if proc.returncode != 0:
        raise CaptureUnavailable(f"{argv[0]} failed (exit {proc.returncode}): "
                                 f"{proc.stderr.strip()[:300]}")
    return proc.stdout
