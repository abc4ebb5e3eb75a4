"""What a controller sees on one tick: the market's rules, a settled book view, balances and
our own live orders. Everything is exact integers in the book's units:

- prices: scaled by `price_decimals` (the book's raw units); the tick is a multiple of one unit;
- sizes: scaled by `size_decimals`; the lot is a multiple of one unit;
- values (quote amounts, fees, PnL): price x size, i.e. scaled by both.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from mixmaker._core import OrderState, Side
from mixmaker.book import BookState
from mixmaker.frozen import quick_init
from mixmaker.markets import MarketRules as MarketRules  # re-exported: strategy code imports it from here
from mixmaker.strategy.reason import IdleKind, Reason

_SYNCED = BookState.SYNCED  # the states are singletons: `is` compares them
_new = tuple.__new__  # a named tuple from a tuple of all its fields, without its Python-level __new__

if TYPE_CHECKING:
    from mixmaker.book import OrderBook

@quick_init
@dataclass(frozen=True, slots=True)
class Balances:
    """Holdings of one account in one market: totals and what is not locked in open orders."""

    base_total: int  # size units
    quote_total: int  # value units
    base_free: int
    quote_free: int


class BalanceSource(Protocol):
    def balances(self) -> Balances: ...


class OwnOrder(NamedTuple):
    """One of our live orders as the executor knows it. A named tuple (read-only, as a frozen
    dataclass, but built in C): the executor builds one per live order whenever they change."""

    client_id: str
    side: Side
    price: int
    quantity: int
    remaining: int
    created_ns: int  # clock time when the executor placed it
    state: OrderState  # the tracker's state


class MarketSnapshot(NamedTuple):
    """The settled view of one tick. `book` is None when the book is not synced; then
    `not_ready` says why, and a controller must not quote. A named tuple (read-only, built in C:
    one is built every tick)."""

    now_ns: int
    rules: MarketRules
    book: OrderBook | None
    balances: Balances
    own_orders: tuple[OwnOrder, ...] = ()
    last_trade_price: int | None = None
    external_book: OrderBook | None = None
    not_ready: str | None = None
    cancels_in_flight: int = 0
    trades: tuple[tuple[int, int, int], ...] = ()  # public (ts_ns, price, size) since the last tick

    def mid_fraction(self, book: OrderBook | None = None) -> tuple[int, int] | None:
        """The mid as an exact fraction (num, 2); None on an empty side."""
        b = self.book if book is None else book
        if b is None:
            return None
        bid, ask = b.best_bid_raw(), b.best_ask_raw()
        if bid is None or ask is None:
            return None
        return (bid[0] + ask[0], 2)

    def own(self, side: Side) -> list[OwnOrder]:
        return [o for o in self.own_orders if o.side == side]


class MarketView:
    """The live inputs of one market, read at each tick: the synced book (a `BookSync`), the last
    public trade price, balances, and an optional external reference book. Connectors (or the
    backtest runner) feed it; controllers only see the `MarketSnapshot` it builds."""

    def __init__(self, rules: MarketRules, sync: Any, balances: BalanceSource, external: Any = None) -> None:
        self.rules = rules
        self.sync = sync
        self.balance_source = balances
        self.external = external
        self.last_trade_price: int | None = None
        self._trades: deque[tuple[int, int, int]] = deque(maxlen=100_000)

    def on_public_trade(self, price: int, size: int, ts_ns: int) -> None:
        self.last_trade_price = price
        self._trades.append((ts_ns, price, size))

    def on_public_trades(self, trades: list[tuple[int, int, int]]) -> None:
        """Several public trades at once: (ts_ns, price, size), oldest first."""
        if trades:
            self.last_trade_price = trades[-1][1]
            self._trades.extend(trades)

    def snapshot(self, now_ns: int, own_orders: tuple[OwnOrder, ...] = (), cancels_in_flight: int = 0) -> MarketSnapshot:
        sync = self.sync
        book, not_ready = None, None
        state = sync.state
        if state is _SYNCED:
            book = sync.book
        else:
            reason = sync.desync_reason
            try:
                not_ready = Reason(IdleKind(f"book {state.name}"), reason or "")
            except ValueError:  # a state without its own category
                not_ready = Reason(IdleKind.BOOK_NOT_SYNCED, f"{state.name}: {reason}" if reason else state.name)
        external = None
        if self.external is not None and self.external.state is _SYNCED:
            external = self.external.book
        if self._trades:
            trades = tuple(self._trades)
            self._trades.clear()
        else:
            trades = ()
        return _new(MarketSnapshot, (now_ns, self.rules, book, self.balance_source.balances(), own_orders,
                                     self.last_trade_price, external, not_ready, cancels_in_flight, trades))
