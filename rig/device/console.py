"""Talking to a board's console through its pytest-embedded Dut.

The agent's contract (firmware/README.md): every command ends with exactly one `OK` or
`ERR <reason>` line; log lines look like `I (<ms>) hil: <text>`; anything else before the final
line is a data line. Long values cross in chunks with CRC-32 (`config load/data/end`), one line
at a time, each acknowledged, so a small UART receive buffer never overflows.

Secrets: the agent never echoes input, and commands that carry a secret are shown redacted in
every error and transcript.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import re
import secrets
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pexpect

from rig.device import mos_rpc
from rig.errors import RigError
from rig.local.spans import work

# A final line: `OK`, `OK <note>` (e.g. `OK queued 1 of 5`) / `ERR <reason>`, tagged
# `@<tag> OK` when the command was (see Console).
FINAL_RE = re.compile(rb"(?m)^(?:@([A-Za-z0-9._-]{1,24}) )?(OK(?: [^\r\n]*)?|ERR[^\r\n]*)\r?\n")
LOG_RE = re.compile(r"^([IWE]) \((\d+)\) hil: (.*)$")
# any ESP-IDF style log line (another component's, e.g. `W (812) wifi: ...` on a real board):
# never part of a reply's data
ANY_LOG_RE = re.compile(r"^[EWIDV] \(\d+\) [^\s:]+: ")
READY_RE = re.compile(rb"(?m)^[IWE] \(\d+\) hil: hil-agent (\S+) ready[^\r\n]*\r?\n")
READY_LINE_RE = re.compile(r"^[IWE] \(\d+\) hil: hil-agent \S+ ready")
# a TLS session's key-log line, sealed with the cell's sealing key (`tls keylog <key>`): taken
# out of the lines and the transcript, unsealed only in memory for the cell's capture
KEYLOG_LINE_RE = re.compile(r"^[IWE] \(\d+\) hil: keylog (\d{1,9}) ([0-9a-f]{2,1024})$")
SECRET_KEYS = frozenset({"mqtt.pass", "mqtt.ssl_key", "mqtt.ssl_psk_key", "http.ssl_key",
                         "wifi.sta.pass"})
PLAIN_KEYS = frozenset({"mqtt.server", "mqtt.client_id", "mqtt.user", "mqtt.keep_alive",
                        "mqtt.ssl_ca_cert", "mqtt.ssl_cert", "mqtt.ssl_psk_identity",
                        "mqtt.ssl_cipher_suites", "mqtt.enable", "mqtt.clean_session",
                        "mqtt.reconnect_timeout_min", "mqtt.reconnect_timeout_max",
                        "mqtt.max_queue_length", "http.listen_addr",
                        "http.ssl_cert", "http.ssl_ca_cert", "wifi.sta.ssid"})
CHUNK = 96  # decoded bytes per `config data` line
MAX_SET = 200  # longer values (and any with a newline) go through config load
# Bytes sent ahead of the board's answers. The agent's line limit is 512 bytes; the ESP-IDF
# console's UART receive buffer must hold at least this much (firmware/README.md).
DEFAULT_WINDOW = 1024
SEPARATORS = re.compile(r"[ \t]+")  # the agent's tokenizer: runs of spaces and tabs
# `config set <key> <value>`: the value is the rest after the one separator after the key
SET_RE = re.compile(r"^[ \t]*config[ \t]+set[ \t]+([^ \t]+)[ \t](.*)$", re.S)
POLL_S = 0.2  # how often a wait looks at the board's health
PROBE_S = 2.0  # how long the boot probe waits before it is sent again
OPENED_RE = re.compile(re.escape(mos_rpc.OPENED))  # the board's answer to the RPC opening
LINE_MAX = 512  # the agent's longest console line (firmware/README.md)
WIRE_EXTRA = 2 + 1 + 6 + 1 + 6 + 1  # leading and trailing newline, "@", nonce, ".", seq, " "


class ConsoleError(RigError):
    """The board answered ERR, or did not answer. Names the board and the command."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class ConsoleTimeout(ConsoleError):
    """The board did not answer in time (it may be hung)."""


