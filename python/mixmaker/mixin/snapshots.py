"""Reading every snapshot exactly once: an ascending, inclusive `created_at` cursor kept in
integer nanoseconds, a unique key on `snapshot_id`, and the caller's effect written in the same
store transaction that records the snapshot and advances the cursor."""

from __future__ import annotations

from typing import Callable

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
]

Handler = Callable[[Transaction, Snapshot], None]


class CursorStuckError(MixinError):
    """A whole page shares the cursor's timestamp, so the inclusive cursor cannot move past it."""


class SnapshotReader:
    def __init__(self, client: MixinClient, store: Store, *, name: str = "bot", start_ns: int = 0,
                 asset: str | None = None, page_limit: int = PAGE_LIMIT) -> None:
        self.client, self.store, self.name, self.asset = client, store, name, asset
        self.page_limit = page_limit
        store.migrate("mixin_snapshots", MIGRATIONS)
        with store.transaction() as tx:
            tx.execute("INSERT INTO mixin_snapshot_cursors (name, offset_ns) VALUES (?, ?) ON CONFLICT DO NOTHING",
                       (name, start_ns))

    @property
    def cursor_ns(self) -> int:
        return self.store.query("SELECT offset_ns FROM mixin_snapshot_cursors WHERE name = ?", (self.name,))[0][0]

    async def poll(self, handle: Handler) -> int:
        """Reads all pages available now. `handle(tx, snapshot)` runs once per snapshot, inside
        the transaction that records it; if it raises, nothing of that page is kept. Returns how
        many new snapshots were handled."""
        handled = 0
        while True:
            cursor = self.cursor_ns
            page = await self.client.snapshots(offset_ns=cursor, limit=self.page_limit, order="ASC", asset=self.asset)
            if not page:
                return handled
            newest = max(s.created_at_ns for s in page)
            with self.store.transaction() as tx:
                for s in page:
                    fresh = tx.execute(
                        "INSERT INTO mixin_snapshots_seen (name, snapshot_id, created_at_ns) VALUES (?, ?, ?) "
                        "ON CONFLICT DO NOTHING", (self.name, s.snapshot_id, s.created_at_ns))
                    if fresh:
                        handle(tx, s)
                        handled += 1
                tx.execute("UPDATE mixin_snapshot_cursors SET offset_ns = ? WHERE name = ?", (max(cursor, newest), self.name))
            if len(page) < self.page_limit:
                return handled
            if newest <= cursor:
                raise CursorStuckError(
                    f"{len(page)} snapshots all at {format_rfc3339_ns(cursor)}: the cursor cannot advance; "
                    "read this instant per asset or with a smaller window"
                )
