"""Leases: one holder at a time for a named resource, across every process that shares the store.

A lease is a row (name, owner, fence, expiry). It is taken with one conditional upsert, so two
processes racing for it cannot both win (SQLite serializes writers; PostgreSQL locks the
conflicting row), renewed while its holder works, and released when done. A holder that dies
(SIGKILL, power cut) stops renewing; once the expiry passes, the next taker gets it with a higher
`fence`. Nothing outside the store can be fenced, so work done under a lease must still be safe
to repeat: the lease makes overlap rare and lets a holder write "this is settled" facts only
while it provably holds it (`Held.holds(tx)` inside the same store transaction).

Expiry is wall-clock nanoseconds (`time.time_ns()` of each process): hosts sharing a PostgreSQL
store need synchronized clocks, with a skew far below the TTL.

    leases = Leases(store, owner="payer-1", ttl_s=30)
    async with leases.hold("mixin-payments:<asset>") as held:
        held.check()           # raises LeaseLostError if it was lost
        ...

The SQL is what SQLite (3.24+) and PostgreSQL both run unchanged (`?` placeholders as the store
interface defines them).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mixmaker.store.base import Store, StoreError, Transaction

MIGRATIONS = [
    """CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        fence BIGINT NOT NULL,
        acquired_at_ns BIGINT NOT NULL,
        expires_at_ns BIGINT NOT NULL
    )""",
]


class LeaseError(StoreError):
    """A lease could not be taken or was lost."""


class LeaseBusyError(LeaseError):
    """Another holder kept the lease for longer than we were willing to wait. Try again later."""

    def __init__(self, name: str, holder: str, waited_s: float) -> None:
        self.name, self.holder = name, holder
        super().__init__(f"lease {name!r} is held by {holder!r}; gave up after {waited_s:.1f}s")


class LeaseLostError(LeaseError):
    """The lease expired and may have been taken by another holder: stop working under it."""

    def __init__(self, name: str, owner: str) -> None:
        self.name, self.owner = name, owner
        super().__init__(f"lease {name!r} of {owner!r} was lost (expired or taken over)")


@dataclass(frozen=True)
class Lease:
    name: str
    owner: str
    fence: int  # grows by one with every new holder: tells holders apart across takeovers
    expires_at_ns: int


def default_owner() -> str:
    """host:pid:random, so the row says which process holds it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leases:
    """Takes, renews and releases leases for one process (`owner`). Each `hold()` is its own
    holder (owner#n), so two tasks of one process exclude each other too."""

    def __init__(self, store: Store, *, owner: str | None = None, ttl_s: float = 30.0,
                 clock: Callable[[], int] = time.time_ns) -> None:
        if ttl_s <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl_s}")
        self.store = store
        self.owner = owner or default_owner()
        self.ttl_ns = int(ttl_s * 1_000_000_000)
        self.clock = clock
        self._n = 0
        self._local: dict[tuple[int, str], asyncio.Lock] = {}  # (event loop, name)
        store.migrate("leases", MIGRATIONS)

    # --- one-shot operations, each one store transaction ------------------------------------

    def try_acquire(self, name: str, owner: str | None = None) -> Lease | None:
        """Takes the lease if it is free or expired; None if someone else holds it."""
        owner = owner or self._next_owner()
        now = self.clock()
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO leases (name, owner, fence, acquired_at_ns, expires_at_ns) VALUES (?, ?, 1, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, fence = leases.fence + 1, "
                "acquired_at_ns = excluded.acquired_at_ns, expires_at_ns = excluded.expires_at_ns "
                "WHERE leases.expires_at_ns <= excluded.acquired_at_ns",
                (name, owner, now, now + self.ttl_ns),
            )
            rows = tx.query("SELECT owner, fence, expires_at_ns FROM leases WHERE name = ?", (name,))
        got_owner, fence, expires = rows[0]
        return Lease(name, owner, fence, expires) if got_owner == owner else None

    def holder(self, name: str) -> tuple[str, int] | None:
        """(owner, expires_at_ns) of an unexpired lease, else None."""
        rows = self.store.query("SELECT owner, expires_at_ns FROM leases WHERE name = ? AND expires_at_ns > ?",
                                (name, self.clock()))
        return (rows[0][0], rows[0][1]) if rows else None

    def renew(self, lease: Lease) -> Lease | None:
        """Pushes the expiry out; None if the lease is no longer ours (taken over)."""
        expires = self.clock() + self.ttl_ns
        with self.store.transaction() as tx:
            n = tx.execute("UPDATE leases SET expires_at_ns = ? WHERE name = ? AND owner = ? AND fence = ?",
                           (expires, lease.name, lease.owner, lease.fence))
        return Lease(lease.name, lease.owner, lease.fence, expires) if n == 1 else None

    def release(self, lease: Lease) -> None:
        """Frees it now (keeps the row, so fences keep growing). Releasing a lost lease is a no-op."""
        with self.store.transaction() as tx:
            tx.execute("UPDATE leases SET expires_at_ns = 0 WHERE name = ? AND owner = ? AND fence = ?",
                       (lease.name, lease.owner, lease.fence))

    def holds(self, tx: Transaction, lease: Lease) -> bool:
        """Inside the caller's transaction: is this lease still ours and unexpired?"""
        return bool(tx.query("SELECT 1 FROM leases WHERE name = ? AND owner = ? AND fence = ? AND expires_at_ns > ?",
                             (lease.name, lease.owner, lease.fence, self.clock())))

    # --- holding while working --------------------------------------------------------------

    @asynccontextmanager
    async def hold(self, *names: str, wait_s: float | None = None, poll_s: float | None = None) -> AsyncIterator[Held]:
        """Holds every lease in `names` (taken in sorted order, so two holders of overlapping sets
        cannot deadlock) and renews them in the background until the block exits. Waits up to
        `wait_s` (None: for ever) for each; LeaseBusyError after that."""
        names = tuple(sorted(set(names)))
        poll = poll_s if poll_s is not None else min(0.2, self.ttl_ns / 1e9 / 10)
        owner = self._next_owner()
        loop = id(asyncio.get_running_loop())
        locks = [self._local.setdefault((loop, n), asyncio.Lock()) for n in names]
        taken: list[asyncio.Lock] = []
        held = Held(self, [])
        try:
            for name, lock in zip(names, locks, strict=True):
                # Tasks of this process queue here instead of polling the store.
                await lock.acquire()
                taken.append(lock)
                held.leases.append(await self._wait_for(name, owner, wait_s, poll))
            held.start()
            yield held
        finally:
            await held.stop()
            for lease in held.leases:
                try:
                    self.release(lease)
                except StoreError:
                    pass  # it expires on its own
            for lock in reversed(taken):
                lock.release()

    async def _wait_for(self, name: str, owner: str, wait_s: float | None, poll_s: float) -> Lease:
        start = time.monotonic()
        while True:
            lease = self.try_acquire(name, owner)
            if lease is not None:
                return lease
            waited = time.monotonic() - start
            if wait_s is not None and waited >= wait_s:
                h = self.holder(name)
                raise LeaseBusyError(name, h[0] if h else "?", waited)
            await asyncio.sleep(poll_s * (0.5 + random.random()))

    def _next_owner(self) -> str:
        self._n += 1
        return f"{self.owner}#{self._n}"


class Held:
    """Leases held by one `hold()` block; a background task renews them every third of the TTL."""

    def __init__(self, leases: Leases, held: list[Lease]) -> None:
        self._leases = leases
        self.leases = held
        self.lost: Lease | None = None
        self._task: asyncio.Task[None] | None = None

    def check(self) -> None:
        """Raises LeaseLostError if a renewal found the lease gone or it is past its expiry."""
        now = self._leases.clock()
        for lease in self.leases:
            if self.lost is not None or lease.expires_at_ns <= now:
                raise LeaseLostError(lease.name, lease.owner)

    def holds(self, tx: Transaction) -> bool:
        """Inside the caller's store transaction: all of them still ours (fencing a write)."""
        return self.lost is None and all(self._leases.holds(tx, lease) for lease in self.leases)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._keep())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _keep(self) -> None:
        every = self._leases.ttl_ns / 1e9 / 3
        while self.lost is None:
            await asyncio.sleep(every)
            for i, lease in enumerate(self.leases):
                try:
                    renewed = self._leases.renew(lease)
                except StoreError:
                    continue  # the store is busy: try again next time; `check` sees the expiry
                if renewed is None:
                    self.lost = lease
                    return
                self.leases[i] = renewed
