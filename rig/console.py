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
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import pexpect

FINAL_RE = re.compile(rb"(?m)^(OK|ERR[^\r\n]*)\r?\n")
LOG_RE = re.compile(r"^([IWE]) \((\d+)\) hil: (.*)$")
READY_RE = re.compile(rb"hil-agent (\S+) ready[^\r\n]*\r?\n")
SECRET_KEYS = frozenset({"mqtt.pass", "mqtt.ssl_key", "mqtt.ssl_psk_key", "http.ssl_key",
                         "wifi.sta.pass"})
CHUNK = 96  # decoded bytes per `config data` line
MAX_SET = 200  # longer values (and any with a newline) go through config load


class ConsoleError(Exception):
    """The board answered ERR, or did not answer. Names the board and the command."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class ConsoleTimeout(ConsoleError):
    pass


@dataclass
class Reply:
    command: str  # as shown (secrets redacted)
    data: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)  # the `hil:` texts, prefix removed

    def log(self, pattern: str) -> re.Match[str]:
        rx = re.compile(pattern)
        for text in self.logs:
            m = rx.search(text)
            if m:
                return m
        raise AssertionError(f"no log line matching {pattern!r} after `{self.command}`; "
                             f"got: {self.logs}")


def redact(command: str) -> str:
    parts = command.split(" ", 3)
    if len(parts) >= 4 and parts[:2] == ["config", "set"] and parts[2] in SECRET_KEYS:
        return f"config set {parts[2]} <secret>"
    return command


def log_text(line: str) -> str | None:
    m = LOG_RE.match(line)
    return m.group(3) if m else None


class Console:
    """Line-based commands over a Dut (pytest-embedded), with a transcript of what came back."""

    def __init__(self, dut: Any, board: str, timeout: float = 10.0) -> None:
        self.dut = dut
        self.board = board
        self.timeout = timeout
        self.lines: list[str] = []  # everything the board printed that we consumed

    # -------------------------------------------------------------- reading

    def _absorb(self, raw: bytes) -> list[str]:
        text = raw.decode("utf-8", "replace").replace("\r", "")
        new = [ln for ln in text.split("\n") if ln]
        self.lines.extend(new)
        return new

    def tail(self, n: int = 15) -> str:
        buffered = self._buffered()
        lines = self.lines[-n:] + ([f"(unterminated) {buffered}"] if buffered else [])
        return "\n    ".join(lines) if lines else "(nothing)"

    def _buffered(self) -> str:
        proc = getattr(self.dut, "pexpect_proc", None)
        buf = getattr(proc, "buffer", b"") if proc is not None else b""
        return buf.decode("utf-8", "replace").strip() if isinstance(buf, bytes) else ""

    def _expect(self, pattern: re.Pattern[bytes], timeout: float, what: str) -> bytes:
        try:
            match = self.dut.expect(pattern, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            raise ConsoleTimeout(
                f"board {self.board}: no answer to `{what}` within {timeout:.1f}s; "
                f"last lines:\n    {self.tail()}", reason="timeout") from exc
        before = self.dut.pexpect_proc.before
        self._absorb(before if isinstance(before, bytes) else b"")
        matched: bytes = match.group(0)
        self._absorb(matched)
        return matched

    def wait_ready(self, timeout: float) -> str:
        """Wait for the agent's boot line; returns the firmware version."""
        line = self._expect(READY_RE, timeout, "boot (hil-agent ... ready)")
        m = READY_RE.search(line)
        return m.group(1).decode() if m else "?"

    def expect_log(self, pattern: str, timeout: float | None = None) -> str:
        """Wait for a log line (asynchronous event) matching `pattern`; returns its text."""
        rx = re.compile(rb"(?m)^[IWE] \(\d+\) hil: [^\r\n]*" + pattern.encode() +
                        rb"[^\r\n]*\r?\n")
        raw = self._expect(rx, self.timeout if timeout is None else timeout,
                           f"log line /{pattern}/")
        return log_text(raw.decode("utf-8", "replace").strip()) or ""

    # -------------------------------------------------------------- commands

    def send(self, command: str, timeout: float | None = None, shown: str | None = None) -> Reply:
        """Send one command; returns its data and log lines, raises ConsoleError on ERR."""
        shown = shown or redact(command)
        if "\n" in command or "\r" in command:
            raise ValueError(f"a console command is one line: {shown!r}")
        start = len(self.lines)
        self.dut.write(command)  # SerialDut.write appends the newline
        final = self._expect(FINAL_RE, self.timeout if timeout is None else timeout, shown)
        reply = Reply(shown)
        for line in self.lines[start:-1]:
            text = log_text(line)
            if text is None:
                reply.data.append(line)
            else:
                reply.logs.append(text)
        status = final.decode("utf-8", "replace").strip()
        if status != "OK":
            reason = status[4:] if status.startswith("ERR ") else status
            raise ConsoleError(f"board {self.board}: `{shown}` failed: {reason}", reason=reason)
        return reply

    def set(self, key: str, value: bytes | str) -> None:
        raw = value.encode() if isinstance(value, str) else value
        if len(raw) <= MAX_SET and b"\n" not in raw and b"\r" not in raw and raw.strip() == raw:
            self.send(f"config set {key} {raw.decode()}")
        else:
            self.load(key, raw)

    def load(self, key: str, data: bytes) -> None:
        """Chunked upload with per-chunk and whole-value CRC-32; one retry of the whole value."""
        for attempt in (1, 2):
            try:
                self.send(f"config load {key} {len(data)} {zlib.crc32(data):08x}")
                for seq, off in enumerate(range(0, len(data), CHUNK)):
                    chunk = data[off:off + CHUNK]
                    b64 = base64.b64encode(chunk).decode()
                    self.send(f"config data {seq} {b64} {zlib.crc32(chunk):08x}",
                              shown=f"config data {seq} <{len(chunk)} bytes of {key}>")
                self.send("config end", shown=f"config end ({key}, {len(data)} bytes)")
                return
            except ConsoleTimeout:
                raise
            except ConsoleError:
                if attempt == 2:
                    raise

    def status(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.send("status").data if "=" in line)
