"""What the tracker needs from a venue: five calls and three report shapes, in exact integers
(the market's scaled price and size units). Connectors implement `OrderVenue`; tests use a fake.

Each call either returns, raises a definitive `OrderRejectedError` / `OrderNotFoundError`, or
raises `VenueUnavailableError` when the outcome is unknown (see `mixmaker.orders.errors`).

Two optional abilities make the tracker surer and cheaper where a venue has them:
- `OrderTradesVenue`: the trades of one order (Binance `myTrades?orderId=`), instead of a
  symbol's whole history since the order was made;
- `RequestWindowVenue`: the venue refuses a signed request whose timestamp is older than a window
  when it arrives (Binance `recvWindow`), and the adapter signs a create with exactly
  `OrderRequest.timestamp_ms`. Past that window, an order the venue does not know was never
  placed and never will be: the tracker can fail it instead of keeping it LOST.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import NewType, Protocol, runtime_checkable

from mixmaker._core import Side as Side  # the one definition (the core's), re-exported with the protocol
from mixmaker.frozen import quick_init
from mixmaker.money import to_units


class VenueStatus(enum.Enum):
    """An order's status as a venue reports it (not the tracker's `OrderState`: the venue knows
    nothing of our pending or lost states). Adapters map their venue's words onto these."""

    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    # Members are singletons compared by identity: hash them by identity too, in C (Enum's own
    # `__hash__` is a Python function, and every order report is looked up by its status).
    __hash__ = object.__hash__


#: A trading fee is an integer of 10**-FEE_DECIMALS of its own asset (`fee_asset`), on every
#: venue: venues quote fees to 8 decimals, but a fee rate times an exact notional can have more
#: (the order set sums fees as i64: up to 9.2 million of an asset).
FEE_DECIMALS = 12
FeeAmount = NewType("FeeAmount", int)
"""A fee in integer units of 10**-FEE_DECIMALS (1e-12) of its asset. Never a market's value units."""


def fee_amount(value: Decimal | str | int, *, what: str = "fee") -> FeeAmount:
    """A fee as the venue states it (decimal text in its asset) as a `FeeAmount`."""
    return FeeAmount(to_units(value, FEE_DECIMALS, what=what))


@quick_init
@dataclass(frozen=True, slots=True)
class OrderRequest:
    client_id: str
    symbol: str
    side: Side
    price: int
    quantity: int
    # The venue-clock time (ms) the request is signed with. A `RequestWindowVenue` signs the
    # create with exactly this, or refuses to send it; other venues ignore it.
    timestamp_ms: int | None = None
    # Who placed it (e.g. a pool id), for a venue wrapper that attributes fills; venues ignore it.
    owner: str | None = None


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
    """One execution of one of our orders. `client_id` may be missing (Binance myTrades). `fee`
    is in 1e-12 of `fee_asset` (`FeeAmount`), whatever the market's scales."""

    trade_id: str
    exchange_id: str
    client_id: str | None
    symbol: str
    side: Side
    price: int
    qty: int
    fee: FeeAmount
    fee_asset: str
    is_maker: bool
    time_ms: int = 0


class OrderVenue(Protocol):
    name: str

    async def create_order(self, req: OrderRequest) -> OrderReport: ...

    async def cancel_order(self, symbol: str, client_id: str, exchange_id: str | None) -> OrderReport: ...

    async def fetch_order(self, symbol: str, client_id: str) -> OrderReport: ...

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderReport]: ...

    async def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[TradeReport]:
        """Every trade of ours in `symbol` at or after `since_ms` (venue clock; None: the whole
        history), oldest first, however many pages that takes (`mixmaker.orders.trade_pages`).
        Raises `VenueUnavailableError` (or its `TradeHistoryError`) rather than return part of it."""
        ...


@runtime_checkable
class OrderTradesVenue(Protocol):
    async def fetch_order_trades(self, symbol: str, exchange_id: str, since_ms: int | None = None) -> list[TradeReport]:
        """Every trade of one order (all pages). `since_ms` is a hint for venues that can only
        page a symbol's history by time; a venue that asks by order id ignores it."""
        ...


@runtime_checkable
class RequestWindowVenue(Protocol):
    #: How long after its timestamp the venue still accepts a signed create (ms), exactly as
    #: signed; None: this venue has no such window (absence is never proven).
    recv_window_ms: int | None

    def clock_ms(self) -> int:
        """The venue's clock as we track it: ours less the measured offset. Measured from a
        server time taken during a request, it lags the venue by at most that request's round trip,
        so "past the window by this clock" is past it by the venue's too (drift since the
        measurement is what the tracker's `unsent_margin_ms` is for)."""
        ...


def venue_clock_ms(venue: object) -> int:
    """The venue's clock if the venue tracks one, else ours."""
    clock = getattr(venue, "clock_ms", None)
    return int(clock()) if callable(clock) else time.time_ns() // 1_000_000


def recv_window_of(venue: object) -> int | None:
    window = getattr(venue, "recv_window_ms", None)
    return window if isinstance(window, int) and window > 0 else None
