"""rig/device/mos_rpc.py: Mongoose OS RPC frames as the `mos` tool writes and reads them over a
UART (CRC32 as 8 lower-case hex digits after the JSON; the device's answer checked)."""

from __future__ import annotations

import json
import zlib

import pytest

from rig.device.mos_rpc import OPEN, OPENED, RpcError, answer_of, parse_frame, request_frame


def device_frame(obj: dict[str, object], crc: str | None = None) -> bytes:
    text = json.dumps(obj).encode()
    tail = crc if crc is not None else f"{zlib.crc32(text):08x}"
    return b'"""' + text + tail.encode() + b'"""'


def test_a_request_is_json_and_its_crc_between_delimiters() -> None:
    frame = request_frame(7, "Config.Set", {"config": {"mqtt": {"server": "h:1"}}})
    assert frame.startswith(b'"""{') and frame.endswith(b'"""')
    text, crc = frame[3:-11], frame[-11:-3]
    assert json.loads(text) == {"id": 7, "method": "Config.Set",
                                "params": {"config": {"mqtt": {"server": "h:1"}}}}
    assert crc == f"{zlib.crc32(text):08x}".encode()
    plain = b'{"id":1,"method":"Sys.GetInfo"}'
    assert request_frame(1, "Sys.GetInfo") == \
        b'"""' + plain + f"{zlib.crc32(plain):08x}".encode() + b'"""'
    assert (OPEN, OPENED) == (b'\x04"""', b'"""\x04"""')


def test_an_answer_gives_its_result_or_the_devices_error() -> None:
    ok = parse_frame(device_frame({"id": 3, "src": "hil-device-01", "result": {"fw": "1.0"}}))
    answer = answer_of(ok, "Sys.GetInfo")
    assert (answer.id, answer.src, answer.result) == (3, "hil-device-01", {"fw": "1.0"})
    bad = parse_frame(device_frame({"id": 4, "error": {"code": 404,
                                                       "message": "No handler for X.Y"}}))
    with pytest.raises(RpcError, match=r"X\.Y: the device answered error 404: No handler") as info:
        answer_of(bad, "X.Y")
    assert info.value.code == 404
    with pytest.raises(RpcError, match="without an id"):
        answer_of({"result": 1}, "Sys.GetInfo")
    with pytest.raises(RpcError, match="neither result nor error"):
        answer_of({"id": 1}, "Sys.GetInfo")


@pytest.mark.parametrize("raw, says", [
    (device_frame({"id": 1, "result": True}, crc="00000000"), "bad CRC32 (says 00000000"),
    (b'"""{"id": 1, "result": tru}"""', "not JSON"),
    (b'"""[1, 2]"""', "not an RPC frame"),
    (b'{"id": 1}', "not an RPC frame"),
])
def test_a_frame_that_is_not_one_is_named(raw: bytes, says: str) -> None:
    with pytest.raises(RpcError, match=says.replace("(", r"\(")):
        parse_frame(raw)


def test_a_frame_without_a_crc_is_read() -> None:  # the device checks one when present only
    assert parse_frame(b'"""{"id": 2, "result": null}"""') == {"id": 2, "result": None}
