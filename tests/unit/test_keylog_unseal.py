"""unseal(): the agent's sealed key-log lines (firmware/README.md, "TLS key log"), opened with
the cell's key; the console takes them out of its lines and transcript."""

from __future__ import annotations

import hashlib
import hmac

from rig.device.console import KEYLOG_LINE_RE, unseal

KEY = bytes(range(32))
LINE = b"CLIENT_RANDOM " + b"ab" * 32 + b" " + b"cd" * 48


def seal(key: bytes, seq: int, plain: bytes) -> bytes:
    """The agent's construction, written out block by block (a second implementation)."""
    out = bytearray()
    for i in range(0, len(plain), 32):
        block = hmac.new(key, b"hil-keylog" + seq.to_bytes(4, "big") + (i // 32).to_bytes(
            4, "big"), hashlib.sha256).digest()
        out += bytes(p ^ k for p, k in zip(plain[i:i + 32], block, strict=False))
    return bytes(out)


def test_unseal_opens_what_the_agent_sealed() -> None:
    sealed = seal(KEY, 7, LINE)
    assert sealed != LINE and len(sealed) == len(LINE) == 175
    assert unseal(KEY, 7, sealed) == LINE
    assert unseal(KEY, 8, sealed) != LINE  # the counter is part of the keystream
    assert unseal(bytes(32), 7, sealed) != LINE


def test_the_console_knows_a_sealed_line_and_nothing_else() -> None:
    line = f"I (1234) hil: keylog 3 {seal(KEY, 3, LINE).hex()}"
    m = KEYLOG_LINE_RE.match(line)
    assert m is not None and m.group(1) == "3"
    assert KEYLOG_LINE_RE.match("E (1234) hil: keylog 3: sealing failed (-0x5100)") is None
    assert KEYLOG_LINE_RE.match("I (1234) hil: MQTT0 CONNACK 0") is None
