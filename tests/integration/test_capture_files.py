"""CellCapture (rig/host/capture.py) with the real tcpdump, mergecap, tshark and editcap on
loopback: every packet of the watched ports from the proved start to the drained stop, a port
added during the cell, the key log embedded, nothing of it left in the private directory."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from rig.host.capture import BUFFER_KIB, CellCapture, Recorder, _on_each_cpu, permitted

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("tcpdump", "tshark", "mergecap", "editcap")),
    reason="tcpdump and tshark are needed (./hil.sh setup installs them)")

KEYLINE = "CLIENT_RANDOM " + "ab" * 32 + " " + "cd" * 48


def exchange(port: int, payload: bytes) -> None:
    """One TCP connection to `port` that sends `payload` and closes."""
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(payload)


def server() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


def packets(path: Path, display: str = "tcp") -> list[str]:
    proc = subprocess.run(["tshark", "-n", "-r", str(path), "-Y", display], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def private_dirs() -> set[Path]:
    """This process's capture directories (another run on the machine has its own)."""
    return set((Path(tempfile.gettempdir()) / f"hil-{os.getuid()}").glob(
        f"{os.getpid()}-capture-*"))


def test_permitted_says_so(tmp_path: Path) -> None:
    ok, detail = permitted("lo")
    assert detail == "tcpdump captures on lo" if ok else "no capture" in detail
    ok, detail = permitted("hil-no-such-interface")
    assert not ok and "hil-no-such-interface" in detail, detail


def streams(path: Path) -> dict[str, list[str]]:
    """Each TCP stream's packets (flags), and any retransmission or duplicate ACK."""
    rows = packets(path, "tcp")
    proc = subprocess.run(["tshark", "-n", "-r", str(path), "-Y", "tcp", "-T", "fields",
                           "-e", "tcp.stream", "-e", "tcp.flags.str"], capture_output=True,
                          text=True, timeout=60)
    out: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        stream, flags = line.split("\t")
        out.setdefault(stream, []).append(flags)
    assert not [r for r in rows if "Retransmission" in r or "Dup ACK" in r], rows
    return out


@pytest.mark.skipif(not permitted("lo")[0], reason="this user may not capture on lo")
def test_a_kept_capture_has_every_packet_and_its_secrets(tmp_path: Path) -> None:
    before = private_dirs()
    first, second = server(), server()
    out = tmp_path / "cell.pcapng"
    cap = CellCapture("cell", "lo", out)
    cap.watch(first.getsockname()[1], "mqtt")
    exchange(first.getsockname()[1], b"one")
    first.accept()[0].close()
    cap.watch(second.getsockname()[1], "http")  # known only during the cell
    unwatched = server()
    exchange(unwatched.getsockname()[1], b"not mine")
    unwatched.accept()[0].close()
    exchange(first.getsockname()[1], b"three")  # the first port after the second came
    first.accept()[0].close()
    exchange(second.getsockname()[1], b"two")  # right before the stop: the drain keeps it
    second.accept()[0].close()
    cap.add_keys([KEYLINE, "not a key-log line"])
    cap.host_keylog.write_text(KEYLINE + "\n")
    assert cap.finish(keep=True, comment=cap.decode_hint()) == out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    shown = packets(out)
    ports = {first.getsockname()[1], second.getsockname()[1]}
    assert {int(p) for ln in shown for p in ln.split() if p.isdigit() and int(p) in ports} == \
        ports, shown
    assert not [ln for ln in shown if str(unwatched.getsockname()[1]) in ln]
    # three connections, each whole and each packet once: SYN, SYN-ACK, ACK, data, ACK, the
    # client's FIN, and the server's RST (it closes with the data unread)
    per_stream = streams(out)
    assert len(per_stream) == 3, per_stream
    for flags in per_stream.values():
        assert len(flags) == 7 and "S" in flags[0] and "F" in flags[5] and "R" in flags[6], \
            per_stream
    assert packets(out, "udp") == []  # the start/drain probes are filtered out
    data = out.read_bytes()
    assert data.count(KEYLINE.encode()) == 1 and b"not a key-log line" not in data
    info = subprocess.run(["capinfos", str(out)], capture_output=True, text=True).stdout
    assert f"tls.port=={first.getsockname()[1]},mqtt" in info
    assert cap.lost == "" and "INCOMPLETE" not in info  # tcpdump says it dropped nothing
    assert private_dirs() == before


