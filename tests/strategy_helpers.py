"""Builders shared by the strategy, executor and backtest tests: a market, a book, a snapshot."""

from __future__ import annotations

import asyncio
import functools
from decimal import Decimal
from typing import Any, Awaitable, Callable

from mixmaker.backtest.sim_venue import SimVenue
from mixmaker.book import OrderBook
from mixmaker.orders import ClientOrderTracker, OrderState, Side
from mixmaker.store import SqliteStore
from mixmaker.strategy import Balances, MarketConfig, MarketRules, MarketSnapshot, OwnOrder, PMMConfig, Quote, QuoteExecutor

MARKET = MarketConfig(symbol="TESTUSDT", base="TEST", quote="USDT", price_decimals=2, size_decimals=3,
                      tick=Decimal("0.10"), lot=Decimal("0.001"))
RULES: MarketRules = MARKET.rules()
V = 10**5  # one quote unit in value units (price 2 dp x size 3 dp)


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> OrderBook:
    ob = OrderBook(price_decimals=2, size_decimals=3)
    ob.apply_snapshot(bids, asks, update_id=1)
    return ob


def pmm(**kw: Any) -> PMMConfig:
    base = {"bid_spread": Decimal(1), "ask_spread": Decimal(1), "order_amount": Decimal(1)}
    return PMMConfig(**{**base, **kw})


def balances(base: str = "1000", quote: str = "1000000") -> Balances:
    b, q = int(Decimal(base) * 1000), int(Decimal(quote) * V)
    return Balances(b, q, b, q)


def snapshot(ob: OrderBook | None, *, now_s: float = 1000, bal: Balances | None = None,
             own: tuple[OwnOrder, ...] = (), **kw: Any) -> MarketSnapshot:
    return MarketSnapshot(int(now_s * 1e9), RULES, ob, bal or balances(), own, **kw)


def own(cid: str, side: str, price: str, qty: str = "1", created_s: float = 1000, remaining: str | None = None) -> OwnOrder:
    q = int(Decimal(qty) * 1000)
    r = q if remaining is None else int(Decimal(remaining) * 1000)
    return OwnOrder(cid, Side.from_value(side), int(Decimal(price) * 100), q, r, int(created_s * 1e9), OrderState.OPEN)


def prices(quotes) -> list[str]:
    return [str(Decimal(q.price).scaleb(-2)) for q in quotes]


def sizes(quotes) -> list[str]:
    return [str(Decimal(q.size).scaleb(-3)) for q in quotes]


class Listener:
    """Stands in for the controller: records what the executor tells it."""

    def __init__(self) -> None:
        self.placed: list[tuple[str, Quote]] = []
        self.fills: list[tuple[str, int, bool]] = []
        self.closed: list[str] = []

    def on_placed(self, cid, quote, now_ns):
        self.placed.append((cid, quote))

    def on_fill(self, cid, side, price, qty, fully_filled, now_ns):
        self.fills.append((cid, qty, fully_filled))

    def on_closed(self, cid):
        self.closed.append(cid)


class Rig:
    """A tracker over a simulated venue (book 99.90 / 100.10), and a quote executor on it."""

    def __init__(self, *, base="10", quote="10000", latency_ns=0, queue="front", post_only=True) -> None:
        self.venue = SimVenue(RULES, base=int(Decimal(base) * 1000), quote=int(Decimal(quote) * V),
                              latency_ns=latency_ns, queue_model=queue, post_only=post_only)
        self.venue.book = book([("99.90", "5")], [("100.10", "5")])
        self.listener = Listener()
        self.now = int(1000e9)
        self.ex: QuoteExecutor | None = None
        self.tracker = ClientOrderTracker(self.venue, SqliteStore(":memory:"), fill_sink=self._fill, retry_delay=0.0)
        self.ex = QuoteExecutor(self.tracker, RULES, self.venue, self.listener, lambda: self.now)

    def _fill(self, f):
        self.ex.on_fill(f)

    async def start(self):
        await self.tracker.start()
        self.ex.start()

    async def deliver(self):
        while self.venue.stream:
            batch, self.venue.stream[:] = self.venue.stream[:], []
            for ev in batch:
                if hasattr(ev, "status"):
                    await self.tracker.on_order_update(ev)
                else:
                    self.tracker.on_trade(ev)

    def calls(self):
        return self.venue.stats["create"], self.venue.stats["cancel"]

    def market(self, bid: str, ask: str, now_s: float, size: str = "5") -> MarketSnapshot:
        """Move the public book (the venue fills what it moved through) and snapshot it."""
        self.venue.book = book([(bid, size)], [(ask, size)])
        self.now = int(now_s * 1e9)
        self.venue.advance(self.now)
        self.venue.on_book()
        return snapshot(self.venue.book, now_s=now_s)


def in_loop(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Runs an `async def` test in a fresh event loop (pytest sees the same arguments)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run
