"""Mongoose OS RPC over a board's UART, as the `mos` tool speaks it (mongoose-os-libs/rpc-uart):
the frames, not the transport. The console (rig/device/console.py) writes and reads them on the
same port as its lines.

- The channel opens with `\\x04\"\"\"` from the host, which the device answers with
  `\"\"\"\\x04\"\"\"` (sent again until it does).
- A frame, either way, is `\"\"\"` + a JSON object + its CRC32 (IEEE, zlib's) as 8 lower-case
  hex digits + `\"\"\"`. The device checks the CRC when present and always sends one; a frame
  from the device whose CRC does not match is an error naming the frame, never taken as an
  answer.
- A request is `{"id": N, "method": "Config.Set", "params": {...}}`; the answer carries the same
  id and a `result`, or an `error` object `{"code": N, "message": "..."}`.

JSON strings cannot hold an unescaped `"`, so `\"\"\"` never occurs inside a frame's JSON."""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

from rig.errors import RigError

OPEN = b'\x04"""'  # the host opens the channel with this
OPENED = b'"""\x04"""'  # the device's answer
DELIM = b'"""'
# one frame from the device: the JSON object, its optional CRC, between delimiters; not the
# channel's `"""\x04"""` (a JSON object starts with `{`)
FRAME_RE = re.compile(rb'"""(\{[^\x04]*?\})([0-9a-fA-F]{8})?"""', re.DOTALL)


class RpcError(RigError):
    """A frame that is not what the protocol says, or an answer with an `error` object."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def crc32_hex(text: bytes) -> str:
    return f"{zlib.crc32(text) & 0xFFFFFFFF:08x}"


def request_frame(request_id: int, method: str, params: dict[str, Any] | None = None) -> bytes:
    """The frame of one request, CRC appended."""
    body: dict[str, Any] = {"id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    text = json.dumps(body, separators=(",", ":")).encode()
    return DELIM + text + crc32_hex(text).encode() + DELIM


@dataclass(frozen=True)
class Answer:
    id: int
    result: Any
    src: str  # the device's id, as it names itself


def parse_frame(raw: bytes) -> dict[str, Any]:
    """The JSON object of a frame from the device (`\"\"\"{...}crc\"\"\"`), its CRC checked."""
    m = FRAME_RE.fullmatch(raw)
    if m is None:
        raise RpcError(f"not an RPC frame: {_shown(raw)}")
    text, crc = m.group(1), m.group(2)
    if crc is not None and crc.decode().lower() != crc32_hex(text):
        raise RpcError(f"RPC frame with a bad CRC32 (says {crc.decode()}, is "
                       f"{crc32_hex(text)}): {_shown(raw)}")
    try:
        obj = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RpcError(f"RPC frame that is not JSON ({exc}): {_shown(raw)}") from None
    if not isinstance(obj, dict):
        raise RpcError(f"RPC frame that is not a JSON object: {_shown(raw)}")
    return obj


def answer_of(obj: dict[str, Any], method: str) -> Answer:
    """The result of an answer to `method`; RpcError with the device's code and message for an
    `error` object."""
    request_id = obj.get("id")
    if not isinstance(request_id, int):
        raise RpcError(f"RPC answer to {method} without an id: {obj!r}"[:300])
    error = obj.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message", "") if isinstance(error, dict) else str(error)
        raise RpcError(f"{method}: the device answered error {code}: {message}",
                       code if isinstance(code, int) else None)
    if "result" not in obj:
        raise RpcError(f"RPC answer to {method} with neither result nor error: {obj!r}"[:300])
    return Answer(request_id, obj["result"], str(obj.get("src", "")))


def _shown(raw: bytes, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")
