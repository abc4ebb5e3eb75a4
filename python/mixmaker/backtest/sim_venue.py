"""A simulated venue for backtests. It implements `OrderVenue` (what the order tracker calls)
and `BalanceSource` (what controllers read), so strategy code cannot tell it from a live
connector.

Matching model (our orders are not in the recorded book, so they never move it):
- latency: a request reaches the matching engine `latency_ns` after it is sent. The create is
  acknowledged at once, but the order only rests from then on; a cancel takes effect then, and
  fills in between still happen (late fills). Results come back on the user stream (`stream`).
- post-only (the default): an order that would take when it is sent is rejected (-5022, as
  Binance's GTX); one that would take when it arrives expires. With `post_only=False` a
  crossing order takes the book up to its price at the taker fee, and the rest rests.
- fills: a public trade that prints through our price fills the order in full; one at our
  price first eats the queue ahead of us. A book that moves through our price (best ask <= our
  bid) fills us in full. Resting orders fill as maker at their price.
- queue position ("risk_averse", hftbacktest's model): on arrival we queue behind the whole
  level; trades at our price and the level shrinking below our place move us up. "front"
  assumes we are first in the queue.
- balances are spot-like: buys lock price x size of quote, sells lock size of base.
Fee rates are a fraction of SCALE (1e-8). A fill's fee is charged in the quote, rounded up (the
venue's favour) to the market's value units (or to 1e-12 when those are finer), and reported as
live venues report it: a `FeeAmount`, 1e-12 of its asset. A negative fee is a rebate.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mixmaker.money import rescale
from mixmaker.orders import (
    OrderNotFoundError,
    OrderRejectedError,
    OrderReport,
    OrderRequest,
    TradeReport,
)
from mixmaker.orders.protocol import FEE_DECIMALS, FeeAmount, Side, VenueStatus
from mixmaker.strategy.kernel import SCALE
from mixmaker.strategy.market import Balances, MarketRules

QueueModel = Literal["risk_averse", "front"]
_BUY, _SELL = Side.BUY, Side.SELL
# Python enum members cost a descriptor call per class-attribute read: the hot paths read these.
_OPEN, _PARTIALLY_FILLED, _FILLED = VenueStatus.OPEN, VenueStatus.PARTIALLY_FILLED, VenueStatus.FILLED
_CANCELED, _EXPIRED = VenueStatus.CANCELED, VenueStatus.EXPIRED
QUEUE_LEVELS = 256  # book levels read to place us in the queue; beyond them the place is kept


@dataclass(slots=True)
class SimOrder:
    client_id: str
    exchange_id: str
    symbol: str
    side: Side
    price: int
    quantity: int
    live_at_ns: int
    filled: int = 0
    status: VenueStatus = VenueStatus.OPEN
    live: bool = False
    queue_ahead: int = 0
    cancel_at_ns: int | None = None
    last_report: OrderReport | None = None

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def is_open(self) -> bool:
        return self.status is _OPEN or self.status is _PARTIALLY_FILLED

    def report(self) -> OrderReport:
        """The venue's view of the order; the same (immutable) report while its status and fill
        are (a cancel's answer is the create's)."""
        last = self.last_report
        if last is not None and last.status == self.status and last.filled == self.filled:
            return last
        self.last_report = last = OrderReport(self.client_id, self.exchange_id, self.symbol, self.side, self.status,
                                              self.price, self.quantity, self.filled)
        return last


def fee_of(notional: int, fee: int) -> int:
    """notional x fee / SCALE, rounded towards +infinity (the venue's favour)."""
    return -((-notional * fee) // SCALE)


def charged_fee(notional: int, rate: int, value_decimals: int) -> tuple[int, FeeAmount]:
    """The fee on `notional` (value units) at `rate` (a fraction of SCALE): (value units taken
    from the quote, the same as a `FeeAmount`). Rounded up to whole value units, or to whole
    1e-12 when value units are finer, so the two are exactly equal."""
    if value_decimals <= FEE_DECIMALS:
        value = fee_of(notional, rate)
        return value, FeeAmount(rescale(value, value_decimals, FEE_DECIMALS))
    coarse = 10 ** (value_decimals - FEE_DECIMALS)
    fee = -((-notional * rate) // (SCALE * coarse))
    return fee * coarse, FeeAmount(fee)


class SimVenue:
    name = "sim"

    def __init__(self, rules: MarketRules, *, base: int, quote: int, latency_ns: int = 0, maker_fee: int = 0,
                 taker_fee: int = 0, queue_model: QueueModel = "risk_averse", post_only: bool = True) -> None:
        self.rules = rules
        self.base = base
        self.quote = quote
        self.latency_ns = latency_ns
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.queue_model = queue_model
        self.post_only = post_only
        self.now_ns = 0
        self.book: Any = None  # the public book (an OrderBook), set by the runner
        self.orders: dict[str, SimOrder] = {}
        self._open: dict[str, SimOrder] = {}
        # Requests still travelling to the engine (the runner only sets the time while empty).
        self.in_flight: dict[str, SimOrder] = {}
        self.trades: list[TradeReport] = []
        self.stream: list[TradeReport | OrderReport] = []
        self.stats: Counter[str] = Counter()
        self.reject_next_creates = 0  # fault injection for tests
        self._next_order = 0
        self._next_trade = 0
        # Bumped whenever a resting order, its queue place, or a request in flight changes: the
        # replay asks for `watch()` and `next_deadline()` again only then.
        self.version = 0
        self._balances: Balances | None = None
        self._balances_at = -1
        self._funds = 0  # bumped when balances or what open orders lock change (a subset of `version`)

    # ------------------------------------------------------------------ BalanceSource
    def balances(self) -> Balances:
        # Balances change only with an order, a fill or a close, each of which bumps `_funds`.
        if self._balances_at == self._funds and self._balances is not None:
            return self._balances
        locked_quote = locked_base = 0
        for o in self._open.values():
            if o.side == _BUY:
                locked_quote += o.remaining * o.price
            else:
                locked_base += o.remaining
        self._balances_at = self._funds
        b = self._balances
        if (b is None or b.base_total != self.base or b.quote_total != self.quote
                or b.base_free != self.base - locked_base or b.quote_free != self.quote - locked_quote):
            b = self._balances = Balances(self.base, self.quote, self.base - locked_base, self.quote - locked_quote)
        return b  # the same object while the figures are the same (a queue move bumps the version)

    # ------------------------------------------------------------------ OrderVenue
    async def create_order(self, req: OrderRequest) -> OrderReport:
        self.stats["create"] += 1
        r = self.rules
        if self.reject_next_creates > 0:
            self.reject_next_creates -= 1
            raise OrderRejectedError("rejected by fault injection", code=-1000)
        if req.client_id in self.orders:
            raise OrderRejectedError("duplicate client order id", code=-4015)
        if req.price <= 0 or req.price % r.tick or req.quantity <= 0 or req.quantity % r.lot or req.quantity < r.min_size:
            raise OrderRejectedError(f"price {req.price} or quantity {req.quantity} off the market grid", code=-1111)
        b = self.balances()
        if (req.side == _BUY and req.price * req.quantity > b.quote_free) or (req.side == _SELL and req.quantity > b.base_free):
            self.stats["rejected_balance"] += 1
            raise OrderRejectedError("insufficient balance", code=-2019)
        if self.post_only and self._would_take(req.side, req.price):
            self.stats["rejected_post_only"] += 1
            raise OrderRejectedError("post-only order would immediately match", code=-5022)
        self._next_order += 1
        o = SimOrder(req.client_id, f"S{self._next_order}", req.symbol, req.side, req.price, req.quantity,
                     self.now_ns + self.latency_ns)
        self.orders[o.client_id] = self._open[o.client_id] = o
        self.version += 1
        self._funds += 1
        if self.latency_ns == 0:
            self._arrive(o)
        else:
            self.in_flight[o.client_id] = o
        return o.report()

    async def cancel_order(self, symbol: str, client_id: str, exchange_id: str | None) -> OrderReport:
        self.stats["cancel"] += 1
        o = self._open.get(client_id)
        if o is None:
            raise OrderNotFoundError(f"unknown order {client_id}")
        if self.latency_ns == 0:
            self._close(o, _CANCELED)
        elif o.cancel_at_ns is None:
            o.cancel_at_ns = self.now_ns + self.latency_ns
            self.in_flight[o.client_id] = o
            self.version += 1
        return o.report()

    async def fetch_order(self, symbol: str, client_id: str) -> OrderReport:
        o = self.orders.get(client_id)
        if o is None:
            raise OrderNotFoundError(f"order {client_id} does not exist")
        return o.report()

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        return [o.report() for o in self._open.values() if symbol is None or o.symbol == symbol]

    async def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[TradeReport]:
        # The tracker's look-back is wall-clock based; sim time is the recording's, so all trades.
        return [t for t in self.trades if t.symbol == symbol]

    # ------------------------------------------------------------------ the market moves
    def advance(self, now_ns: int) -> None:
        """Time passes to `now_ns`: requests in flight reach the engine."""
        self.now_ns = now_ns
        if not self.in_flight:
            return
        for o in list(self.in_flight.values()):
            if not o.live and o.is_open and o.live_at_ns <= now_ns:
                self._arrive(o)
            if o.cancel_at_ns is not None and o.cancel_at_ns <= now_ns and o.is_open:
                self._close(o, _CANCELED)
            if not o.is_open or (o.live and o.cancel_at_ns is None):
                del self.in_flight[o.client_id]
                self.version += 1

    def next_deadline(self) -> int | None:
        """The earliest time a request in flight reaches the engine (None: nothing in flight)."""
        due = None
        for o in self.in_flight.values():
            if not o.is_open:
                continue
            if not o.live and (due is None or o.live_at_ns < due):
                due = o.live_at_ns
            if o.cancel_at_ns is not None and (due is None or o.cancel_at_ns < due):
                due = o.cancel_at_ns
        return due

    def watch(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(price, size queued ahead) of our live buys and of our live sells: the trades and
        book changes that may fill or move them are those the replay must hand over."""
        bids: list[tuple[int, int]] = []
        asks: list[tuple[int, int]] = []
        for o in self._open.values():
            if o.live:
                (bids if o.side == _BUY else asks).append((o.price, o.queue_ahead))
        return bids, asks

    def on_public_trade(self, price: int, qty: int, buyer_is_maker: bool) -> None:
        """A public trade: the aggressor sold (hits bids) when the buyer was the maker."""
        hit = _BUY if buyer_is_maker else _SELL
        for o in list(self._open.values()):
            if not o.live or o.side != hit:
                continue
            through = price < o.price if hit is _BUY else price > o.price
            if through:
                self._fill(o, o.remaining)
            elif price == o.price:
                left = qty - o.queue_ahead
                o.queue_ahead = max(0, o.queue_ahead - qty)
                self.version += 1
                if left > 0:
                    self._fill(o, min(left, o.remaining))

    def on_book(self) -> None:
        """The public book changed: fill what it moved through, and move us up the queue."""
        if not self._open or self.book is None:
            return
        bid, ask = self.book.best_bid_raw(), self.book.best_ask_raw()
        for o in list(self._open.values()):
            if not o.live:
                continue
            if (o.side == _BUY and ask is not None and ask[0] <= o.price) or (
                    o.side == _SELL and bid is not None and bid[0] >= o.price):
                self.stats["filled_by_book"] += 1
                self._fill(o, o.remaining)
            elif o.queue_ahead:
                size = self.book.level_within_raw(o.side == _BUY, o.price, QUEUE_LEVELS)
                if size is not None and size < o.queue_ahead:
                    o.queue_ahead = size
                    self.version += 1

    # ------------------------------------------------------------------ internals
    def _would_take(self, side: Side, price: int) -> bool:
        if self.book is None:
            return False
        other = self.book.best_ask_raw() if side == _BUY else self.book.best_bid_raw()
        return other is not None and (price >= other[0] if side == _BUY else price <= other[0])

    def _arrive(self, o: SimOrder) -> None:
        if self._would_take(o.side, o.price):
            if self.post_only:
                self.stats["expired_post_only"] += 1
                self._close(o, _EXPIRED)
                return
            self._take(o)
            if not o.is_open:
                return
        o.live = True
        self.version += 1
        if self.queue_model == "risk_averse" and self.book is not None:
            o.queue_ahead = self.book.level_within_raw(o.side == _BUY, o.price, QUEUE_LEVELS) or 0

    def _close(self, o: SimOrder, status: VenueStatus) -> None:
        self.version += 1
        self._funds += 1
        o.status = status
        self._open.pop(o.client_id, None)
        self.stream.append(o.report())

    def _take(self, o: SimOrder) -> None:
        """A crossing limit order (venue not post-only) takes the other side up to its price."""
        levels = self.book.top_raw(QUEUE_LEVELS)
        px, sz = (levels[2], levels[3]) if o.side == _BUY else (levels[0], levels[1])
        for p, s in zip(px.tolist(), sz.tolist(), strict=True):
            if o.remaining == 0 or (p > o.price if o.side == _BUY else p < o.price):
                break
            self._fill(o, min(s, o.remaining), price=p, maker=False)

    def _fill(self, o: SimOrder, qty: int, *, price: int | None = None, maker: bool = True) -> None:
        if qty <= 0:
            return
        price = o.price if price is None else price
        notional = price * qty
        fee_value, fee = charged_fee(notional, self.maker_fee if maker else self.taker_fee, self.rules.value_decimals)
        if o.side == _BUY:
            self.base += qty
            self.quote -= notional + fee_value
        else:
            self.base -= qty
            self.quote += notional - fee_value
        o.filled += qty
        self.version += 1
        self._funds += 1
        self._next_trade += 1
        t = TradeReport(f"ST{self._next_trade}", o.exchange_id, o.client_id, o.symbol, o.side, price, qty, fee,
                        self.rules.quote, maker, self.now_ns // 1_000_000)
        self.trades.append(t)
        self.stream.append(t)
        self.stats["fills"] += 1
        if o.filled == o.quantity:
            o.status = _FILLED
            self._open.pop(o.client_id, None)
            self.stream.append(o.report())
        else:
            o.status = _PARTIALLY_FILLED


def _level_size(levels: tuple[npt.NDArray[np.int64], ...], side: Side, price: int) -> int | None:
    """Size at `price` in top_raw arrays; 0 if the price is inside the levels but empty, None
    if it lies beyond them."""
    px, sz = (levels[0], levels[1]) if side == _BUY else (levels[2], levels[3])
    n = len(px)
    if n == 0:
        return 0
    if side == _BUY:  # descending
        if price < px[n - 1]:
            return None
        i = bisect.bisect_left(range(n), -price, key=lambda k: -px[k])
    else:
        if price > px[n - 1]:
            return None
        i = bisect.bisect_left(range(n), price, key=lambda k: px[k])
    return int(sz[i]) if i < n and px[i] == price else 0
