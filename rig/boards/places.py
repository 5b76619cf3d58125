"""Holding labgrid places for a run (rig/boards/farm.py talks to the coordinator): every place
the rig uses comes to it through a reservation of its own, so what it holds is provably its own.

    holding = Holding(client, board, state_dir())
    held = holding.hold(timeout)   # reserve (name=<place>, or the board's tags), wait, acquire
    holding.release()              # release what it acquired, cancel the reservation
    release_leftovers(client, state_dir())   # what a dead run of this runner left

Why a reservation even for a place named in hil.toml: labgrid's coordinator allocates a place
to a reservation only when nobody has acquired it and no other reservation holds it, and it
serves reservations by priority and age. So the rig never sends an acquire for a place someone
holds, queues fairly behind other jobs (and other runs of this runner), and a place acquired by
hand, even under this runner's own labgrid identity (host/user, which the coordinator cannot
tell apart from the rig's), is never allocated to the rig, so never acquired nor released by it.

The rig's record of a reservation (a *claim*) is a JSON file in this user's labgrid state
directory, written as soon as the coordinator gives the token (before waiting on it) and
locked (flock) by the process for as long as it holds it: the token, the place (once
allocated) and the state of the rig's acquire: "none" (not sent), "sent" (no answer read: cut
short by a signal) or "done". A claim whose lock no live process holds is a dead run's: the
next start (and `hil run` itself, once its pytest child has died) releases its place only when
the place is still acquired by this identity *and* still allocated to the claim's reservation
*and* the claim's acquire was done or sent, then cancels the reservation. A kill -9 between the
coordinator making a reservation and the claim being written leaves a reservation nobody
polls: the coordinator expires it by itself (about a minute).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rig.boards.farm import (
    CALL_TIMEOUT,
    INTERRUPT_GRACE_S,
    CallInterrupted,
    CallTimeout,
    FarmError,
    HeldPlace,
    LabgridClient,
    PlaceBusy,
    owner,
    reserved_token,
    resolve,
)
from rig.config import Board
from rig.local.cache import cache_dir
from rig.local.locks import BoardBusy, board_lock, private_dir

CLAIM_SUFFIX = ".claim"
RETRY_S = 1.0  # between two acquires of a place whose resource labgrid still holds


def state_dir() -> Path:
    """Where this user's rig processes keep their claims: a private directory that survives a
    reboot (<cache>/labgrid, the cache being rig/local/cache.py's: $HIL_CACHE_DIR, else
    $XDG_CACHE_HOME/hil-rig, else ~/.cache/hil-rig, as for the esp board's mbedTLS source), so
    a place a killed run left acquired is still known after the runner restarts."""
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    return private_dir(base / "labgrid", "labgrid state directory",
                       "release places this runner holds")


def _prefix(coordinator: str) -> str:
    return "labgrid-" + re.sub(r"[^A-Za-z0-9._-]", "_", coordinator) + "-"


class Claim:
    """The rig's record of one reservation (`make`: a new one, locked by this process)."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self._lock = contextlib.ExitStack()

    @classmethod
    def make(cls, lock_dir: Path, coordinator: str, token: str, board: str) -> Claim:
        name = _prefix(coordinator) + re.sub(r"[^A-Za-z0-9_-]", "_", token)
        claim = cls(lock_dir / f"{name}{CLAIM_SUFFIX}", {
            "token": token, "coordinator": coordinator, "board": board, "place": "",
            "acquire": "none", "pid": os.getpid(), "owner": owner(),
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        claim._lock.enter_context(board_lock(lock_dir, name,
                                             what=f"labgrid reservation {token}"))
        claim.write()
        return claim

    @property
    def token(self) -> str:
        return str(self.data["token"])

    @property
    def place(self) -> str:
        return str(self.data["place"])

    @property
    def acquire(self) -> str:
        return str(self.data["acquire"])

    def update(self, **changes: str) -> None:
        self.data.update(changes)
        self.write()

    def write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data) + "\n")
        tmp.replace(self.path)

    def drop(self, keep_file: bool = False) -> None:
        """Give up the lock; the file goes unless `keep_file` (left for the next sweep)."""
        if not keep_file:
            self.path.unlink(missing_ok=True)
            # the lock file goes too, while still held (a sweep that opened it meanwhile
            # finds no claim file under the lock and leaves it)
            self.path.with_suffix(".lock").unlink(missing_ok=True)
        self._lock.close()


def _gone(exc: FarmError) -> bool:
    """A cancel that failed because the reservation no longer exists (expired: fine)."""
    return "does not exist" in str(exc)


class Holding:
    """One board's place while the rig holds it: its claim, reservation and acquisition."""

    def __init__(self, client: LabgridClient, board: Board, lock_dir: Path) -> None:
        self.client = client
        self.board = board
        self.lock_dir = lock_dir
        self.claim: Claim | None = None
        self.notes: list[str] = []  # what happened on the way (a wait)
        self._refused: FarmError = FarmError("")  # the last refused acquire

    @property
    def place(self) -> str:
        return self.claim.place if self.claim is not None and self.claim.place else (
            self.board.place)

    def hold(self, timeout: float) -> HeldPlace:
        """Reserve, wait up to `timeout` s for the allocation, acquire. FarmError (PlaceBusy
        naming the holder) when the place cannot be had; CallInterrupted on Ctrl-C/SIGTERM.
        On any failure what was reserved or acquired is given back at once."""
        try:
            return self._hold(timeout)
        except BaseException as exc:
            # after Ctrl-C/SIGTERM the clean-up must be quick too (a coordinator that does not
            # answer is often why the user stopped the run)
            quick = INTERRUPT_GRACE_S if isinstance(exc, KeyboardInterrupt) else CALL_TIMEOUT
            where = self.place or f"with tags {_tags(self.board)}"
            self.notes += [f"place {where}: {problem} (the next run gives it back)"
                           for problem in self.release(quick)]
            raise

    def _reserve(self) -> Claim:
        filters = {"name": self.board.place} if self.board.place else dict(self.board.tags)
        token = ""
        try:
            token = self.client.reserve(filters)
            self.claim = Claim.make(self.lock_dir, self.client.coordinator, token,
                                    self.board.name)
        except CallInterrupted as exc:  # made anyway? record it, so that it is cancelled
            token = token or (reserved_token(exc.completed.stdout)
                              if exc.completed is not None else "")
            if token and self.claim is None:
                self.claim = Claim.make(self.lock_dir, self.client.coordinator, token,
                                        self.board.name)
            raise
        except BaseException:  # made but not recorded (a disk error, a signal): cancel it now
            if token and self.claim is None:
                with contextlib.suppress(FarmError, KeyboardInterrupt):
                    self.client.cancel(token, timeout=INTERRUPT_GRACE_S)
            raise
        return self.claim

    def _hold(self, timeout: float) -> HeldPlace:
        if self.board.place:
            matched = self.client.show(self.board.place).name  # labgrid matches substrings
            if matched != self.board.place:
                raise FarmError(f"the coordinator has no place named {self.board.place} "
                                f"(labgrid-client matched {matched})")
        claim = self._reserve()
        t0 = time.monotonic()
        try:
            self.client.wait(claim.token, timeout)
        except CallTimeout as exc:  # not allocated in time: someone holds it
            raise PlaceBusy(self._busy(timeout, exc)) from None
        if time.monotonic() - t0 > 2.0:
            self.notes.append(f"waited {time.monotonic() - t0:.0f} s for place "
                              f"{self.board.place or 'with tags ' + _tags(self.board)}")
        place = self.board.place or self.client.show("+" + claim.token).name
        claim.update(place=place)
        while not self._acquire(claim, place):
            if time.monotonic() + RETRY_S > t0 + timeout:
                raise PlaceBusy(self._busy(timeout, self._refused))
            time.sleep(RETRY_S)  # labgrid frees such a resource by itself (see _acquire)
            # a poll keeps the reservation alive (the coordinator expires one nobody polls
            # within a minute): only a place still allocated to it is acquired
            self.client.wait(claim.token, CALL_TIMEOUT)
        return resolve(self.client, place, self.board.name, claim.token)

    def _acquire(self, claim: Claim, place: str) -> bool:
        """One acquire of the place allocated to the claim's reservation: True when done,
        False when it is held. No acquire is sent for a place someone holds (a person who
        acquired it by hand just now, under this identity: the rig's acquire would be refused,
        and a claim saying "sent" then would make it look like the rig's). A refusal for a
        resource is labgrid's own leftover of an acquire cut short (a killed client: the
        coordinator marked the resource acquired but not the place), which its coordinator
        releases by itself within about 15 s."""
        info = self.client.show(place)
        if info.reservation != claim.token:
            raise FarmError(f"place {place}: the rig's reservation {claim.token} no longer "
                            f"holds it (the coordinator expired or cancelled it)")
        if info.acquired:
            self._refused = PlaceBusy(f"place {place} is acquired by {info.acquired}")
            return False
        claim.update(acquire="sent")
        try:
            self.client.acquire(place)
        except CallInterrupted as exc:
            if exc.completed is not None:
                claim.update(acquire="done" if exc.completed.returncode == 0 else "none")
            raise
        except PlaceBusy as exc:
            claim.update(acquire="none")  # refused: the coordinator did nothing
            self._refused = exc
            return False
        except CallTimeout:
            raise  # no answer: the coordinator may have done it ("sent" stays)
        except FarmError:
            claim.update(acquire="none")
            raise
        claim.update(acquire="done")
        return True

    def _busy(self, timeout: float, exc: FarmError) -> str:
        """Why the place could not be had in time: who holds it."""
        waited = f"waited {timeout:g} s (hil.toml [labgrid] acquire_timeout)"
        place = self.place
        if not place:
            return f"no place with tags {_tags(self.board)} was free; {waited}"
        try:
            info = self.client.show(place)
        except FarmError:
            return f"place {place} was not free; {waited} ({exc})"
        if info.acquired:
            return (f"place {place} is acquired by {info.acquired}; {waited}"
                    f"{_own_hint(self.client, place, info.acquired)}")
        mine = self.claim is not None and info.reservation == self.claim.token
        if mine or not info.reservation:  # ours, refused anyway: a resource held elsewhere
            return f"place {place}: {exc}; {waited}"
        return (f"place {place} is reserved by another job (reservation "
                f"{info.reservation}); {waited}")

    def release(self, timeout: float = CALL_TIMEOUT) -> list[str]:
        """Release the place if the rig acquired it and cancel the reservation, each call
        within `timeout` s; returns what failed (the claim then stays for the next run's
        sweep). Raises only CallInterrupted, on a second interrupt during it."""
        claim, self.claim = self.claim, None
        if claim is None:
            return []
        settled = False
        try:
            _, problems = _give_back(self.client, claim, own_run=True, timeout=timeout)
            settled = not problems
        finally:  # unsettled (a failure, a second interrupt): the next run's sweep settles it
            claim.drop(keep_file=not settled)
        return problems


def _tags(board: Board) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(board.tags.items()))


