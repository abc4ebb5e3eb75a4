"""Reading every snapshot exactly once, without trusting the server's paging.

An ascending `created_at` cursor kept in integer nanoseconds, a unique key on `snapshot_id`, and
the caller's effect written in the same store transaction that records the snapshot and advances
the cursor.

The server is not taken at its word. Every page is checked before anything of it is kept: it
must be ascending by `created_at`, hold nothing older than the requested offset, and hold every
snapshot we already have inside its span (a server ignoring `order` or `offset`, or skipping,
fails one of these). A bad page is dropped whole, intake halts (`reader.halted`, a logged
structured error, `SnapshotPageError`) and stays halted until `resume()`.

Each poll starts `overlap` behind the cursor, and each next page 1 ns before the last one's
newest snapshot; what comes back twice is dropped by id. So a server whose `offset` is
exclusive, or that truncates it, loses nothing at a page boundary, and a snapshot that becomes
visible a little late is still read. The overlap must cover 1 ns (an exclusive offset), the
offset precision a server may cut to, and how late a snapshot can appear behind newer ones.

Seen ids are kept for `rescan window + margin` behind the cursor and pruned in the page's own
transaction, so the table stays bounded. A periodic re-scan from `cursor - rescan window` is the
safety net: when all is well it finds nothing; what it finds is delivered and counted
(`stats.rescan_found`). A snapshot that appears later than the re-scan window cannot be caught.

One reader `name` is one stream (one filter); two processes polling one name cannot deliver a
snapshot twice (the unique key), but one consumer per name is the intended use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from mixmaker.mixin.client import PAGE_LIMIT, MixinClient
from mixmaker.mixin.errors import MixinError
from mixmaker.mixin.models import Snapshot
from mixmaker.mixin.times import format_rfc3339_ns
from mixmaker.store import Store
from mixmaker.store.base import Transaction

MIGRATIONS = [
    "CREATE TABLE mixin_snapshot_cursors (name TEXT PRIMARY KEY, offset_ns INTEGER NOT NULL)",
    "CREATE TABLE mixin_snapshots_seen (name TEXT NOT NULL, snapshot_id TEXT NOT NULL, created_at_ns INTEGER NOT NULL, "
    "PRIMARY KEY (name, snapshot_id))",
    # Where the reader began: nothing older is delivered, even when the overlap reaches behind it.
    "ALTER TABLE mixin_snapshot_cursors ADD COLUMN start_ns BIGINT NOT NULL DEFAULT 0",
    # A reader from before this step never re-reads behind where its cursor stood.
    "UPDATE mixin_snapshot_cursors SET start_ns = offset_ns",
    "CREATE INDEX mixin_snapshots_seen_time ON mixin_snapshots_seen (name, created_at_ns)",
]

Handler = Callable[[Transaction, Snapshot], None]

SECOND_NS = 1_000_000_000
DEFAULT_OVERLAP_NS = 5 * SECOND_NS
DEFAULT_RESCAN_WINDOW_NS = 600 * SECOND_NS
DEFAULT_RETENTION_MARGIN_NS = 60 * SECOND_NS

log = logging.getLogger("mixmaker.mixin.snapshots")


class CursorStuckError(MixinError):
    """A whole page shares one instant, so the inclusive cursor cannot move past it."""


class PageFault(StrEnum):
    DESCENDING = "descending"  # not ascending by created_at (e.g. the server ignored order=ASC)
    BEFORE_OFFSET = "before_offset"  # older than the offset we asked for (e.g. the server ignored offset)
    GAP = "gap"  # a snapshot we hold, inside the page's span, is missing from it
    MALFORMED = "malformed"  # an item that does not parse as a snapshot


@dataclass(frozen=True)
class Halt:
    fault: PageFault
    offset_ns: int  # the offset the bad page was asked for
    detail: str
    at_ns: int  # wall clock when intake halted


class SnapshotPageError(MixinError):
    """The server answered a page that breaks the paging contract: nothing of it was kept and
    intake is halted. `halt` says what was wrong."""

    def __init__(self, name: str, halt: Halt) -> None:
        self.name, self.halt = name, halt
        super().__init__(f"snapshot intake {name!r} halted: {halt.fault.value} page at offset "
                         f"{format_rfc3339_ns(halt.offset_ns)}: {halt.detail}")


class IntakeHaltedError(MixinError):
    """Intake is halted after a bad page; call `resume()` once the server is trusted again."""

    def __init__(self, name: str, halt: Halt) -> None:
        self.name, self.halt = name, halt
        super().__init__(f"snapshot intake {name!r} is halted ({halt.fault.value}: {halt.detail}); resume() it")


@dataclass
class IntakeStats:
    polls: int = 0
    pages: int = 0
    handled: int = 0  # new snapshots delivered to the handler
    repeated: int = 0  # snapshots read again (overlap, page boundaries) and dropped by id
    late: int = 0  # new snapshots a poll found behind the cursor (inside the overlap)
    rescans: int = 0
    rescan_found: int = 0  # snapshots behind the cursor that only a re-scan delivered (should stay 0)


class SnapshotReader:
    def __init__(self, client: MixinClient, store: Store, *, name: str = "bot", start_ns: int = 0,
                 asset: str | None = None, page_limit: int = PAGE_LIMIT, overlap_ns: int = DEFAULT_OVERLAP_NS,
                 rescan_window_ns: int = DEFAULT_RESCAN_WINDOW_NS, rescan_interval_s: float | None = 600.0,
                 retention_margin_ns: int = DEFAULT_RETENTION_MARGIN_NS) -> None:
        if not 1 <= page_limit <= PAGE_LIMIT:
            raise ValueError(f"page_limit must be 1..{PAGE_LIMIT}, got {page_limit}")
        if overlap_ns < 1:
            raise ValueError("overlap_ns must be at least 1 ns, or an exclusive offset loses snapshots")
        if rescan_window_ns < overlap_ns:
            raise ValueError("rescan_window_ns must be at least overlap_ns")
        if retention_margin_ns < 0:
            raise ValueError("retention_margin_ns must be >= 0")
        self.client, self.store, self.name, self.asset = client, store, name, asset
        self.page_limit = page_limit
        self.overlap_ns = overlap_ns
        self.rescan_window_ns = rescan_window_ns
        self.rescan_interval_s = rescan_interval_s
        # Ids are kept this far behind the cursor: every re-read (overlap, re-scan) stays inside it.
        self.retention_ns = rescan_window_ns + retention_margin_ns
        self.halted: Halt | None = None
        self.stats = IntakeStats()
        self._last_rescan: float | None = None  # monotonic; None: re-scan at the first poll
        store.migrate("mixin_snapshots", MIGRATIONS)
        with store.transaction() as tx:
            tx.execute("INSERT INTO mixin_snapshot_cursors (name, offset_ns, start_ns) VALUES (?, ?, ?) "
                       "ON CONFLICT DO NOTHING", (name, start_ns, start_ns))

    @property
    def cursor_ns(self) -> int:
        return int(self.store.query("SELECT offset_ns FROM mixin_snapshot_cursors WHERE name = ?", (self.name,))[0][0])

    @property
    def start_ns(self) -> int:
        return int(self.store.query("SELECT start_ns FROM mixin_snapshot_cursors WHERE name = ?", (self.name,))[0][0])

    def resume(self) -> None:
        """Lifts a halt; the next poll reads from the durable cursor (nothing of a bad page was kept)."""
        if self.halted is not None:
            log.warning("snapshot intake %s resumed after %s", self.name, self.halted.fault.value)
        self.halted = None

    async def poll(self, handle: Handler) -> int:
        """Reads all pages available now. `handle(tx, snapshot)` runs once per snapshot, inside
        the transaction that records it; if it raises, nothing of that page is kept. Returns how
        many new snapshots were handled. Re-scans first when one is due."""
        if self.rescan_interval_s is not None and (
                self._last_rescan is None or time.monotonic() - self._last_rescan >= self.rescan_interval_s):
            before = self.stats.handled
            await self.rescan(handle)
            return self.stats.handled - before
        self.stats.polls += 1
        handled, late = await self._read(handle, self.overlap_ns)
        self.stats.late += late
        return handled

    async def rescan(self, handle: Handler) -> int:
        """Reads again from `cursor - rescan window` (and on to the newest). Returns how many
        snapshots behind the cursor it delivered: 0 when nothing was missed."""
        self._last_rescan = time.monotonic()
        self.stats.rescans += 1
        _, found = await self._read(handle, self.rescan_window_ns)
        if found:
            self.stats.rescan_found += found
            log.warning("snapshot intake %s: re-scan delivered %d snapshots the polls had missed", self.name,
                        found, extra={"event": "snapshot_rescan_found", "reader": self.name, "count": found})
        return found

    # --- reading ---------------------------------------------------------------------------

    async def _read(self, handle: Handler, behind_ns: int) -> tuple[int, int]:
        """Pages from `cursor - behind_ns` to the newest; returns (handled, of those how many
        were at or behind the cursor as it stood when the read began)."""
        if self.halted is not None:
            raise IntakeHaltedError(self.name, self.halted)
        floor, cursor = self.start_ns, self.cursor_ns
        offset = max(floor, cursor - behind_ns)
        handled = behind = 0
        while True:
            try:
                page = await self.client.snapshots(offset_ns=offset, limit=self.page_limit, order="ASC",
                                                   asset=self.asset)
            except (KeyError, ValueError, TypeError, AttributeError) as e:
                self._halt(PageFault.MALFORMED, offset, f"{type(e).__name__}: {e}")
            if not page:
                return handled, behind
            self.stats.pages += 1
            self._validate(page, offset)
            kept = self._keep(page, floor, handle)
            handled += len(kept)
            behind += sum(1 for t in kept if t <= cursor)
            newest = page[-1].created_at_ns
            if len(page) < self.page_limit:
                return handled, behind
            # The next page starts 1 ns before this one's newest: an exclusive offset still
            # returns the snapshots of that instant this page could not hold.
            following = newest - 1
            if following <= offset:
                log.error("snapshot intake %s: %d snapshots at one instant fill a page", self.name, len(page),
                          extra={"event": "snapshot_cursor_stuck", "reader": self.name, "offset_ns": offset})
                raise CursorStuckError(
                    f"{len(page)} snapshots all at {format_rfc3339_ns(newest)}: the cursor cannot advance; "
                    "read this instant per asset or with a smaller window"
                )
            offset = following

    def _validate(self, page: list[Snapshot], offset: int) -> None:
        """Raises (and halts) unless the page is what an ascending read from `offset` must be."""
        times = [s.created_at_ns for s in page]
        for n in range(1, len(times)):
            if times[n] < times[n - 1]:
                self._halt(PageFault.DESCENDING, offset,
                           f"item {n} ({page[n].created_at}) is older than item {n - 1} ({page[n - 1].created_at})")
        if times[0] < offset:
            self._halt(PageFault.BEFORE_OFFSET, offset,
                       f"snapshot {page[0].snapshot_id} at {page[0].created_at} is older than the offset")
        # Every snapshot we hold strictly inside the page's span must be in it (the newest instant
        # may be cut by the page limit; the offset's own instant may be left out by an exclusive offset).
        full = len(page) >= self.page_limit
        upper = "AND created_at_ns < ?" if full else ""
        known = self.store.query(
            f"SELECT snapshot_id, created_at_ns FROM mixin_snapshots_seen WHERE name = ? AND created_at_ns > ? {upper}",
            (self.name, offset, *((times[-1],) if full else ())))
        ids = {s.snapshot_id for s in page}
        missing = [sid for sid, _ in known if sid not in ids]
        if missing:
            self._halt(PageFault.GAP, offset, f"{len(missing)} snapshots we hold in its span are missing "
                                              f"(e.g. {missing[0]})")

    def _keep(self, page: list[Snapshot], floor: int, handle: Handler) -> list[int]:
        """Records the page's new snapshots and their effects, advances the cursor and prunes old
        ids, all in one transaction. Returns the times of the snapshots handled."""
        handled: list[int] = []
        newest = page[-1].created_at_ns
        with self.store.transaction() as tx:
            for s in page:
                if s.created_at_ns < floor:
                    continue  # before where this reader began
                fresh = tx.execute(
                    "INSERT INTO mixin_snapshots_seen (name, snapshot_id, created_at_ns) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING", (self.name, s.snapshot_id, s.created_at_ns))
                if fresh:
                    handle(tx, s)
                    handled.append(s.created_at_ns)
                else:
                    self.stats.repeated += 1
            tx.execute("UPDATE mixin_snapshot_cursors SET offset_ns = ? WHERE name = ? AND offset_ns < ?",
                       (newest, self.name, newest))
            cursor = tx.query("SELECT offset_ns FROM mixin_snapshot_cursors WHERE name = ?", (self.name,))[0][0]
            tx.execute("DELETE FROM mixin_snapshots_seen WHERE name = ? AND created_at_ns < ?",
                       (self.name, cursor - self.retention_ns))
        self.stats.handled += len(handled)
        return handled

    def _halt(self, fault: PageFault, offset: int, detail: str) -> NoReturn:
        self.halted = Halt(fault, offset, detail, time.time_ns())
        err = SnapshotPageError(self.name, self.halted)
        log.error("%s", err, extra={"event": "snapshot_intake_halted", "reader": self.name, "fault": fault.value,
                                    "offset_ns": offset, "detail": detail})
        raise err
