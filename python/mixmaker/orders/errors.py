"""Typed errors of order tracking.

Venue errors come in two kinds, and the tracker treats them very differently:
- definitive answers (`OrderRejectedError`, `OrderNotFoundError`): the venue said so;
- uncertain outcomes (`VenueUnavailableError`: timeouts, disconnects, 5xx, 429): the request may
  or may not have acted. These are never read as "rejected" or "not found"; the tracker asks
  the venue again.
"""

from __future__ import annotations

from mixmaker._core import (
    ClientIdError,
    ExchangeIdConflictError,
    InvalidTransitionError,
    OrderError,
    OrderInputError,
    UnknownOrderError,
)
from mixmaker.errors import MixmakerError


class VenueError(MixmakerError):
    """Base of what a venue adapter raises to the tracker."""


class OrderRejectedError(VenueError):
    """The venue definitively refused the request (bad price, insufficient balance, ...)."""

    def __init__(self, message: str, code: int | str | None = None) -> None:
        super().__init__(message if code is None else f"{message} (code {code})")
        self.code = code


class OrderNotFoundError(VenueError):
    """The venue definitively answered that it does not know this order."""


class VenueUnavailableError(VenueError):
    """No definitive answer: timeout, disconnect, 5xx, rate limit. The request may have acted."""


class TrackerNotReadyError(MixmakerError, RuntimeError):
    """The tracker has not finished startup reconciliation: nothing may trade yet."""


class JournalCorruptError(MixmakerError, RuntimeError):
    """The durable order journal does not replay through the state machine: do not trade on it."""


__all__ = [
    "ClientIdError",
    "ExchangeIdConflictError",
    "InvalidTransitionError",
    "JournalCorruptError",
    "OrderError",
    "OrderInputError",
    "OrderNotFoundError",
    "OrderRejectedError",
    "TrackerNotReadyError",
    "UnknownOrderError",
    "VenueError",
    "VenueUnavailableError",
]
