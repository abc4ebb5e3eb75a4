"""The one interface strategies and executors use, whatever the venue.

Two implementations: `BinanceSpotConnector` (native picows streams) and `CcxtConnector` (any
ccxt venue: REST plus ccxt.pro streams). Orders go through a `ClientOrderTracker` on `venue`;
everything venue-specific stays behind this face.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from mixmaker.book import OrderBook
from mixmaker.connectors.account import VenueAccount
from mixmaker.connectors.limiter import RateLimiter
from mixmaker.markets import MarketRules
from mixmaker.orders import ClientOrderTracker


@runtime_checkable
class Connector(Protocol):
    venue: VenueAccount  # the tracker's OrderVenue; market rules, balances, funds, histories
    limiter: RateLimiter  # the account's one rate limiter

    async def start(self, symbols: list[str]) -> None:
        """Loads the markets and starts keeping a live book per symbol."""

    def market(self, symbol: str) -> MarketRules:
        """Tick, lot, minimums and the integer scales of a market."""

    def book(self, symbol: str) -> OrderBook | None:
        """The synced book, or None while it is not: never quote on None."""

    def attach(self, tracker: ClientOrderTracker) -> object:
        """Feeds the tracker's fills and order updates from the venue's private stream."""

    async def close(self) -> None: ...
