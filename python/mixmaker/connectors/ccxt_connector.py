"""Any ccxt venue as a `Connector`: REST through `CcxtVenue`, books from ccxt.pro's
`watch_order_book` (`CcxtProBook`), fills from ccxt.pro's `watch_my_trades`.

Both ccxt instances' REST requests go through one `RateLimiter` (ccxt.pro fetches snapshots by
REST too). After a private-stream error the fills are caught up by REST (`tracker.catch_up`:
the whole history since its last complete scan, every page; it drops trade ids it already has),
then watching resumes with a backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import ccxt.async_support as ccxt

from mixmaker.book import BookState, BookSync, OrderBook, SyncRule
from mixmaker.connectors.backoff import Backoff
from mixmaker.connectors.ccxt_account import CcxtVenue
from mixmaker.connectors.ccxt_routing import route_through
from mixmaker.connectors.ccxt_stream import CcxtProBook
from mixmaker.connectors.limiter import Pool, RateLimiter
from mixmaker.markets import MarketRules
from mixmaker.orders import ClientOrderTracker

log = logging.getLogger(__name__)


class CcxtConnector:
    def __init__(self, rest: Any, pro: Any, pools: list[Pool], *, cost: Callable[..., Any],
                 usage: Callable[..., Any], retry_after: Callable[..., Any], name: str | None = None,
                 backoff_s: float = 0.5, seed: int | None = None) -> None:
        """`rest`: a ccxt.async_support exchange; `pro`: the same venue's ccxt.pro exchange;
        `pools`, `cost`, `usage`, `retry_after`: the venue's limits (see `binance_limits`)."""
        self.limiter = RateLimiter(pools)
        for exchange in (rest, pro):
            route_through(exchange, self.limiter, cost=cost, usage=usage, retry_after=retry_after)
        # ccxt.pro keeps its books in floats (a `number = str` would break their ordering);
        # fills are converted exactly from each float's shortest repr, the decimal the venue sent.
        self.venue = CcxtVenue(rest, self.limiter, name=name)
        self.pro = pro
        self.syncs: dict[str, BookSync] = {}
        self.streams: dict[str, CcxtProBook] = {}
        self.fills_errors = 0
        self.catch_up_failures = 0
        self._backoff = Backoff(backoff_s, 30.0, seed)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, symbols: list[str]) -> None:
        await self.venue.load_markets()
        await self.pro.load_markets()
        for symbol in symbols:
            m = self.market(symbol)
            sync = BookSync(rule=SyncRule.SEQUENTIAL, price_decimals=m.price_decimals, size_decimals=m.size_decimals)
            self.syncs[symbol], self.streams[symbol] = sync, CcxtProBook(self.pro, m.unified, sync)
            self._tasks.append(asyncio.create_task(self.streams[symbol].run(), name=f"book {symbol}"))

    def market(self, symbol: str) -> MarketRules:
        return self.venue.market(symbol)

    def book(self, symbol: str) -> OrderBook | None:
        sync = self.syncs.get(symbol)
        return sync.book if sync is not None and sync.state == BookState.SYNCED else None

    def attach(self, tracker: ClientOrderTracker) -> asyncio.Task[None]:
        """Watches our fills on ccxt.pro and hands them to the tracker."""
        task = asyncio.create_task(self._watch_fills(tracker), name="fills")
        self._tasks.append(task)
        return task

    async def _watch_fills(self, tracker: ClientOrderTracker) -> None:
        failures = 0
        while True:
            try:
                trades = await self.pro.watch_my_trades()
                failures = 0
            except ccxt.BaseError as e:
                failures += 1
                self.fills_errors += 1
                log.warning("%s: fills stream: %s: %s; catching up by REST", self.venue.name, type(e).__name__, e)
                await asyncio.sleep(self._backoff.delay(failures))
                await self._catch_up(tracker)
                continue
            reports = []
            for t in trades:
                if (m := self.venue.market_of_unified(t.get("symbol"))) is not None:
                    reports.append(self.venue.trade_report(t, m))
            tracker.apply_trades(reports)

    async def _catch_up(self, tracker: ClientOrderTracker) -> None:
        """Fills missed while the stream was failing, by REST: every trade since the tracker's
        last complete scan, all pages. If the venue cannot answer to the end, the stream goes on
        watching: the next error (or the tracker's own poll) catches up from the same point."""
        if not await tracker.catch_up(self.syncs):
            self.catch_up_failures += 1
            log.warning("%s: fills catch-up incomplete; the next one starts from the same point", self.venue.name)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.limiter.close()
        await self.pro.close()
        await self.venue.exchange.close()

    async def __aenter__(self) -> CcxtConnector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
