"""The shadow order ledger: every order journaled before it is sent, every uncertain outcome
resolved by asking the venue, every fill counted once.

    tracker = ClientOrderTracker(venue, SqliteStore("mixmaker.db"), fill_sink=ledger.on_fill)
    await tracker.start()                      # replay the journal, reconcile with the venue
    cid = await tracker.create("BTCUSDT", Side.BUY, price=6_165_970, quantity=1_000)
    await tracker.cancel(cid)
    tracker.exposure("BTCUSDT")                # open + in-flight, never below the truth

The state machine itself is Rust (`mixmaker._core.OrderSet`): ten states, nine events, every
pair decided by one table; invalid transitions are typed errors. States, events and sides are
the Rust enums `OrderState`, `OrderEvent` and `Side`; `STATES` and `EVENTS` are their members in
the table's order.
"""

from mixmaker._core import ClientIdGenerator, Exposure, OrderEvent, OrderSet, OrderState, OrderView, Outcome, Side
from mixmaker.orders.errors import (
    ClientIdError,
    ExchangeIdConflictError,
    InvalidTransitionError,
    JournalCorruptError,
    OrderError,
    OrderInputError,
    OrderNotFoundError,
    OrderRejectedError,
    TrackerNotReadyError,
    UnknownOrderError,
    VenueError,
    VenueUnavailableError,
)
from mixmaker.orders.journal import FillEvent, OrderJournal
from mixmaker.orders.protocol import OrderReport, OrderRequest, OrderVenue, TradeReport
from mixmaker.orders.tracker import ClientOrderTracker

STATES: tuple[OrderState, ...] = OrderState.ALL
EVENTS: tuple[OrderEvent, ...] = OrderEvent.ALL

__all__ = [
    "EVENTS",
    "STATES",
    "ClientIdError",
    "ClientIdGenerator",
    "ClientOrderTracker",
    "ExchangeIdConflictError",
    "Exposure",
    "FillEvent",
    "InvalidTransitionError",
    "JournalCorruptError",
    "OrderError",
    "OrderEvent",
    "OrderInputError",
    "OrderJournal",
    "OrderNotFoundError",
    "OrderRejectedError",
    "OrderReport",
    "OrderRequest",
    "OrderSet",
    "OrderState",
    "OrderVenue",
    "OrderView",
    "Outcome",
    "Side",
    "TrackerNotReadyError",
    "TradeReport",
    "UnknownOrderError",
    "VenueError",
    "VenueUnavailableError",
]
