#!/usr/bin/env python3
"""The real hil-agent binary driven as the rig drives a Mongoose OS app: settings by RPC
(Config.Set with "mqtt": {"server", "enable": true}), Config.Save {"reboot": true}, then the
agent connects by itself at boot (the `mqtt connect` log lines, no final line), MQTT.Pub on
that connection (answered {"queued": true}, then `Published:OK`), and a refused boot connect.

A fake MQTT broker (plain TCP) runs in a thread: CONNACK 0 (or a refusal), PUBACK for QoS 1.
Every wait is on a line or a frame, with a deadline: nothing sleeps.
Usage: autoconnect_session_test.py <hil-agent>
"""
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

DEADLINE_S = 15.0


def fail(msg: str) -> None:
    print(f"autoconnect_session_test: {msg}", file=sys.stderr)
    sys.exit(1)


class Broker(threading.Thread):
    """Accepts clients one after another; answers CONNECT with CONNACK `code`."""

    def __init__(self, code: int = 0) -> None:
        super().__init__(daemon=True)
        self.code = code
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.published: list[tuple[str, bytes, int]] = []
        self.connects = 0

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.serve(conn)

    @staticmethod
    def recv_exact(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def serve(self, conn: socket.socket) -> None:
        try:
            while True:
                head = self.recv_exact(conn, 1)[0]
                rem, mult = 0, 1
                while True:
                    b = self.recv_exact(conn, 1)[0]
                    rem += (b & 127) * mult
                    mult *= 128
                    if not b & 128:
                        break
                body = self.recv_exact(conn, rem)
                kind = head >> 4
                if kind == 1:
                    self.connects += 1
                    conn.sendall(bytes([0x20, 2, 0, self.code]))
                    if self.code:
                        return
                elif kind == 3:
                    qos = (head >> 1) & 3
                    tlen = int.from_bytes(body[:2], "big")
                    topic = body[2:2 + tlen].decode()
                    rest = body[2 + tlen:]
                    if qos:
                        conn.sendall(bytes([0x40, 2]) + rest[:2])
                        rest = rest[2:]
                    self.published.append((topic, rest, qos))
                elif kind == 12:
                    conn.sendall(bytes([0xD0, 0]))
                elif kind == 14:
                    return
        except (EOFError, OSError):
            return

    def close(self) -> None:
        self.sock.close()


class Agent:
    def __init__(self, binary: str, state: str) -> None:
        self.proc = subprocess.Popen([binary, "--state", state], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.out = b""
        self.pos = 0  # what the waits have consumed

    def send(self, data: str) -> None:
        assert self.proc.stdin
        self.proc.stdin.write(data.encode())
        self.proc.stdin.flush()

    def frame(self, req: dict) -> None:
        self.send('"""' + json.dumps(req, separators=(",", ":")) + '"""')

    def wait(self, pattern: str) -> re.Match:
        """The next match of pattern (bytes regex) after what earlier waits consumed."""
        rx = re.compile(pattern.encode(), re.M)
        end = time.monotonic() + DEADLINE_S
        assert self.proc.stdout
        fd = self.proc.stdout.fileno()
        while True:
            m = rx.search(self.out, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = end - time.monotonic()
            if left <= 0:
                fail(f"no {pattern!r} within {DEADLINE_S} s; output:\n{self.out.decode(errors='replace')}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    fail(f"agent exited before {pattern!r}; output:\n{self.out.decode(errors='replace')}")
                self.out += chunk

    def response(self, rid: int) -> dict:
        m = self.wait(r'^"""(\{"id":%d,.*?\})([0-9a-f]{8})"""$' % rid)
        body, crc = m.group(1), m.group(2)
        if zlib.crc32(body) != int(crc, 16):
            fail(f"bad crc32 on response {rid}")
        return json.loads(body)

    def finish(self) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.close()
        rest = self.proc.stdout.read()
        self.out += rest
        if self.proc.wait(timeout=DEADLINE_S) != 0:
            fail(f"exit code {self.proc.returncode}")
        return self.out.decode(errors="replace")


FINAL = r"^(@\S+ )?(OK|ERR .*)$"


def main() -> None:
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        broker = Broker()
        broker.start()
        server = f"127.0.0.1:{broker.port}"
        a = Agent(binary, os.path.join(d, "s.state"))
        a.wait(r"^I \(\d+\) hil: hil-agent \S+ ready")
        a.send('\x04"""')
        a.wait('^"""\x04"""$')
        a.frame({"id": 1, "method": "Config.Set",
                 "params": {"config": {"mqtt": {"server": server, "enable": True}}}})
        if a.response(1).get("result") != {"saved": False}:
            fail("Config.Set")
        a.send("@g1 config get mqtt.enable\n")
        a.wait(r"^mqtt\.enable=true\n@g1 OK$")
        # not saved yet, and no connect before the reboot
        if broker.connects:
            fail("connected before the reboot")
        a.frame({"id": 2, "method": "Config.Save", "params": {"reboot": True}})
        if a.response(2).get("result") != {"saved": True}:
            fail("Config.Save")
        a.wait(r"^I \(\d+\) hil: hil-agent \S+ ready")
        boot_at = a.pos
        a.wait(r"^I \(\d+\) hil: MQTT0 connecting to %s$" % re.escape(server))
        a.wait(r"^I \(\d+\) hil: MQTT0 TCP connect ok \(0\)$")
        a.wait(r"^I \(\d+\) hil: MQTT0 CONNACK 0$")
        if re.search(FINAL.encode(), a.out[boot_at:a.pos], re.M):
            fail("the boot connect printed a final line")
        a.send("@s1 status\n")
        a.wait(r"^mqtt=connected$")
        a.wait(r"^@s1 OK$")
        # MQTT.Pub on the boot connection: the answer, then the log line
        a.frame({"id": 3, "method": "MQTT.Pub",
                 "params": {"topic": "t/rpc", "message": "hello rpc", "qos": 1}})
        if a.response(3).get("result") != {"queued": True}:
            fail("MQTT.Pub")
        a.wait(r"^I \(\d+\) hil: Published:OK topic:t/rpc msg:hello rpc$")
        a.frame({"id": 4, "method": "MQTT.Pub", "params": {"topic": "t/q0", "message": "zero"}})
        if a.response(4).get("result") != {"queued": True}:
            fail("MQTT.Pub qos 0")
        a.wait(r"^I \(\d+\) hil: Published:OK topic:t/q0 msg:zero$")
        a.frame({"id": 5, "method": "MQTT.Pub", "params": {"topic": "t", "message": "m", "qos": 2}})
        err = a.response(5).get("error")
        if err != {"code": 400, "message": "params.qos: expected 0 or 1"}:
            fail(f"MQTT.Pub qos 2: {err}")
        # the console's publish still has its one final line
        a.send("@p1 mqtt publish t/console hi 1\n")
        a.wait(r"^I \(\d+\) hil: Published:OK topic:t/console msg:hi\n@p1 OK$")
        out = a.finish()
        print(out)
        if ("t/rpc", b"hello rpc", 1) not in broker.published or ("t/q0", b"zero", 0) not in broker.published:
            fail(f"the broker did not get the RPC publishes: {broker.published}")
        broker.close()

        # refused at boot: the connect's own lines, one E line for the outcome, no final line
        refuser = Broker(code=5)
        refuser.start()
        a = Agent(binary, os.path.join(d, "r.state"))
        a.wait(r"^I \(\d+\) hil: hil-agent \S+ ready")
        a.send(f"config set mqtt.server 127.0.0.1:{refuser.port}\nconfig set mqtt.enable true\n"
               "config save\n@r1 reboot\n")
        a.wait(r"^@r1 OK$")
        a.wait(r"^I \(\d+\) hil: hil-agent \S+ ready")
        boot_at = a.pos
        a.wait(r"^I \(\d+\) hil: MQTT0 CONNACK 5$")
        a.wait(r"^E \(\d+\) hil: mqtt\.enable: mqtt connect: CONNACK 5 \(not authorised\)$")
        if re.search(FINAL.encode(), a.out[boot_at:a.pos], re.M):
            fail("the refused boot connect printed a final line")
        a.send("@v1 version\n")
        a.wait(r"^@v1 OK$")
        print(a.finish())
        refuser.close()
    print("autoconnect_session_test: ok")


if __name__ == "__main__":
    main()
