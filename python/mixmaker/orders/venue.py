"""What the tracker needs from a venue: five calls and three report shapes, in exact integers
(the market's scaled price and size units). Connectors implement `OrderVenue`; tests use a fake.

Each call either returns, raises a definitive `OrderRejectedError` / `OrderNotFoundError`, or
raises `VenueUnavailableError` when the outcome is unknown (see `mixmaker.orders.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from mixmaker.frozen import quick_init

Side = Literal["buy", "sell"]
VenueStatus = Literal["open", "partially_filled", "filled", "canceled", "expired", "rejected"]


@quick_init
@dataclass(frozen=True, slots=True)
class OrderRequest:
    client_id: str
    symbol: str
    side: Side
    price: int
    quantity: int


@quick_init
@dataclass(frozen=True, slots=True)
class OrderReport:
    """The venue's view of one order (a REST answer or a user-stream update)."""

    client_id: str | None
    exchange_id: str
    symbol: str
    side: Side
    status: VenueStatus
    price: int
    quantity: int
    filled: int


@quick_init
@dataclass(frozen=True, slots=True)
class TradeReport:
    """One execution of one of our orders. `client_id` may be missing (Binance myTrades)."""

    trade_id: str
    exchange_id: str
    client_id: str | None
    symbol: str
    side: Side
    price: int
    qty: int
    fee: int
    fee_asset: str
    is_maker: bool
    time_ms: int = 0


class OrderVenue(Protocol):
    name: str

    async def create_order(self, req: OrderRequest) -> OrderReport: ...

    async def cancel_order(self, symbol: str, client_id: str, exchange_id: str | None) -> OrderReport: ...

    async def fetch_order(self, symbol: str, client_id: str) -> OrderReport: ...

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderReport]: ...

    async def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[TradeReport]: ...
