"""An in-memory venue for the order tracker's tests, with the faults that break trackers:
acting and then timing out, answering "not found" for a while (eventual consistency), fills
that beat the create ack, rejects, and a network that is down. No randomness. The venue
outlives the tracker, so a test can "kill" a tracker and start another.

It behaves like Binance where the tracker depends on it:
- its trade history pages as `myTrades` does (integer trade ids ascending, `limit` 500 by default
  and 1000 at most, `fromId`, `startTime`/`endTime` at most 24 h apart, `orderId`; with none, the
  most recent page), and `fetch_my_trades` / `fetch_order_trades` read it through the project's
  pager, so every tracker test exercises paging;
- a create signed with `timestamp_ms` is refused once it arrives past `recv_window_ms` on the
  venue's clock (`clock_ms`: our wall clock plus `clock_offset_ms`, or `frozen_ms`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from mixmaker.orders.trade_pages import TradePage, trades_by_id

from mixmaker.orders import (
    OrderNotFoundError,
    OrderRejectedError,
    OrderReport,
    OrderRequest,
    TradeReport,
    VenueUnavailableError,
)
from mixmaker.orders.protocol import VenueStatus


@dataclass
class VenueOrder:
    client_id: str
    exchange_id: str
    symbol: str
    side: str
    price: int
    quantity: int
    filled: int = 0
    status: str = "open"

    def report(self) -> OrderReport:
        # Its own words inside, mapped onto the protocol's statuses as an adapter does.
        return OrderReport(self.client_id, self.exchange_id, self.symbol, self.side, VenueStatus(self.status), self.price,
                           self.quantity, self.filled)


@dataclass
class Faults:
    # operation -> how many of the next calls act and then raise VenueUnavailableError
    act_then_timeout: Counter = field(default_factory=Counter)
    # operation -> how many of the next calls raise without acting
    fail_before_acting: Counter = field(default_factory=Counter)
    # client id -> how many more queries pretend the order does not exist
    hidden: Counter = field(default_factory=Counter)
    # client id -> the venue no longer answers order queries about it (its trades stay visible)
    forgotten: set = field(default_factory=set)
    reject_creates: int = 0
    # fill this much of each new order before the ack returns (and stream the trade)
    fill_on_create: int = 0
    down: bool = False


DAY_MS = 86_400_000
DEFAULT_LIMIT, MAX_LIMIT = 500, 1000


class FakeVenue:
    name = "fakex"
    recv_window_ms = 5000
    page_limit = MAX_LIMIT  # what the pager asks for

    def __init__(self) -> None:
        self.orders: dict[str, VenueOrder] = {}  # by client id
        self.trades: list[TradeReport] = []
        self.stream: list[TradeReport] = []  # what a user stream would have pushed
        self.faults = Faults()
        self.calls: Counter = Counter()
        self.trade_queries: list[tuple[str, int | None]] = []  # (symbol, since_ms) per fetch_my_trades
        self.pages: list[TradePage] = []  # every trade page asked for
        self.clock_offset_ms = 0
        self.frozen_ms: int | None = None
        self._next_id = 1000
        self._next_trade = 1

    def clock_ms(self) -> int:
        return self.frozen_ms if self.frozen_ms is not None else time.time_ns() // 1_000_000 + self.clock_offset_ms

    # ------------------------------------------------------------------ market activity
    def fill(self, client_id: str, qty: int, price: int | None = None, *, maker: bool = True) -> TradeReport:
        o = self.orders[client_id]
        assert o.status in ("open", "partially_filled"), f"cannot fill a {o.status} order"
        qty = min(qty, o.quantity - o.filled)
        o.filled += qty
        o.status = "filled" if o.filled == o.quantity else "partially_filled"
        t = TradeReport(str(self._next_trade), o.exchange_id, client_id, o.symbol, o.side, price or o.price, qty,
                        qty // 10, "USDT", maker, time_ms=self.clock_ms())
        self._next_trade += 1
        self.trades.append(t)
        self.stream.append(t)
        return t

    def open_ids(self) -> set[str]:
        return {c for c, o in self.orders.items() if o.status in ("open", "partially_filled")}

    def filled_by_order(self) -> dict[str, int]:
        return {c: o.filled for c, o in self.orders.items() if o.filled}

    # ------------------------------------------------------------------ faults
    def _enter(self, op: str) -> None:
        self.calls[op] += 1
        if self.faults.down:
            raise VenueUnavailableError(f"{op}: connection refused")
        if self.faults.fail_before_acting[op] > 0:
            self.faults.fail_before_acting[op] -= 1
            raise VenueUnavailableError(f"{op}: timed out before the venue acted")

    def _leave(self, op: str) -> None:
        if self.faults.act_then_timeout[op] > 0:
            self.faults.act_then_timeout[op] -= 1
            raise VenueUnavailableError(f"{op}: timed out after the venue acted")

    def _hidden(self, client_id: str) -> bool:
        if self.faults.hidden[client_id] > 0:
            self.faults.hidden[client_id] -= 1
            return True
        return False

    # ------------------------------------------------------------------ the OrderVenue calls
    async def create_order(self, req: OrderRequest) -> OrderReport:
        self._enter("create")
        if self.faults.reject_creates > 0:
            self.faults.reject_creates -= 1
            raise OrderRejectedError("insufficient balance", code=-2010)
        if req.client_id in self.orders:
            raise OrderRejectedError("duplicate client order id", code=-2010)
        if req.timestamp_ms is not None and not -1000 < self.clock_ms() - req.timestamp_ms <= self.recv_window_ms:
            raise OrderRejectedError("Timestamp for this request is outside of the recvWindow.", code=-1021)
        self._next_id += 1
        o = VenueOrder(req.client_id, f"X{self._next_id}", req.symbol, req.side, req.price, req.quantity)
        self.orders[req.client_id] = o
        if self.faults.fill_on_create:
            self.fill(req.client_id, self.faults.fill_on_create)
        self._leave("create")
        return o.report()

    async def cancel_order(self, symbol: str, client_id: str, exchange_id: str | None) -> OrderReport:
        self._enter("cancel")
        o = self.orders.get(client_id)
        if o is None or o.status not in ("open", "partially_filled") or client_id in self.faults.forgotten:
            raise OrderNotFoundError(f"unknown order {client_id}")
        o.status = "canceled"
        self._leave("cancel")
        return o.report()

    async def fetch_order(self, symbol: str, client_id: str) -> OrderReport:
        self._enter("fetch_order")
        o = self.orders.get(client_id)
        if o is None or client_id in self.faults.forgotten or self._hidden(client_id):
            raise OrderNotFoundError(f"order {client_id} does not exist")
        return o.report()

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        self._enter("fetch_open_orders")
        return [o.report() for o in self.orders.values()
                if o.status in ("open", "partially_filled") and (symbol is None or o.symbol == symbol)
                and self.faults.hidden[o.client_id] == 0 and o.client_id not in self.faults.forgotten]

    async def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[TradeReport]:
        self.trade_queries.append((symbol, since_ms))
        return await trades_by_id(lambda q: self.trades_page(symbol, q), since_ms=since_ms, now_ms=self.clock_ms,
                                  limit=self.page_limit, what=f"{self.name} {symbol}")

    async def fetch_order_trades(self, symbol: str, exchange_id: str, since_ms: int | None = None) -> list[TradeReport]:
        return await trades_by_id(lambda q: self.trades_page(symbol, q), order_id=exchange_id, now_ms=self.clock_ms,
                                  limit=self.page_limit, what=f"{self.name} {symbol} {exchange_id}")

    async def trades_page(self, symbol: str, q: TradePage) -> list[TradeReport]:
        """One `myTrades` page, as Binance answers it (trade ids are integers, ascending)."""
        self._enter("fetch_my_trades")
        self.pages.append(q)
        if not 0 < q.limit <= MAX_LIMIT:
            raise OrderRejectedError("Data sent for parameter 'limit' is not valid.", code=-1130)
        given = {k for k, v in (("orderId", q.order_id), ("fromId", q.from_id), ("startTime", q.start_ms),
                                ("endTime", q.end_ms)) if v is not None}
        if given not in ({"orderId"}, {"startTime"}, {"endTime"}, {"fromId"}, {"startTime", "endTime"},
                         {"orderId", "fromId"}, set()):
            raise OrderRejectedError("Combination of optional parameters invalid.", code=-1128)
        rows = [t for t in self.trades if t.symbol == symbol and self.faults.hidden[t.client_id] == 0]
        if q.order_id is not None:
            rows = [t for t in rows if t.exchange_id == q.order_id]
        if q.from_id is not None:
            rows = [t for t in rows if int(t.trade_id) >= q.from_id][:q.limit]
        elif q.start_ms is not None or q.end_ms is not None:
            start = q.start_ms if q.start_ms is not None else q.end_ms - DAY_MS
            end = q.end_ms if q.end_ms is not None else start + DAY_MS
            if end - start > DAY_MS:
                raise OrderRejectedError("More than 24 hours between startTime and endTime.", code=-1127)
            rows = [t for t in rows if start <= t.time_ms <= end]
            rows = rows[:q.limit] if q.start_ms is not None else rows[-q.limit:]
        else:
            rows = rows[-q.limit:]
        # Binance's myTrades names the order by exchange id only.
        return [TradeReport(t.trade_id, t.exchange_id, None, t.symbol, t.side, t.price, t.qty, t.fee, t.fee_asset,
                            t.is_maker, t.time_ms) for t in rows]