def _own_hint(client: LabgridClient, place: str, holder: str) -> str:
    """When the holder is this runner's own identity: an acquire by hand, never the rig's."""
    if holder != owner():
        return ""
    return (f"; that is this runner's own labgrid identity, acquired by hand (the rig acquires "
            f"only through its own reservations, and never releases what it did not "
            f"acquire): release it with `labgrid-client -x {client.coordinator} -p {place} "
            f"release` when you are done with it")


def _ours(client: LabgridClient, claim: Claim, own_run: bool, timeout: float) -> bool:
    """Whether the claim's place is acquired by the rig's own acquire: done by this live run;
    otherwise (a dead run's, or an acquire cut short) the place must still be acquired by
    the identity that made the claim and allocated to the claim's reservation."""
    if not claim.place or claim.acquire == "none":
        return False
    if own_run and claim.acquire == "done":
        return True
    try:
        info = client.show(claim.place, timeout=timeout)
    except FarmError:
        return False  # the place is gone: nothing to release
    by = str(claim.data.get("owner") or owner())
    return info.acquired == by and info.reservation == claim.token


def _give_back(client: LabgridClient, claim: Claim, own_run: bool,
               timeout: float = CALL_TIMEOUT) -> tuple[bool, list[str]]:
    """Release the claim's place when it is the rig's, then cancel its reservation; (whether
    the place was the rig's to release, what failed). A release that failed keeps the
    reservation: while its place is acquired labgrid never expires it, and it is the next
    sweep's proof that the acquisition is the rig's."""
    ours = _ours(client, claim, own_run, timeout)
    if ours:
        try:
            client.release(claim.place, timeout=timeout)
        except FarmError as exc:
            return ours, [str(exc)]
    claim.update(acquire="none")
    try:
        client.cancel(claim.token, timeout=timeout)
    except FarmError as exc:
        if not _gone(exc):
            return ours, [str(exc)]
    return ours, []


