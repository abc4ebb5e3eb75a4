"""One picture of the running engine, built on demand from its parts and its store: books and our
quotes, pools with members and value, user orders with their balances, moves in transit, fills,
the last reconciliation and the halts of moves. The dashboard draws it, the headless progress line summarises it, the metrics and
the run report's samples read it."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from mixmaker.funds import accounts as acc
from mixmaker.funds import halts
from mixmaker.funds.ledger import Ledger
from mixmaker.funds.mover import FeeShort
from mixmaker.funds.moves import MoveState
from mixmaker.money import format_units, to_decimal
from mixmaker.orders import OrderState as ExchangeOrderState
from mixmaker.orders import Side
from mixmaker.store import Store
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
    side: Side
    price: Decimal
    remaining: Decimal
    state: ExchangeOrderState


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
    direction: str  # "mixin->exchange" | "exchange->mixin"
    asset: str
    units: int
    state: MoveState
    age_s: float  # since it was planned
    account: str = ""
    last_signal: str = ""


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
    reconciliation: dict[str, Any] | None = None  # `last_reconciliation`
    halts: list[str] = field(default_factory=list)  # why moves are halted (empty: they are not)
    fee_short: list[str] = field(default_factory=list)  # moves waiting for the fee float (`fee_short_text`)
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
            quotes = [Quote(v.side, _decimal(v.price, m.price_decimals), _decimal(v.remaining, m.size_decimals),
                            v.state) for v in rt.live_orders(pid)]
            quotes.sort(key=lambda q: (q.side != Side.SELL, -q.price))
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
    """The funds layer's moves not finished (planned, sent, seen on chain, stuck), oldest first."""
    if engine.funds is None:
        return []
    now = time.time_ns()
    return [MoveLine(m.move_id, m.direction.side, m.asset, m.units, m.state, (now - m.planned_ns) / 1e9,
                     m.venue_account, m.last_signal) for m in engine.funds.moves.in_flight()]


def last_reconciliation(store: Store, ledger: Ledger) -> dict[str, Any] | None:
    """The last check of `mixmaker.funds.reconcile` (its table, which `mixmaker status` reads):
    when, ok or not, its summary, the lines that differed and the venues not compared."""
    try:
        rows = store.query("SELECT check_id, finished_ns, ok, summary, detail FROM reconciliations "
                           "ORDER BY finished_ns DESC LIMIT 1")
    except Exception:  # noqa: BLE001 - no check table yet
        return None
    if not rows:
        return None
    check_id, at_ns, ok, summary, detail = rows[0]
    diffs = store.query("SELECT account, asset, ledger_units, actual_units, diff_units FROM reconciliation_diffs "
                        "WHERE check_id = ? AND diff_units != 0 ORDER BY account, asset", (check_id,))
    errors = list(json.loads(detail).get("errors", [])) if detail else []

    def fmt(asset: str, units: int) -> str:
        try:
            return format_units(int(units), ledger.decimals(asset), trim=True)
        except Exception:  # noqa: BLE001 - an asset no longer configured
            return str(units)

    return {"check_id": check_id, "at_ns": int(at_ns), "ok": bool(ok), "summary": summary, "errors": errors,
            "differences": [{"account": a, "asset": asset, "ledger": fmt(asset, lu), "observed": fmt(asset, au),
                             "difference": fmt(asset, d)} for a, asset, lu, au, d in diffs]}


def fee_short_text(ledger: Ledger, s: FeeShort) -> str:
    """A move waiting for the fee float, for a person: the asset, what is needed, what is there."""
    decimals = ledger.decimals(s.fee_asset)
    return (f"a move of {s.asset} on {s.account} waits for its network fee of "
            f"{format_units(s.needed, decimals, trim=True)} {s.fee_asset}; {acc.BOT_FEES} has "
            f"{format_units(max(s.held, 0), decimals, trim=True)} {s.fee_asset} (fund it: a payment from a fee payer)")


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
    ov.reconciliation = last_reconciliation(engine.store, engine.ledger)
    ov.halts = [f"{h.account} {h.asset}: {h.message}" for h in halts.active(engine.store)]
    if engine.funds is not None:
        ov.fee_short = [fee_short_text(engine.ledger, s) for s in engine.funds.mover.fee_short]
    return ov