class BoardDied(ConsoleError):
    """The board's process (or the board) went away while the rig waited for it."""


@dataclass
class Reply:
    command: str  # as shown (secrets redacted)
    data: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)  # the `hil:` texts, prefix removed
    note: str = ""  # what an `OK <note>` final line said after the OK

    def log(self, pattern: str) -> re.Match[str]:
        rx = re.compile(pattern)
        for text in self.logs:
            m = rx.search(text)
            if m:
                return m
        raise AssertionError(f"no log line matching {pattern!r} after `{self.command}`; "
                             f"got: {self.logs}")


def redact(command: str) -> str:
    """A console line as errors and transcripts may show it: the value of a secret setting, the
    base64 of any `config data` chunk and the CRC of a `config load` never appear. Tokens split
    exactly as the agent splits them (runs of spaces and tabs; a trailing CR is dropped; an
    `@tag` prefix is ignored); an unknown key's value is hidden too, and a line that still names
    a secret key or holds a private key shows nothing after it."""
    line = command.rstrip("\r")
    tokens = SEPARATORS.split(line.lstrip(" \t"))
    if tokens and tokens[0].startswith("@"):
        tokens = tokens[1:]
    if len(tokens) >= 3 and tokens[0] == "tls" and tokens[1] == "keylog" and tokens[2] != "off":
        return "tls keylog <sealing key>"
    if len(tokens) >= 2 and tokens[0] == "config":
        sub = tokens[1]
        if sub == "set" and len(tokens) >= 3:
            key = tokens[2]
            if key in PLAIN_KEYS:
                return _guard(line)
            return f"config set {key if key in SECRET_KEYS else '<unknown key>'} <secret>"
        if sub == "data":
            seq = tokens[2] if len(tokens) > 2 and tokens[2].isdigit() else "?"
            approx = len(tokens[3]) * 3 // 4 if len(tokens) > 3 else 0
            return f"config data {seq} <about {approx} bytes>"
        if sub == "load":
            key = tokens[2] if len(tokens) > 2 and tokens[2] in SECRET_KEYS | PLAIN_KEYS \
                else "<key>"
            total = tokens[3] if len(tokens) > 3 and tokens[3].isdigit() else "?"
            return f"config load {key} {total}"
    return _guard(line)


