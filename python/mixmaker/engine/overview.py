"""One picture of the running engine, built on demand from its parts and its store: books and our
quotes, pools with members and value, user orders with their balances, moves in flight, fills,
the last audit. The dashboard draws it, the headless progress line summarises it, the metrics and
the run report's samples read it."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from mixmaker.funds import accounts as acc
from mixmaker.money import to_decimal
from mixmaker.users.orders import OrderState

if TYPE_CHECKING:
    from mixmaker.engine.runtime import Engine


@dataclass
class BookLine:
    market: str  # venue account:symbol, e.g. binance:BTC/USDT
    synced: bool
    why: str
    bid: Decimal | None
    ask: Decimal | None
    stats: dict[str, int]

    @property
    def mid(self) -> Decimal | None:
        return (self.bid + self.ask) / 2 if self.bid is not None and self.ask is not None else None


@dataclass
class Quote:
    side: str
    price: Decimal
    remaining: Decimal
    state: str


@dataclass
class PoolLine:
    pool_id: str
    market: str
    base: str
    quote: str
    members: list[str]
    holdings: dict[str, int]  # ledger units
    value: Fraction | None  # in quote ledger units, at the synced mid
    quotes: list[Quote]
    fills: int
    status: str


@dataclass
class OrderLine:
    order_id: str
    state: OrderState
    pool_id: str
    payer: str
    paid: dict[str, int]
    owed: dict[str, int]  # what the order's own claim holds now (outside the pool)
    in_pool: dict[str, Fraction]  # its part of the pool now, when a member


@dataclass
class MoveLine:
    move_id: str
    direction: str
    asset: str
    units: int
    state: str
    age_s: float


@dataclass
class Overview:
    at_ns: int
    phase: str
    books: list[BookLine] = field(default_factory=list)
    pools: list[PoolLine] = field(default_factory=list)
    orders: list[OrderLine] = field(default_factory=list)
    moves: list[MoveLine] = field(default_factory=list)
    order_states: Counter[str] = field(default_factory=Counter)  # exchange orders by state
    fills: int = 0
    audit: dict[str, Any] | None = None
    not_ready: dict[str, str] = field(default_factory=dict)

    def orders_by_state(self) -> Counter[str]:
        return Counter(o.state.value for o in self.orders)


def _decimal(units: int, decimals: int) -> Decimal:
    return to_decimal(units, decimals)


def books(engine: Engine) -> list[BookLine]:
    out = []
    for name, rt in engine.runtimes.items():
        conn = rt.connector
        for symbol, sync in sorted(conn.syncs.items()):
            m = conn.market(symbol)
            book = conn.book(symbol)
            bid = ask = None
            if book is not None:
                b, a = book.best_bid_raw(), book.best_ask_raw()
                bid = _decimal(b[0], m.price_decimals) if b else None
                ask = _decimal(a[0], m.price_decimals) if a else None
            state = str(getattr(sync.state, "name", sync.state))
            out.append(BookLine(f"{name}:{m.unified}", book is not None,
                                "" if book is not None else f"{state.lower()}: {sync.desync_reason or 'waiting for a snapshot'}",
                                bid, ask, dict(sync.stats.as_dict())))
    return out


def pools(engine: Engine) -> list[PoolLine]:
    out = []
    book = engine.pool_book
    for rt in engine.runtimes.values():
        for pid, eng in rt.engines.items():
            spec = engine.catalog.pool_by_id(pid)
            m = rt.connector.market(eng.rules.symbol)
            holdings = book.holdings(pid)
            mid = rt.mid(pid)
            value = None
            if mid is not None:
                value = Fraction(holdings.get(spec.market.quote, 0)) + Fraction(holdings.get(spec.market.base, 0)) * mid
            quotes = [Quote(str(v.side), _decimal(v.price, m.price_decimals), _decimal(v.remaining, m.size_decimals),
                            str(getattr(v.state, "name", v.state))) for v in rt.live_orders(pid)]
            quotes.sort(key=lambda q: (q.side != "sell", -q.price))
            fills = int(eng.executor.stats.get("fills", 0))
            out.append(PoolLine(pid, spec.market.name, spec.market.base, spec.market.quote, book.members(pid), holdings,
                                value, quotes, fills, str(getattr(eng.executor.status, "name", eng.executor.status))))
    return out


def user_orders(engine: Engine) -> list[OrderLine]:
    out = []
    book = engine.pool_book
    assert engine.store is not None
    for o in engine.orders.all():
        owed = engine.ledger.holdings_of(acc.user_order(o.order_id))
        in_pool: dict[str, Fraction] = {}
        if o.state in (OrderState.ACTIVE, OrderState.STOPPING, OrderState.ALLOCATING):
            try:
                in_pool = book.entitlement(o.order_id)
            except Exception:  # noqa: BLE001 - not a member (yet)
                in_pool = {}
        out.append(OrderLine(o.order_id, o.state, o.pool_id, o.payer, engine.orders.paid(engine.store, o.order_id),
                             owed, in_pool))
    return out


def moves(engine: Engine) -> list[MoveLine]:
    store = engine.store
    assert store is not None
    tables = {r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "fund_moves" not in tables:
        return []
    now = time.time_ns()
    rows = store.query("SELECT move_id, direction, asset, units, state, updated_ns FROM fund_moves "
                       "WHERE state IN ('new', 'sent') ORDER BY updated_ns")
    return [MoveLine(r[0], r[1], r[2], r[3], r[4], (now - r[5]) / 1e9) for r in rows]


def exchange_order_states(engine: Engine) -> Counter[str]:
    out: Counter[str] = Counter()
    for rt in engine.runtimes.values():
        orders = rt.tracker.orders
        for cid in orders.ids():
            out[str(getattr(orders.state(cid), "name", orders.state(cid)))] += 1
    return out


def overview(engine: Engine) -> Overview:
    ov = Overview(time.time_ns(), engine.health.phase, not_ready=engine.health.not_ready())
    if engine.store is None or engine.health.phase == "stopped":
        return ov
    ov.books = books(engine)
    ov.pools = pools(engine)
    ov.orders = user_orders(engine)
    ov.moves = moves(engine)
    ov.order_states = exchange_order_states(engine)
    ov.fills = engine.activity.counts["fill"] if engine.activity is not None else 0
    ov.fills = sum(p.fills for p in ov.pools) or ov.fills
    if engine.last_audit is not None:
        ov.audit = engine.last_audit.as_json(engine.ledger)
    return ov
