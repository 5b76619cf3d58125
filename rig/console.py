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
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pexpect

FINAL_RE = re.compile(rb"(?m)^(OK|ERR[^\r\n]*)\r?\n")
LOG_RE = re.compile(r"^([IWE]) \((\d+)\) hil: (.*)$")
# any ESP-IDF style log line (another component's, e.g. `W (812) wifi: ...` on a real board):
# never part of a reply's data
ANY_LOG_RE = re.compile(r"^[EWIDV] \(\d+\) [^\s:]+: ")
READY_RE = re.compile(rb"(?m)^[IWE] \(\d+\) hil: hil-agent (\S+) ready[^\r\n]*\r?\n")
SECRET_KEYS = frozenset({"mqtt.pass", "mqtt.ssl_key", "mqtt.ssl_psk_key", "http.ssl_key",
                         "wifi.sta.pass"})
CHUNK = 96  # decoded bytes per `config data` line
MAX_SET = 200  # longer values (and any with a newline) go through config load
# Bytes sent ahead of the board's answers. The agent's line limit is 512 bytes; the ESP-IDF
# console's UART receive buffer must hold at least this much (firmware/README.md).
DEFAULT_WINDOW = 1024


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
    if status == "OK":
        return reply
    reason = status[4:] if status.startswith("ERR ") else status
    return ConsoleError(f"board {board}: `{shown}` failed: {reason}", reason=reason)


@dataclass(frozen=True)
class Command:
    line: str
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
    """Line-based commands over a Dut (pytest-embedded), with a transcript of what came back."""

    def __init__(self, dut: Any, board: str, timeout: float = 10.0,
                 window: int = DEFAULT_WINDOW) -> None:
        self.dut = dut
        self.board = board
        self.timeout = timeout
        self.window = window
        self.lines: list[str] = []  # everything the board printed that we consumed
        self.transcript: list[str] = []  # the same, with "> command" (redacted) for what we sent

    # -------------------------------------------------------------- reading

    def _absorb(self, raw: bytes) -> list[str]:
        text = raw.decode("utf-8", "replace").replace("\r", "")
        new = [ln for ln in text.split("\n") if ln]
        self.lines.extend(new)
        self.transcript.extend(new)
        return new

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
        self._sent(shown)
        final = self._expect(FINAL_RE, self.timeout if timeout is None else timeout, shown)
        result = self._reply(shown, self.lines[start:-1], final)
        if isinstance(result, ConsoleError):
            raise result
        return result

    def send_many(self, commands: list[Command], timeout: float | None = None,
                  ) -> list[Reply | ConsoleError]:
        """Pipelined commands: up to `window` bytes are sent ahead of the board's answers (keep
        it below the firmware's console receive buffer); each final line answers the oldest
        outstanding command. Every command is sent even after an ERR, and the result list holds
        a Reply or the ConsoleError for each, in order. A silent board raises ConsoleTimeout."""
        wait = self.timeout if timeout is None else timeout
        results: list[Reply | ConsoleError] = []
        pending: deque[tuple[Command, int]] = deque()
        inflight = 0
        todo = deque(commands)
        start = len(self.lines)
        while todo or pending:
            while todo and (not pending or inflight + len(todo[0].line) + 1 <= self.window):
                cmd = todo.popleft()
                if "\n" in cmd.line or "\r" in cmd.line:
                    raise ValueError(f"a console command is one line: {cmd.shown!r}")
                self.dut.write(cmd.line)
                self._sent(cmd.shown)
                pending.append((cmd, len(cmd.line) + 1))
                inflight += len(cmd.line) + 1
            cmd, size = pending.popleft()
            inflight -= size
            final = self._expect(FINAL_RE, wait, cmd.shown)
            results.append(self._reply(cmd.shown, self.lines[start:-1], final))
            start = len(self.lines)
        return results

    def _reply(self, shown: str, lines: list[str], final: bytes) -> Reply | ConsoleError:
        return parse_reply(self.board, shown, lines, final.decode("utf-8", "replace"))

    def set_many(self, values: dict[str, bytes | str]) -> None:
        """Store settings (short ones with `config set`, the rest chunked), pipelined; a value
        that fails (e.g. a chunk garbled on the wire) is sent once more on its own."""
        plans = {key: set_commands(key, v.encode() if isinstance(v, str) else v)
                 for key, v in values.items()}
        flat = [cmd for cmds in plans.values() for cmd in cmds]
        outcome = iter(self.send_many(flat))
        failed: dict[str, ConsoleError] = {}
        for key, cmds in plans.items():
            errors = [r for r in (next(outcome) for _ in cmds) if isinstance(r, ConsoleError)]
            if errors:
                failed[key] = errors[0]
        for key, first in failed.items():
            retry = [r for r in self.send_many(plans[key]) if isinstance(r, ConsoleError)]
            if retry:
                raise retry[0] from first


    def status(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.send("status").data if "=" in line)