def unseal(key: bytes, seq: int, sealed: bytes) -> bytes:
    """A key-log line the agent sealed: XOR with HMAC-SHA256(key, "hil-keylog" || seq || i)
    blocks (seq and i 4-byte big-endian; firmware/README.md, "TLS key log")."""
    stream = b"".join(
        hmac.new(key, b"hil-keylog" + seq.to_bytes(4, "big") + i.to_bytes(4, "big"),
                 hashlib.sha256).digest() for i in range((len(sealed) + 31) // 32))
    return bytes(a ^ b for a, b in zip(sealed, stream, strict=False))


def value_digest(value: bytes) -> str:
    """What Console.known keeps of a setting's value (never the value itself)."""
    return hashlib.sha256(value).hexdigest()


def _guard(line: str) -> str:
    """Cut a line at the first secret key name or private-key marker it still contains."""
    cuts = [line.find(k) + len(k) for k in SECRET_KEYS if k in line]
    if "PRIVATE KEY" in line:
        cuts.append(line.find("PRIVATE KEY"))
    if not cuts:
        return line
    return line[:min(cuts)].rstrip() + " <secret>"


def log_text(line: str) -> str | None:
    m = LOG_RE.match(line)
    return m.group(3) if m else None


def parse_reply(board: str, shown: str, lines: list[str], final: str) -> Reply | ConsoleError:
    """One command's answer: the agent's log lines (prefix removed), its data lines (other
    components' log lines, e.g. ESP-IDF's `W (812) wifi: ...`, are neither), and the final
    OK / ERR <reason> line."""
    reply = Reply(shown)
    for line in lines:
        text = log_text(line)
        if text is not None:
            reply.logs.append(text)
        elif not ANY_LOG_RE.match(line):
            reply.data.append(line)
    status = final.strip()
    if status == "OK" or status.startswith("OK "):
        reply.note = status[3:]
        return reply
    reason = status[4:] if status.startswith("ERR ") else status
    return ConsoleError(f"board {board}: `{shown}` failed: {reason}", reason=reason)


@dataclass(frozen=True)
class Command:
    line: str = field(repr=False, compare=False)  # may hold a secret: never shown
    shown: str  # what errors and reports show (secrets redacted)


def set_commands(key: str, raw: bytes) -> list[Command]:
    """The console lines that store one setting: `config set`, or a chunked `config load`."""
    if len(raw) <= MAX_SET and b"\n" not in raw and b"\r" not in raw and raw.strip() == raw:
        line = f"config set {key} {raw.decode()}"
        return [Command(line, redact(line))]
    cmds = [Command(f"config load {key} {len(raw)} {zlib.crc32(raw):08x}",
                    f"config load {key} {len(raw)}")]
    for seq, off in enumerate(range(0, len(raw), CHUNK)):
        chunk = raw[off:off + CHUNK]
        cmds.append(Command(
            f"config data {seq} {base64.b64encode(chunk).decode()} {zlib.crc32(chunk):08x}",
            f"config data {seq} <{len(chunk)} bytes of {key}>"))
    cmds.append(Command("config end", f"config end ({key}, {len(raw)} bytes)"))
    return cmds


class Console:
    """Line-based commands over a Dut (pytest-embedded), with a transcript of what came back.

    Sync: every command goes out as `@<nonce>.<seq> <command>`, and only the final line carrying
    that tag answers it. The nonce is new for every Console (one per port open / boot), so a
    line from before the current boot, an answer to garbage on the console, or a board that
    skipped a line can never be taken for the answer to the current command; such lines are
    kept in `noise`. Each command line starts with a newline, which ends any partial line left
    on the wire. `health` (from the board driver) is asked while waiting: a board whose process
    died is named at once instead of after the timeout."""

    def __init__(self, dut: Any, board: str, timeout: float = 10.0,
                 window: int = DEFAULT_WINDOW, health: Callable[[], str] | None = None) -> None:
        self.dut = dut
        self.board = board
        self.timeout = timeout
        self.window = window
        self.health = health or (lambda: "")
        self.nonce = secrets.token_hex(3)
        # what the board's `version` said at its last boot: version, mbedtls, build, bits,
        # variant (older firmware: the first three only)
        self.firmware: dict[str, str] = {}
        self._keylog_key: bytes | None = None
        self.keys: list[str] = []  # unsealed NSS key-log lines (see keylog_on)
        self._seq = 0
        self.activity = ""  # what the rig is doing with the board, for error messages
        self.lines: list[str] = []  # everything the board printed that we consumed
        self.transcript: list[str] = []  # the same, with "> command" (redacted) for what we sent
        self.noise: list[str] = []  # final lines that answer no command of ours
        self.broken = ""  # why the board stopped answering (its death, "timeout"), once seen
        # digests of the settings the board holds in RAM, as far as this Console has seen
        # them change since the boot (None: unknown, e.g. what a boot loaded from flash)
        self.known: dict[str, str] | None = None
        self._abandoned: set[str] = set()  # tags of commands we stopped waiting for
        self._rpc_id = 0  # the last Mongoose OS RPC request's id (rpc)
        self._booting = False  # inside wait_ready: a boot line is expected
        self._reboot_asked = False  # a `reboot` was sent: its boot line is not a surprise
        self.rebooted = ""  # the boot line of a reboot seen outside wait_ready (this cell)
        self.unexpected_reboot = ""  # the same when nobody asked for it

    def command(self, line: str) -> Command:
        """A Command for send_many, shown redacted."""
        return Command(line, redact(line))

    def begin_cell(self, cell: str) -> None:
        """A new cell on the same boot: its own noise and troubles; the transcript marks it."""
        self.noise = []
        self.broken = ""
        self.rebooted = self.unexpected_reboot = ""
        self.transcript.append(f"--- {cell}")

    @contextlib.contextmanager
    def doing(self, activity: str) -> Iterator[None]:
        """Name what the rig is doing (e.g. "provisioning psk settings") for error messages."""
        before, self.activity = self.activity, activity
        try:
            yield
        finally:
            self.activity = before

    # -------------------------------------------------------------- reading

    def _absorb(self, raw: bytes) -> list[str]:
        text = raw.decode("utf-8", "replace").replace("\r", "")
        new = [ln for ln in text.split("\n") if ln and not self._keylog_line(ln)]
        self.lines.extend(new)
        self.transcript.extend(new)
        if not self._booting and any(READY_LINE_RE.match(ln) for ln in new):
            # a boot the rig did not wait for: what the board holds is what it loaded
            self.known = None
            boot = next(ln for ln in new if READY_LINE_RE.match(ln))
            if self._reboot_asked:
                self._reboot_asked = False
            else:
                self.unexpected_reboot = boot
            self.rebooted = boot
        return new

    def _keylog_line(self, line: str) -> bool:
        """A sealed key-log line: unsealed into `keys` while export is on (else dropped);
        never kept among the lines or in the transcript."""
        m = KEYLOG_LINE_RE.match(line)
        if m is None:
            return False
        if self._keylog_key is not None:
            plain = unseal(self._keylog_key, int(m.group(1)), bytes.fromhex(m.group(2)))
            self.keys.append(plain.decode("ascii", "replace"))
        return True

    def keylog_on(self) -> None:
        """Turn on the export of TLS session secrets for this cell's connections, sealed with
        a fresh key that never leaves this process except on the wire to the board."""
        key = secrets.token_bytes(32)
        self.send(f"tls keylog {key.hex()}", shown="tls keylog <sealing key>")
        self._keylog_key = key
        self.keys = []

    def keylog_off(self) -> None:
        """Stop the export; the sealed lines still on their way are read (and unsealed) with
        the answer. The key is forgotten either way."""
        try:
            if not self.broken and self._keylog_key is not None:
                self.send("tls keylog off")
        finally:
            self._keylog_key = None

    def take_keys(self) -> list[str]:
        """The NSS key-log lines the board exported since keylog_on, handed over once."""
        keys, self.keys = self.keys, []
        return keys

    def _sent(self, shown: str) -> None:
        self.transcript.append(f"> {shown}")

    def tail(self, n: int = 15, indent: str = "    ") -> str:
        """The last commands sent and lines received (plus any unterminated output)."""
        buffered = self._buffered()
        lines = self.transcript[-n:] + ([f"(unterminated) {buffered}"] if buffered else [])
        return ("\n" + indent).join(lines) if lines else "(nothing)"

    def _buffered(self) -> str:
        proc = getattr(self.dut, "pexpect_proc", None)
        buf = getattr(proc, "buffer", b"") if proc is not None else b""
        return buf.decode("utf-8", "replace").strip() if isinstance(buf, bytes) else ""

    def _while(self) -> str:
        return f" while {self.activity}" if self.activity else ""

    def noise_summary(self) -> str:
        """'' or one line saying what arrived that answered no command of ours."""
        if not self.noise:
            return ""
        first = self.noise[0] if len(self.noise[0]) <= 80 else self.noise[0][:77] + "..."
        old = any(line.startswith("ERR unknown command '@") for line in self.noise)
        return (f"board {self.board}: {len(self.noise)} line(s) on the console answered no "
                f"command of the rig (garbage written to the console, or a line from before "
                f"the last reset); first: {first!r}" + (
                    "; the firmware does not know tagged commands: flash the current build"
                    if old else ""))

    def _expect(self, pattern: re.Pattern[bytes], timeout: float, what: str,
                waited: float | None = None) -> bytes:
        """Wait for `pattern`, looking at the board's health every POLL_S. `waited`: the whole
        wait this is the end of, for the message (default: timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                match = self.dut.expect(pattern, timeout=max(0.0, min(POLL_S, left)))
                break
            except pexpect.EOF as exc:
                self.broken = "console closed"
                raise ConsoleError(f"board {self.board}: console closed{self._while()} "
                                   f"(waiting for `{what}`); last lines:\n    {self.tail()}",
                                   reason="console closed") from exc
            except pexpect.TIMEOUT as exc:
                death = self.health()
                if death:
                    self.broken = death
                    raise BoardDied(f"board {self.board}: {death}{self._while()} (waiting for "
                                    f"`{what}`); last lines:\n    {self.tail()}",
                                    reason=death) from exc
                if left <= 0:
                    self.broken = "timeout"
                    noise = self.noise_summary()
                    raise ConsoleTimeout(
                        f"board {self.board}: no answer for "
                        f"{round(timeout if waited is None else waited, 1):g} s after `{what}`"
                        f"{self._while()}; last lines:\n    {self.tail()}"
                        + (f"\n{noise}" if noise else ""), reason="timeout") from exc
        before = self.dut.pexpect_proc.before
        self._absorb(before if isinstance(before, bytes) else b"")
        matched: bytes = match.group(0)
        self._absorb(matched)
        return matched

    def wait_ready(self, timeout: float) -> str:
        """Wait for the agent's boot line, then for the answer to a first tagged command (a
        boot line still in a log from before the reset is not proof of a live agent); returns
        the firmware version."""
        deadline = time.monotonic() + timeout
        self._booting = True
        try:
            line = self._expect(READY_RE, timeout, "boot (hil-agent ... ready)")
        finally:
            self._booting = False
        m = READY_RE.search(line)
        while True:  # a probe sent before the board was listening is lost: send another
            left = deadline - time.monotonic()
            try:
                reply = self.send("version", timeout=max(0.05, min(PROBE_S, left)))
                self.firmware = dict(line.split("=", 1) for line in reply.data if "=" in line)
                break
            except ConsoleTimeout:
                if time.monotonic() >= deadline:
                    raise
        self.broken = ""
        self.known = None  # a boot loads whatever was saved
        return m.group(1).decode() if m else "?"

    def identity(self) -> str:
        """The firmware as one line, from its last boot's `version`: e.g. "hil-agent 1.0.0,
        esp variant, mbedTLS 3.6.6, 32-bit, build 1a2b3c"."""
        f = self.firmware
        parts = [f"hil-agent {f.get('version', '?')}"]
        if f.get("variant"):
            parts.append(f"{f['variant']} variant")
        parts.append(f"mbedTLS {f.get('mbedtls', '?')}")
        if f.get("bits"):
            parts.append(f"{f['bits']}-bit")
        parts.append(f"build {f.get('build', '?')}")
        return ", ".join(parts)

    def expect_log(self, pattern: str, timeout: float | None = None) -> str:
        """Wait for a log line (asynchronous event) matching `pattern`; returns its text."""
        rx = re.compile(rb"(?m)^[IWE] \(\d+\) hil: [^\r\n]*" + pattern.encode() +
                        rb"[^\r\n]*\r?\n")
        raw = self._expect(rx, self.timeout if timeout is None else timeout,
                           f"log line /{pattern}/")
        return log_text(raw.decode("utf-8", "replace").strip()) or ""

    # -------------------------------------------------------------- commands

    def _tag(self) -> str:
        self._seq += 1
        return f"{self.nonce}.{self._seq}"

    def _write(self, cmd: Command) -> tuple[Command, str, int]:
        if "\n" in cmd.line or "\r" in cmd.line:
            raise ValueError(f"a console command is one line: {cmd.shown!r}")
        tag = self._tag()
        wire = f"\n@{tag} {cmd.line}"
        if len(wire.encode()) - 1 > LINE_MAX:  # the tag counts toward the agent's line limit
            raise ValueError(f"console line too long ({len(wire.encode()) - 1} bytes with its "
                             f"tag, the agent takes {LINE_MAX}): {cmd.shown!r}")
        self.dut.write(wire)  # SerialDut.write appends the newline
        self._sent(cmd.shown)
        return cmd, tag, len(wire) + 1

    def _next_final(self, deadline: float, shown: str, wait: float,
                    ) -> tuple[str | None, bytes, int]:
        """The next final line: (its tag or None, the line, index of its line in self.lines)."""
        final = self._expect(FINAL_RE, max(0.0, deadline - time.monotonic()), shown, wait)
        m = FINAL_RE.search(final)
        tag = m.group(1).decode() if m and m.group(1) else None
        return tag, final, len(self.lines) - 1

    def send(self, command: str, timeout: float | None = None, shown: str | None = None) -> Reply:
        """Send one command; returns its data and log lines, raises ConsoleError on ERR."""
        result = self.send_many([Command(command, shown or redact(command))], timeout)[0]
        if isinstance(result, ConsoleError):
            raise result
        return result

    def send_many(self, commands: list[Command], timeout: float | None = None,
                  *, track: bool = True) -> list[Reply | ConsoleError]:
        """Pipelined commands: up to `window` bytes are sent ahead of the board's answers (keep
        it below the firmware's console receive buffer). Each answer is matched by its tag;
        lines with another tag or none go to `noise`, and a command whose answer never came
        while a later one's did gets a ConsoleError saying its line was lost. Every command is
        sent even after an ERR; the result list holds a Reply or the ConsoleError for each, in
        order. A silent board raises ConsoleTimeout, a dead one BoardDied. `timeout` bounds
        the wait for each answer."""
        with work("console"):
            return self._send_many(commands, self.timeout if timeout is None else timeout,
                                   track)

    def _send_many(self, commands: list[Command], wait: float,
                   track: bool) -> list[Reply | ConsoleError]:
        results: list[Reply | ConsoleError] = []
        pending: deque[tuple[Command, str, int]] = deque()
        inflight = 0
        todo = deque(commands)
        start = len(self.lines)
        while todo or pending:
            while todo and (not pending or
                            inflight + len(todo[0].line) + WIRE_EXTRA <= self.window):
                sent = self._write(todo.popleft())
                pending.append(sent)
                inflight += sent[2]
            oldest, first_tag, _ = pending[0]
            deadline = time.monotonic() + wait
            while pending and pending[0][1] == first_tag:
                try:
                    tag, final, index = self._next_final(deadline, oldest.shown, wait)
                except ConsoleError:
                    self._abandoned.update(p[1] for p in pending)
                    raise
                theirs = next((i for i, p in enumerate(pending) if p[1] == tag), None)
                if theirs is None:  # it, and the lines since the last answer, are not ours
                    line = self.lines.pop(index)
                    if tag is None or tag not in self._abandoned:
                        self.noise.append(line)
                    start = len(self.lines)
                    continue
                for _ in range(theirs):  # earlier commands whose answer never came
                    lost, lost_tag, size = pending.popleft()
                    self._abandoned.add(lost_tag)  # a late answer to it is not noise
                    inflight -= size
                    results.append(ConsoleError(
                        f"board {self.board}: no answer to `{lost.shown}`{self._while()} (its "
                        f"line was lost or garbled on the wire: a later command was answered "
                        f"first)", reason="lost"))
                done, _, size = pending.popleft()
                inflight -= size
                text = final.decode("utf-8", "replace")
                if tag is not None:
                    text = text.split(" ", 1)[1]
                results.append(self._reply(done.shown, self.lines[start:index], text))
                start = len(self.lines)
        if track:
            for cmd, result in zip(commands, results, strict=True):
                self._track(cmd.line, not isinstance(result, ConsoleError))
        return results

    def _track(self, line: str, ok: bool) -> None:
        """Follow what a command did to the board's settings (Console.known)."""
        tokens = SEPARATORS.split(line.strip(" \t"))
        if tokens[0] == "reboot":
            self.known = None
            self._reboot_asked = ok
            return
        if tokens[0] != "config" or len(tokens) < 2 or tokens[1] in ("get", "save"):
            return
        if not ok and tokens[1] in ("set", "clear"):
            return  # refused: nothing changed
        m = SET_RE.match(line)
        if tokens[1] == "clear" and len(tokens) == 2:
            self.known = {}
        elif tokens[1] == "clear" and self.known is not None:
            self.known.pop(tokens[2], None)
        elif tokens[1] == "set" and m and self.known is not None:
            self.known[m.group(1)] = value_digest(m.group(2).encode())
        else:  # a chunked upload outside set_many, or something new: no longer known
            self.known = None

    def _reply(self, shown: str, lines: list[str], final: str) -> Reply | ConsoleError:
        return parse_reply(self.board, shown, lines, final)

    def set_many(self, values: dict[str, bytes | str]) -> None:
        """Store settings (short ones with `config set`, the rest chunked), pipelined; a value
        that fails (e.g. a chunk garbled on the wire) is sent once more on its own."""
        plans = {key: set_commands(key, v.encode() if isinstance(v, str) else v)
                 for key, v in values.items()}
        flat = [cmd for cmds in plans.values() for cmd in cmds]
        outcome = iter(self.send_many(flat, track=False))
        failed: dict[str, ConsoleError] = {}
        for key, cmds in plans.items():
            errors = [r for r in (next(outcome) for _ in cmds) if isinstance(r, ConsoleError)]
            if errors:
                failed[key] = errors[0]
        for key, first in failed.items():
            retry = [r for r in self.send_many(plans[key], track=False)
                     if isinstance(r, ConsoleError)]
            if retry:
                self.known = None  # part of it may have been stored
                raise retry[0] from first
        if self.known is not None:
            for key, v in values.items():
                self.known[key] = value_digest(v.encode() if isinstance(v, str) else v)

    def status(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.send("status").data if "=" in line)

    # -------------------------------------------------------------- Mongoose OS RPC

    def rpc_open(self, timeout: float | None = None) -> None:
        """Open the board's Mongoose OS RPC channel on this port, as `mos` does
        (rig/device/mos_rpc.py): the opening sent again until the board answers it."""
        with work("console"):
            self._rpc_open(self.timeout if timeout is None else timeout)

    def _rpc_open(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while True:
            self.dut.write(mos_rpc.OPEN.decode("latin-1"))  # SerialDut.write adds a newline
            self._sent("RPC channel opening")
            left = deadline - time.monotonic()
            try:
                self._expect(OPENED_RE, max(0.05, min(PROBE_S, left)), "RPC channel opening",
                             waited=wait)
                return
            except ConsoleTimeout:
                if time.monotonic() >= deadline:
                    raise
                self.broken = ""

    def rpc(self, method: str, params: dict[str, Any] | None = None,
            timeout: float | None = None) -> Any:
        """One RPC call over the open channel; its result, or RpcError with the board's error
        code and message. The request's parameters may hold secrets (Config.Set): the
        transcript shows the method only."""
        with work("console"):
            return self._rpc(method, params, self.timeout if timeout is None else timeout)

    def _rpc(self, method: str, params: dict[str, Any] | None, wait: float) -> Any:
        self._rpc_id += 1
        frame = mos_rpc.request_frame(self._rpc_id, method, params)
        self.dut.write(frame.decode("ascii"))
        self._sent(f"RPC {method} (id {self._rpc_id})")
        deadline = time.monotonic() + wait
        while True:
            raw = self._expect(mos_rpc.FRAME_RE, max(0.0, deadline - time.monotonic()),
                               f"RPC {method}", waited=wait)
            obj = mos_rpc.parse_frame(raw.strip())
            if obj.get("id") == self._rpc_id:
                return mos_rpc.answer_of(obj, method).result
            self.noise.append(raw.decode("utf-8", "replace").strip())  # an older call's
