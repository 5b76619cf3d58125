"""rig/local/ (user_tmp.py, children.py) in this process alone: a secret directory is private
and goes with its lock, and SIGTERM interrupts like Ctrl-C unless it was ignored. (Children,
killed runs and the sweep of what they left: tests/integration/test_procs.py.)"""

from __future__ import annotations

import os
import signal

import pytest

from rig.local.children import deferred_interrupts, interrupt_on_termination
from rig.local.user_tmp import (
    remove_secret_dir,
    secret_dir,
    sweep_private_dirs,
    user_tmp,
)


def test_a_secret_dir_is_private_and_removed_with_its_lock() -> None:
    path = secret_dir("unit")
    try:
        assert path.parent == user_tmp() and path.name.startswith(f"{os.getpid()}-unit-")
        assert path.stat().st_mode & 0o777 == 0o700
        assert path not in sweep_private_dirs()  # ours, alive
    finally:
        remove_secret_dir(path)
    assert not path.exists()


def test_termination_signals_interrupt_but_an_ignored_one_stays_ignored() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
        interrupt_on_termination()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        try:
            handler(signal.SIGTERM, None)
        except KeyboardInterrupt as exc:
            assert "SIGTERM" in str(exc)
        else:
            raise AssertionError("SIGTERM did not interrupt")
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_a_termination_inside_a_deferred_block_is_raised_at_its_end() -> None:
    """A SIGTERM that lands between making a private dir and recording it for removal would
    leave the dir behind after the interrupted run: it waits for the block's end."""
    before = signal.getsignal(signal.SIGTERM)
    interrupt_on_termination()
    done = []
    try:
        with pytest.raises(KeyboardInterrupt, match="signal SIGTERM"), deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("the rest of the block ran")
        assert done == ["the rest of the block ran"]
        with pytest.raises(KeyboardInterrupt, match="signal SIGTERM"):  # outside: at once
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs at the next bytecode boundaries
                pass
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_ctrl_c_inside_a_deferred_block_is_raised_at_its_end() -> None:
    """The same for Ctrl-C (SIGINT, Python's own KeyboardInterrupt): it waits for the block's
    end, and Python's handler is back after it."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    done = []
    with pytest.raises(KeyboardInterrupt, match="signal SIGINT"), deferred_interrupts():
        with deferred_interrupts():  # nested: the outer block's end raises
            os.kill(os.getpid(), signal.SIGINT)
            done.append("inner")
        done.append("outer")
    assert done == ["inner", "outer"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):  # outside: at once, as before
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass
