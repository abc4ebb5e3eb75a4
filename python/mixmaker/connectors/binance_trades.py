"""Binance spot's public trade stream (`<symbol>@trade`) over picows, as exact integers.

Prints feed the strategies' "last trade" price source and the Avellaneda–Stoikov intensity
estimator. A print missed while disconnected is gone (Binance does not replay them), so the
stream only counts reconnects; nothing downstream depends on seeing every print.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from picows import WSTransport

from mixmaker.connectors.backoff import Backoff
from mixmaker.connectors.reconnect import ReconnectingSocket
from mixmaker.markets import MarketRules


@dataclass(frozen=True, slots=True)
class PublicTrade:
    trade_id: int
    price: int  # the market's price units
    qty: int  # the market's size units
    buyer_is_maker: bool  # True: a seller hit the bid
    time_ms: int


@dataclass
class TradeStreamStats:
    connects: int = 0
    trades: int = 0
    unparsed: int = 0


class PublicTradeStream(ReconnectingSocket):
    """`await run()` until `close()`; `on_trade` gets each print."""

    def __init__(self, market: MarketRules, *, ws_url: str, on_trade: Callable[[PublicTrade], object],
                 backoff_s: float = 0.2, backoff_max_s: float = 30.0, seed: int | None = None) -> None:
        super().__init__(f"{ws_url.rstrip('/')}/ws/{market.symbol.lower()}@trade",
                         backoff=Backoff(backoff_s, backoff_max_s, seed))
        self.market = market
        self.on_trade = on_trade
        self.stats = TradeStreamStats()

    async def _on_connected(self, transport: WSTransport) -> None:
        self.stats.connects += 1

    def _on_frame(self, raw: bytes) -> None:
        try:
            e = json.loads(raw)
            e = e.get("data", e)  # a combined-stream wrapper, if any
            if e.get("e") != "trade":
                return
            trade = PublicTrade(int(e["t"]), self.market.price(e["p"]), self.market.size(e["q"]), bool(e["m"]), int(e["T"]))
        except (ValueError, KeyError, TypeError):
            self.stats.unparsed += 1
            return
        self.stats.trades += 1
        self.on_trade(trade)