def _claim_paths(lock_dir: Path, coordinator: str) -> list[Path]:
    """The claim files made with this coordinator (a live run's or a dead one's)."""
    return sorted(lock_dir.glob(f"{_prefix(coordinator)}*{CLAIM_SUFFIX}"))


def _claims(lock_dir: Path, coordinator: str) -> Iterator[Path]:
    """The claims made with this coordinator (claims are written whole: a file that cannot be
    read proves nothing and goes)."""
    for path in _claim_paths(lock_dir, coordinator):
        if _read_claim(path) is None and path.exists():
            path.unlink(missing_ok=True)
            continue
        yield path


def has_claims(lock_dir: Path, coordinator: str) -> bool:
    """Whether any claim of this coordinator is on record (a live run's or a dead one's)."""
    return bool(_claim_paths(lock_dir, coordinator))


def release_leftovers(client: LabgridClient, lock_dir: Path) -> list[str]:
    """What dead runs of this runner left with this coordinator (claims whose lock no live
    process holds): their places released where the claim proves the rig acquired them,
    their reservations cancelled. Returns what was done, one line each (a failure too)."""
    notes: list[str] = []
    for path in _claims(lock_dir, client.coordinator):
        try:
            with board_lock(lock_dir, path.name.removesuffix(CLAIM_SUFFIX),
                            what="labgrid claim"):
                data = _read_claim(path)  # again, under the lock: a live run may just have
                if data is None or data.get("coordinator", client.coordinator) != (
                        client.coordinator):  # dropped it; or another coordinator's
                    continue
                notes += _settle(client, Claim(path, data))
        except BoardBusy:
            continue  # a live run holds it
    return notes


def _read_claim(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("token") else None


def _settle(client: LabgridClient, claim: Claim) -> list[str]:
    """A dead run's claim, under the caller's lock: given back; what was done, one line."""
    data = claim.data
    place, pid, at = data.get("place") or "?", data.get("pid", "?"), data.get("at", "?")
    try:
        released, problems = _give_back(client, claim, own_run=False)
    except FarmError as exc:
        return [f"could not settle place {place} left by a run that died: {exc}"]
    if problems:
        return [f"could not release place {place} left by a run that died: {problems[0]}"]
    claim.drop()  # its file and its lock file (the caller's lock goes when it closes)
    if released:
        return [f"released place {place}, left acquired by a run that died (pid {pid}, "
                f"reserved {at})"]
    return [f"cancelled reservation {data['token']} left by a run that died (pid {pid})"]
