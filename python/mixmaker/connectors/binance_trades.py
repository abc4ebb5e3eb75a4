"""Binance spot's public trade stream (`<symbol>@trade`) over picows, as exact integers.

Prints feed the strategies' "last trade" price source and the Avellaneda–Stoikov intensity
estimator. A print missed while disconnected is gone (Binance does not replay them), so the
stream only counts reconnects; nothing downstream depends on seeing every print.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Callable

from picows import ws_connect

from mixmaker.connectors.backoff import Backoff
from mixmaker.connectors.reconnect import FrameListener, SocketOwner
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


class PublicTradeStream(SocketOwner):
    """`await run()` until `close()`; `on_trade` gets each print."""

    def __init__(self, market: MarketRules, *, ws_url: str, on_trade: Callable[[PublicTrade], object],
                 backoff_s: float = 0.2, backoff_max_s: float = 30.0, seed: int | None = None) -> None:
        self.market = market
        self.url = f"{ws_url.rstrip('/')}/ws/{market.symbol.lower()}@trade"
        self.on_trade = on_trade
        self.stats = TradeStreamStats()
        self._backoff = Backoff(backoff_s, backoff_max_s, seed)

    async def run(self) -> None:
        failures = 0
        while not self._closed:
            try:
                self._transport, _ = await ws_connect(lambda: FrameListener(self._on_message), self.url,
                                                      enable_auto_ping=True)
            except (OSError, asyncio.TimeoutError, RuntimeError):
                failures += 1
                await asyncio.sleep(self._backoff.delay(failures))
                continue
            failures = 0
            self.stats.connects += 1
            await self._transport.wait_disconnected()
            self._transport = None
            if not self._closed:
                await asyncio.sleep(self._backoff.delay(1))

    def _on_message(self, raw: bytes) -> None:
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
