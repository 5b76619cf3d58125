"""Console sync against the real agent on a real pty: answers are matched by tag, so garbage on
the console, a line from before a reset or a dead agent never shifts or fakes a reply."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

from rig.boards.virtual import VirtualBoard
from rig.device.console import BoardDied, Console, ConsoleError


def _write_to_console(port: str, data: bytes) -> None:
    """What another process writing into the board's serial port does."""
    fd = os.open(port, os.O_WRONLY | os.O_NOCTTY)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[:4096]):]
    finally:
        os.close(fd)


def test_garbage_on_the_console_is_noise_not_an_answer(virtual_board: VirtualBoard,
                                                       agent: Console) -> None:
    rnd = random.Random(12)
    garbage = bytes(rnd.getrandbits(8) for _ in range(64 * 1024))
    writer = threading.Thread(target=_write_to_console, args=(virtual_board.port, garbage))
    writer.start()
    answers = []
    for i in range(30):  # commands race the garbage; each must get its own answer
        agent.send(f"config set mqtt.client_id dev-{i}")
        answers.append(agent.send("config get mqtt.client_id").data)
    writer.join()
    assert answers == [[f"mqtt.client_id=dev-{i}"] for i in range(30)]
    agent.send("status")  # still in step after all of it
    deadline = time.monotonic() + 5
    while not agent.noise and time.monotonic() < deadline:
        agent.send("status")
    assert agent.noise, "the agent's answers to the garbage were not seen as noise"
    assert "answered no command of the rig" in agent.noise_summary()
    agent.noise.clear()  # expected here; in any other test noise fails the cell at tear-down


def test_a_command_written_while_the_board_was_off_does_not_reach_the_next_boot(
        virtual_board: VirtualBoard, agent: Console) -> None:
    agent.send("config set mqtt.server 10.9.9.9:1")
    agent.send("config save")
    agent.send("config clear mqtt.server")
    virtual_board.stop()
    # a line on the wire while the agent is down (what a killed cell leaves behind)
    _write_to_console(virtual_board.port, b"config set mqtt.server 192.0.2.1:2\nconfig save\n")
    virtual_board.reset()
    fresh = Console(agent.dut, virtual_board.name, 5.0, health=virtual_board.death)
    fresh.wait_ready(5.0)
    assert fresh.send("config get mqtt.server").data == ["mqtt.server=10.9.9.9:1"]
    fresh.send("config clear")
    fresh.send("config save")


def test_a_killed_agent_is_named_at_once(virtual_board: VirtualBoard, agent: Console) -> None:
    pid = virtual_board.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # hung: the command below gets no answer
    threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
    t0 = time.monotonic()
    with agent.doing("provisioning a test"), pytest.raises(BoardDied) as info:
        agent.send("status", timeout=30)
    assert time.monotonic() - t0 < 3, "the death was seen only after a long wait"
    assert str(info.value).startswith(
        f"board {virtual_board.name}: agent exited (signal 9 (SIGKILL)) while provisioning a test")
    virtual_board.reset()  # the fixture's tear-down expects a live board to stop


def test_a_hung_agent_times_out_naming_the_command(virtual_board: VirtualBoard,
                                                  agent: Console) -> None:
    pid = virtual_board.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(ConsoleError) as info:
            agent.send("status", timeout=0.6)
        assert f"board {virtual_board.name}: no answer for 0.6 s after `status`" in str(info.value)
    finally:
        os.kill(pid, signal.SIGCONT)
