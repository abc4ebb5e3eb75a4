"""An in-memory venue for the order tracker's tests, with the faults that break trackers:
acting and then timing out, answering "not found" for a while (eventual consistency), fills
that beat the create ack, rejects, and a network that is down. Deterministic: no clocks, no
randomness. The venue outlives the tracker, so a test can "kill" a tracker and start another.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mixmaker.orders import (
    OrderNotFoundError,
    OrderRejectedError,
    OrderReport,
    OrderRequest,
    TradeReport,
    VenueUnavailableError,
)


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
        return OrderReport(self.client_id, self.exchange_id, self.symbol, self.side, self.status, self.price,
                           self.quantity, self.filled)


@dataclass
class Faults:
    # operation -> how many of the next calls act and then raise VenueUnavailableError
    act_then_timeout: Counter = field(default_factory=Counter)
    # operation -> how many of the next calls raise without acting
    fail_before_acting: Counter = field(default_factory=Counter)
    # client id -> how many more queries pretend the order does not exist
    hidden: Counter = field(default_factory=Counter)
    reject_creates: int = 0
    # fill this much of each new order before the ack returns (and stream the trade)
    fill_on_create: int = 0
    down: bool = False


class FakeVenue:
    name = "fakex"

    def __init__(self) -> None:
        self.orders: dict[str, VenueOrder] = {}  # by client id
        self.trades: list[TradeReport] = []
        self.stream: list[TradeReport] = []  # what a user stream would have pushed
        self.faults = Faults()
        self.calls: Counter = Counter()
        self.trade_queries: list[tuple[str, int | None]] = []  # (symbol, since_ms) per fetch_my_trades
        self._next_id = 1000
        self._next_trade = 1

    # ------------------------------------------------------------------ market activity
    def fill(self, client_id: str, qty: int, price: int | None = None, *, maker: bool = True) -> TradeReport:
        o = self.orders[client_id]
        assert o.status in ("open", "partially_filled"), f"cannot fill a {o.status} order"
        qty = min(qty, o.quantity - o.filled)
        o.filled += qty
        o.status = "filled" if o.filled == o.quantity else "partially_filled"
        t = TradeReport(f"T{self._next_trade}", o.exchange_id, client_id, o.symbol, o.side, price or o.price, qty,
                        qty // 10, "USDT", maker, time_ms=self._next_trade)
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
        if o is None or o.status not in ("open", "partially_filled"):
            raise OrderNotFoundError(f"unknown order {client_id}")
        o.status = "canceled"
        self._leave("cancel")
        return o.report()

    async def fetch_order(self, symbol: str, client_id: str) -> OrderReport:
        self._enter("fetch_order")
        o = self.orders.get(client_id)
        if o is None or self._hidden(client_id):
            raise OrderNotFoundError(f"order {client_id} does not exist")
        return o.report()

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        self._enter("fetch_open_orders")
        return [o.report() for o in self.orders.values()
                if o.status in ("open", "partially_filled") and (symbol is None or o.symbol == symbol)
                and self.faults.hidden[o.client_id] == 0]

    async def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[TradeReport]:
        self._enter("fetch_my_trades")
        self.trade_queries.append((symbol, since_ms))
        # Binance's myTrades names the order by exchange id only.
        return [TradeReport(t.trade_id, t.exchange_id, None, t.symbol, t.side, t.price, t.qty, t.fee, t.fee_asset,
                            t.is_maker, t.time_ms)
                for t in self.trades if t.symbol == symbol and self.faults.hidden[t.client_id] == 0]
