"""The durable order journal: every order as it was created and every event the state machine
applied to it, in order. The in-memory `OrderSet` is a pure function of this journal, so a
restart rebuilds it exactly by replaying the events.

Each order also keeps when its create was signed (venue clock) and the recvWindow it carried,
so a restart can prove that an order the venue does not know was never placed.

Fills also go to an outbox (`order_fills`), keyed by (venue, symbol, trade id): the key is the
ledger's idempotency key, and `delivered` records that the ledger took it, so a crash between
"recorded" and "delivered" redelivers instead of losing or doubling.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from mixmaker._core import ArgumentError, OrderEvent, OrderSet, Side
from mixmaker.frozen import quick_init
from mixmaker.orders.errors import JournalCorruptError, OrderError
from mixmaker.orders.protocol import FeeAmount
from mixmaker.store import Store
from mixmaker.store.base import Row, Transaction

E = TypeVar("E", OrderEvent, Side)

SCHEMA = [
    """CREATE TABLE orders (
        venue TEXT NOT NULL, client_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
        price INTEGER NOT NULL, quantity INTEGER NOT NULL, lost_after INTEGER NOT NULL,
        created_ns INTEGER NOT NULL, adopted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (venue, client_id))""",
    """CREATE TABLE order_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, venue TEXT NOT NULL, client_id TEXT NOT NULL,
        event TEXT NOT NULL, exchange_id TEXT, trade_id TEXT, price INTEGER NOT NULL DEFAULT 0,
        qty INTEGER NOT NULL DEFAULT 0, fee INTEGER NOT NULL DEFAULT 0, fee_asset TEXT NOT NULL DEFAULT '',
        is_maker INTEGER NOT NULL DEFAULT 0, at_ns INTEGER NOT NULL,
        FOREIGN KEY (venue, client_id) REFERENCES orders (venue, client_id))""",
    "CREATE INDEX order_events_by_order ON order_events (venue, client_id, seq)",
    """CREATE TABLE order_fills (
        venue TEXT NOT NULL, symbol TEXT NOT NULL, trade_id TEXT NOT NULL, client_id TEXT NOT NULL,
        side TEXT NOT NULL, price INTEGER NOT NULL, qty INTEGER NOT NULL, fee INTEGER NOT NULL,
        fee_asset TEXT NOT NULL, is_maker INTEGER NOT NULL, at_ns INTEGER NOT NULL,
        delivered INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (venue, symbol, trade_id))""",
    "CREATE TABLE order_meta (venue TEXT NOT NULL, key TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (venue, key))",
    # When the create was signed (venue clock) and the recvWindow it was signed with: past both,
    # an order the venue does not know was never placed. NULL: unknown (no proof possible).
    "ALTER TABLE orders ADD COLUMN request_ms INTEGER",
    "ALTER TABLE orders ADD COLUMN recv_window_ms INTEGER",
]


@quick_init
@dataclass(frozen=True, slots=True)
class FillEvent:
    """One fill for the ledger. `key` is its idempotency key: (venue, symbol, trade id)."""

    venue: str
    symbol: str
    trade_id: str
    client_id: str
    side: Side
    price: int
    qty: int
    fee: FeeAmount  # 1e-12 of fee_asset
    fee_asset: str
    is_maker: bool

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.venue, self.symbol, self.trade_id)


@quick_init
@dataclass(frozen=True, slots=True)
class JournalEvent:
    """One event as applied to the state machine (the fields `OrderSet.apply` takes)."""

    event: OrderEvent
    exchange_id: str | None = None
    trade_id: str | None = None
    price: int = 0
    qty: int = 0
    fee: FeeAmount = FeeAmount(0)
    fee_asset: str = ""
    is_maker: bool = False


@quick_init
@dataclass(frozen=True, slots=True)
class JournalOrder:
    client_id: str
    symbol: str
    side: Side
    price: int
    quantity: int
    lost_after: int
    created_ns: int
    adopted: bool
    request_ms: int | None = None  # the create's signed timestamp, venue clock
    recv_window_ms: int | None = None  # the recvWindow it was signed with

    @property
    def since_ms(self) -> int:
        """When the order was made, venue clock if known (trade scans start from it)."""
        return self.request_ms if self.request_ms is not None else self.created_ns // 1_000_000


class OrderJournal:
    def __init__(self, store: Store, venue: str) -> None:
        self.store = store
        self.venue = venue
        store.migrate("orders", SCHEMA)

    # ------------------------------------------------------------------ writes (one commit each)
    def record_order(self, o: JournalOrder, nonce: int, events: Sequence[JournalEvent] = ()) -> None:
        """The order, the id generator's position and any first events, in one commit."""
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO orders (venue, client_id, symbol, side, price, quantity, lost_after, created_ns, adopted, "
                "request_ms, recv_window_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.venue, o.client_id, o.symbol, o.side.value, o.price, o.quantity, o.lost_after, o.created_ns, int(o.adopted),
                 o.request_ms, o.recv_window_ms),
            )
            if nonce:
                tx.execute(
                    "INSERT INTO order_meta (venue, key, value) VALUES (?, 'last_nonce', ?) "
                    "ON CONFLICT (venue, key) DO UPDATE SET value = max(value, excluded.value)",
                    (self.venue, nonce),
                )
            for e in events:
                self._insert_event(tx, o.client_id, e)

    def append(self, client_id: str, e: JournalEvent) -> None:
        self.append_many([(client_id, e, None)])

    def append_many(self, rows: Sequence[tuple[str, JournalEvent, FillEvent | None]]) -> None:
        """Events (and the fills among them, into the outbox) in one commit."""
        with self.store.transaction() as tx:
            for client_id, e, fill in rows:
                self._insert_event(tx, client_id, e)
                if fill is not None:
                    tx.execute(
                        "INSERT INTO order_fills (venue, symbol, trade_id, client_id, side, price, qty, fee, fee_asset, "
                        "is_maker, at_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (fill.venue, fill.symbol, fill.trade_id, fill.client_id, fill.side.value, fill.price, fill.qty,
                         fill.fee, fill.fee_asset, int(fill.is_maker), time.time_ns()),
                    )

    def mark_delivered(self, key: tuple[str, str, str]) -> None:
        with self.store.transaction() as tx:
            tx.execute("UPDATE order_fills SET delivered = 1 WHERE venue = ? AND symbol = ? AND trade_id = ?", key)

    def set_trades_scanned(self, symbol: str, ms: int) -> None:
        """Every trade of `symbol` up to `ms` (venue clock) has been fetched and applied."""
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO order_meta (venue, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (venue, key) DO UPDATE SET value = max(value, excluded.value)",
                (self.venue, f"trades_scanned_ms:{symbol}", ms),
            )

    def _insert_event(self, tx: Transaction, client_id: str, e: JournalEvent) -> None:
        tx.execute(
            "INSERT INTO order_events (venue, client_id, event, exchange_id, trade_id, price, qty, fee, fee_asset, "
            "is_maker, at_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.venue, client_id, e.event.value, e.exchange_id, e.trade_id, e.price, e.qty, e.fee, e.fee_asset,
             int(e.is_maker), time.time_ns()),
        )

    # ------------------------------------------------------------------ reads
    def last_nonce(self) -> int:
        rows = self.store.query("SELECT value FROM order_meta WHERE venue = ? AND key = 'last_nonce'", (self.venue,))
        return rows[0][0] if rows else 0

    def trades_scanned(self, symbol: str) -> int | None:
        rows = self.store.query(
            "SELECT value FROM order_meta WHERE venue = ? AND key = ?", (self.venue, f"trades_scanned_ms:{symbol}")
        )
        return rows[0][0] if rows else None

    def orders(self) -> Iterator[tuple[JournalOrder, list[JournalEvent]]]:
        events: dict[str, list[JournalEvent]] = {}
        for cid, *fields in self.store.query(
            "SELECT client_id, event, exchange_id, trade_id, price, qty, fee, fee_asset, is_maker "
            "FROM order_events WHERE venue = ? ORDER BY seq",
            (self.venue,),
        ):
            ev, eid, tid, px, q, fee, asset, maker = fields
            events.setdefault(cid, []).append(JournalEvent(self._named(OrderEvent, ev, cid), eid, tid, px, q, FeeAmount(fee),
                                                           asset, bool(maker)))
        for row in self.store.query(
            "SELECT client_id, symbol, side, price, quantity, lost_after, created_ns, adopted, request_ms, recv_window_ms "
            "FROM orders WHERE venue = ? ORDER BY created_ns, client_id",
            (self.venue,),
        ):
            cid, symbol, side, price, qty, lost_after, created_ns, adopted, request_ms, window = row
            o = JournalOrder(cid, symbol, self._named(Side, side, cid), price, qty, lost_after, created_ns, bool(adopted),
                             request_ms, window)
            yield o, events.get(o.client_id, [])

    def _named(self, kind: type[E], value: str, client_id: str) -> E:
        """A stored event or side name as its enum; a name the core does not know is corruption."""
        try:
            return kind.from_value(value)
        except ArgumentError as e:
            raise JournalCorruptError(f"journal of {self.venue} order {client_id}: {e}") from e

    def rebuild(self, factory: Callable[[], OrderSet] = OrderSet) -> tuple[OrderSet, dict[str, JournalOrder]]:
        """Replays the journal into a fresh OrderSet (`factory` lets a benchmark swap in a peer)."""
        orders = factory()
        meta: dict[str, JournalOrder] = {}
        for o, events in self.orders():
            orders.add(o.client_id, o.symbol, o.side, o.price, o.quantity, o.lost_after)
            meta[o.client_id] = o
            for e in events:
                try:
                    out = orders.apply(o.client_id, e.event, e.exchange_id, e.trade_id, e.price, e.qty, e.fee,
                                       e.fee_asset, e.is_maker)
                except OrderError as err:
                    raise JournalCorruptError(f"journal of {self.venue} order {o.client_id} does not replay: {err}") from err
                if not out.applied:
                    raise JournalCorruptError(
                        f"journal of {self.venue} order {o.client_id} holds an event that changes nothing: {e}")
        return orders, meta

    def undelivered_fills(self) -> list[FillEvent]:
        rows = self.store.query(
            "SELECT venue, symbol, trade_id, client_id, side, price, qty, fee, fee_asset, is_maker FROM order_fills "
            "WHERE venue = ? AND delivered = 0 ORDER BY at_ns, trade_id",
            (self.venue,),
        )
        return [_fill(r) for r in rows]

    def fills(self) -> list[FillEvent]:
        rows = self.store.query(
            "SELECT venue, symbol, trade_id, client_id, side, price, qty, fee, fee_asset, is_maker FROM order_fills "
            "WHERE venue = ? ORDER BY at_ns, trade_id",
            (self.venue,),
        )
        return [_fill(r) for r in rows]


def _fill(r: Row) -> FillEvent:
    """A `SELECT venue, symbol, trade_id, client_id, side, price, qty, fee, fee_asset, is_maker` row."""
    return FillEvent(r[0], r[1], r[2], r[3], Side.from_value(r[4]), r[5], r[6], FeeAmount(r[7]), r[8], bool(r[9]))