@pytest.mark.skipif(not permitted("lo")[0], reason="this user may not capture on lo")
def test_a_discarded_capture_leaves_nothing(tmp_path: Path) -> None:
    before = private_dirs()
    srv = server()
    out = tmp_path / "cell.pcapng"
    cap = CellCapture("cell", "lo", out)
    cap.watch(srv.getsockname()[1], "mqtt")
    exchange(srv.getsockname()[1], b"x")
    assert cap.finish(keep=False) is None
    assert not out.exists() and private_dirs() == before


@pytest.mark.skipif(not permitted("lo")[0], reason="this user may not capture on lo")
def test_cells_sharing_a_recorder_each_keep_only_their_own_packets(tmp_path: Path) -> None:
    """One tcpdump per port for the whole session (Recorder): each cell is the slice between
    its own marks, whether the cells before it were kept or discarded."""
    before = private_dirs()
    srv = server()
    port = srv.getsockname()[1]
    recorder = Recorder()
    try:
        kept = []
        for i, keep in enumerate((True, False, True)):
            cap = CellCapture(f"cell{i}", "lo", tmp_path / f"cell{i}.pcapng", recorder)
            cap.watch(port, "mqtt")
            for _ in range(i + 1):  # cell i makes i + 1 connections
                exchange(port, f"cell {i}".encode())
                srv.accept()[0].close()
            kept.append(cap.finish(keep=keep))
        segment, new = recorder.segment("lo", port)
        assert not new and recorder.segment("lo", port)[0] is segment  # still the one
        assert kept[1] is None and not (tmp_path / "cell1.pcapng").exists()
        assert kept[0] is not None and len(streams(kept[0])) == 1
        assert kept[2] is not None and len(streams(kept[2])) == 3  # none of cells 0 and 1
        # each of them whole, from its SYN to its end (how many ACKs in between is the
        # kernel's timing, not the slice's)
        assert all("S" in flags[0] and ("F" in "".join(flags) or "R" in flags[-1])
                   for flags in streams(kept[2]).values()), streams(kept[2])
        pid = segment.proc.pid
        recorder.rotate_bytes = 0  # grown too big: the next cell's port starts anew
        recorder.rotate()
        assert recorder.segment("lo", port)[0].proc.pid != pid
    finally:
        recorder.close()
    assert private_dirs() == before
    assert segment.proc.wait(5) is not None  # every tcpdump stopped


@pytest.mark.skipif(not permitted("lo")[0], reason="this user may not capture on lo")
def test_a_capture_the_kernel_dropped_packets_of_says_it_is_incomplete(tmp_path: Path) -> None:
    """A tcpdump the scheduler leaves waiting (here: stopped) while more packets come than its
    ring holds: the kept cell still comes, and says it may lack packets, in `lost` and in the
    file's comment; the next kept cell, with no drop of its own, does not."""
    srv = server()
    port = srv.getsockname()[1]
    recorder = Recorder()
    try:
        cap = CellCapture("starved", "lo", tmp_path / "starved.pcapng", recorder)
        cap.watch(port, "mqtt")
        seg = recorder.segment("lo", port)[0]
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        os.kill(seg.proc.pid, signal.SIGSTOP)
        try:  # the probe's port is in the filter: more datagrams than the ring has slots
            for _ in range(BUFFER_KIB // 64 + 200):
                flood.sendto(b"flood", seg.probe.getsockname())
            exchange(port, b"in the cell")
            srv.accept()[0].close()
        finally:
            os.kill(seg.proc.pid, signal.SIGCONT)
            flood.close()
        out = cap.finish(keep=True, comment="cell")
        assert out is not None and "dropped" in cap.lost and "may lack" in cap.lost, cap.lost
        info = subprocess.run(["capinfos", str(out)], capture_output=True, text=True).stdout
        assert "INCOMPLETE" in info, info
        cap = CellCapture("next", "lo", tmp_path / "next.pcapng", recorder)
        cap.watch(port, "mqtt")
        exchange(port, b"next")
        srv.accept()[0].close()
        assert cap.finish(keep=True) is not None and cap.lost == "", cap.lost
    finally:
        recorder.close()


def test_marks_are_sent_from_each_cpu_and_the_threads_cpus_come_back() -> None:
    allowed = os.sched_getaffinity(0)
    seen: list[tuple[int, set[int]]] = []
    _on_each_cpu(lambda cpu: seen.append((cpu, os.sched_getaffinity(0))))
    assert [cpu for cpu, _ in seen] == sorted(allowed)
    assert all(on == {cpu} for cpu, on in seen) or len(allowed) == 1, seen
    assert os.sched_getaffinity(0) == allowed
