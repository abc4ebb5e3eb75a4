"""Builders shared by the strategy, executor and backtest tests: a market, a book, a snapshot."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mixmaker.book import OrderBook
from mixmaker.strategy import Balances, MarketConfig, MarketRules, MarketSnapshot, OwnOrder, PMMConfig

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
    return OwnOrder(cid, side, int(Decimal(price) * 100), q, r, int(created_s * 1e9), "OPEN")


def prices(quotes) -> list[str]:
    return [str(Decimal(q.price).scaleb(-2)) for q in quotes]


def sizes(quotes) -> list[str]:
    return [str(Decimal(q.size).scaleb(-3)) for q in quotes]
