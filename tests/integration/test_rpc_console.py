"""The rig's Mongoose OS RPC framing (rig/device/mos_rpc.py, Console.rpc) against the agent's
(firmware/components/agent/src/rpc.c): two implementations of the same frames and CRC-32 agree,
on a real pty through pytest-embedded, beside the line console."""

from __future__ import annotations

import base64

import pytest

from rig.device.console import Console
from rig.device.mos_rpc import RpcError
from rig.pki import Pki


def test_the_agent_answers_the_rigs_frames_beside_its_console(agent: Console, pki: Pki) -> None:
    agent.rpc_open(timeout=5)
    info = agent.rpc("Sys.GetInfo")
    assert info["app"] == "hil-agent" and info["fw_version"] == agent.firmware["version"]

    # settings the Mongoose OS way: nested names, a certificate by file name after FS.Put
    ca = pki.cert("ca").read_bytes()
    assert agent.rpc("FS.Put", {"filename": "ca.pem",
                                "data": base64.b64encode(ca).decode()}) is None
    assert "ca.pem" in agent.rpc("FS.List")
    psk = pki.psk_hex()
    agent.rpc("Config.Set", {"config": {"mqtt": {"server": "127.0.0.1:8883",
                                                 "ssl_ca_cert": "ca.pem",
                                                 "ssl_psk_key": psk}}})
    assert agent.rpc("Config.Get", {"key": "mqtt.server"}) == "127.0.0.1:8883"
    assert agent.rpc("Config.Get", {"key": "mqtt.ssl_ca_cert"}).startswith("<pem ")
    assert psk not in str(agent.rpc("Config.Get", {"key": "mqtt"}))  # masked, as `config get`
    # the line console goes on between frames, and sees what RPC set
    assert agent.send("config get mqtt.server").data == ["mqtt.server=127.0.0.1:8883"]

    with pytest.raises(RpcError) as info_404:
        agent.rpc("No.Such")
    assert info_404.value.code == 404 and "No handler for No.Such" in str(info_404.value)
    with pytest.raises(RpcError) as info_400:  # every key or none: the good one is not kept
        agent.rpc("Config.Set", {"config": {"mqtt": {"client_id": "kept?",
                                                     "ssl_psk_key": "zz" + psk}}})
    assert info_400.value.code == 400 and "mqtt.ssl_psk_key" in str(info_400.value)
    assert psk not in str(info_400.value)
    assert agent.rpc("Config.Get", {"key": "mqtt.client_id"}) != "kept?"
    # the request's secrets never reach the transcript: it shows the method only
    assert psk not in "\n".join(agent.transcript)
    assert any(line.startswith("> RPC Config.Set") for line in agent.transcript)
