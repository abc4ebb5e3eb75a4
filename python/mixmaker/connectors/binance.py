"""One Binance spot account as one object: what strategies and executors use.

- `venue`: the tracker's `OrderVenue` and the account's REST calls (ccxt, exact numbers), funds
  included (`deposit_address`, `withdraw`, histories).
- `book(symbol)`: the live book, or None while it is not synced (never stale data).
- `attach(tracker)`: the user data stream feeds the tracker's fills and order updates, with a
  REST catch-up after every reconnect.
- `limiter`: the one rate limiter every request of this account waits in, REST and WebSocket,
  with at most `max_in_flight` of them on the wire at once (see `binance_limits.MAX_IN_FLIGHT`).

The API secret stays in `ApiCredentials`: ccxt signs through it (`ccxt_sealed`), and nothing
here prints the key either (ccxt's verbose output is forced off, its log lines masked).

Venue-specific details (URLs, signing, weights, error codes) stay in here and in the modules
it composes. `BinanceEndpoints.LIVE` is Binance itself; tests and the demo pass the local
simulator's endpoints.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, NoReturn

import ccxt.async_support as ccxt

from mixmaker.book import BookState, BookSync, OrderBook, SyncRule
from mixmaker.connectors import binance_limits as bl
from mixmaker.connectors.binance_depth import DepthStream
from mixmaker.connectors.binance_user import UserStream
from mixmaker.connectors.ccxt_account import CcxtVenue
from mixmaker.connectors.ccxt_routing import route_through
from mixmaker.connectors.ccxt_sealed import sealed_exchange
from mixmaker.connectors.credentials import ApiCredentials
from mixmaker.connectors.limiter import Pool, RateLimiter
from mixmaker.markets import MarketRules
from mixmaker.orders import ClientOrderTracker


@dataclass(frozen=True, slots=True)
class BinanceEndpoints:
    rest: str  # scheme://host[:port], without /api/v3
    ws_market: str  # market streams, without /ws
    ws_api: str  # the WebSocket API, full URL

    def ccxt_urls(self) -> dict[str, Any]:
        return {"public": f"{self.rest}/api/v3", "private": f"{self.rest}/api/v3", "sapi": f"{self.rest}/sapi/v1",
                "ws": {"spot": f"{self.ws_market}/stream/ws", "ws-api": {"spot": self.ws_api}}}


LIVE = BinanceEndpoints("https://api.binance.com", "wss://stream.binance.com:9443", "wss://ws-api.binance.com:443/ws-api/v3")


class BinanceSpotConnector:
    def __init__(self, credentials: ApiCredentials, endpoints: BinanceEndpoints = LIVE, *,
                 pools: list[Pool] | None = None, timeout_ms: int = 10_000, name: str = "binance",
                 max_in_flight: int | None = bl.MAX_IN_FLIGHT, headroom: float = bl.HEADROOM) -> None:
        """`pools`: the account's limits (Binance spot's by default); `max_in_flight`: requests
        on the wire at once (None: no cap); `headroom`: the fraction of each limit left unused."""
        self.endpoints = endpoints
        self.credentials = credentials
        self.name = name
        self.limiter = RateLimiter(pools or bl.spot_pools(), max_in_flight=max_in_flight, headroom=headroom)
        exchange = sealed_exchange(ccxt.binance, credentials, {
            "urls": {"api": endpoints.ccxt_urls()},
            # Open orders without a symbol cost 80 weight; the limiter charges that, so ccxt's
            # warning (an exception) is off.
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False,
                        "fetchOpenOrders": {"warnWithoutSymbol": False}},
            "timeout": timeout_ms,
        })
        route_through(exchange, self.limiter, cost=bl.request_cost, usage=bl.usage_from_headers, retry_after=bl.retry_after_s)
        self.venue = CcxtVenue(exchange, self.limiter, name=name)
        self.syncs: dict[str, BookSync] = {}
        self.depth: dict[str, DepthStream] = {}
        self.user: UserStream | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, symbols: list[str]) -> None:
        """Loads the markets and starts a depth stream per symbol (books sync in the background)."""
        await self.venue.load_markets()
        for symbol in symbols:
            m = self.market(symbol)
            sync = BookSync(rule=SyncRule.BINANCE_SPOT, price_decimals=m.price_decimals, size_decimals=m.size_decimals)
            stream = DepthStream(sync, symbol, ws_url=self.endpoints.ws_market, rest_url=self.endpoints.rest,
                                 limiter=self.limiter)
            self.syncs[symbol], self.depth[symbol] = sync, stream
            self._tasks.append(asyncio.create_task(stream.run(), name=f"depth {symbol}"))

    def __repr__(self) -> str:
        return f"BinanceSpotConnector(name={self.name!r}, rest={self.endpoints.rest!r}, symbols={sorted(self.syncs)})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:  # it holds the credentials and live sockets: nothing to copy
        raise TypeError("BinanceSpotConnector cannot be pickled")

    def market(self, symbol: str) -> MarketRules:
        return self.venue.market(symbol)

    def book(self, symbol: str) -> OrderBook | None:
        """The synced book, or None: a book that is not synced must not be quoted on."""
        sync = self.syncs.get(symbol)
        return sync.book if sync is not None and sync.state == BookState.SYNCED else None

    def attach(self, tracker: ClientOrderTracker) -> UserStream:
        """Feeds `tracker` from the user data stream (fills, order updates), catching up by REST
        after every reconnect."""
        if self.user is not None:
            raise RuntimeError(f"{self.venue.name}: a tracker is already attached")

        async def catch_up() -> None:
            await tracker.catch_up(self.syncs or self.venue.markets)  # every page since its last scan
            await tracker.poll()

        self.user = UserStream(self.credentials, ws_api_url=self.endpoints.ws_api, limiter=self.limiter,
                               markets=self.venue.markets, now_ms=self.venue.exchange.nonce,
                               on_trade=tracker.on_trade, on_order=tracker.on_order_update, on_resubscribed=catch_up)
        self._tasks.append(asyncio.create_task(self.user.run(), name="user stream"))
        return self.user

    async def close(self) -> None:
        for stream in self.depth.values():
            stream.close()
        if self.user is not None:
            self.user.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.limiter.close()
        await self.venue.exchange.close()

    async def __aenter__(self) -> BinanceSpotConnector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
