"""A venue account as the layers above the connectors see it: the order protocol the tracker
drives, the market rules, balances and the funds calls (deposit addresses, deposits and
withdrawals), all in exact numbers. `Connector.venue` is typed by `VenueAccount`; `CcxtVenue`
implements it for every ccxt venue.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from mixmaker.markets import MarketRules
from mixmaker.orders.protocol import OrderVenue

__all__ = ["Balance", "DepositAddress", "Transfer", "VenueAccount"]


@dataclass(frozen=True, slots=True)
class Balance:
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class DepositAddress:
    asset: str
    address: str
    tag: str | None
    network: str | None


@dataclass(frozen=True, slots=True)
class Transfer:
    """A deposit or a withdrawal as the venue reports it. `request_id` is our idempotency key
    (a withdrawal's `withdrawOrderId`), None for deposits."""

    exchange_id: str
    request_id: str | None
    asset: str
    amount: Decimal
    fee: Decimal
    address: str | None
    status: str  # ccxt's: pending, ok, failed, canceled
    txid: str | None
    time_ms: int


@runtime_checkable
class VenueAccount(OrderVenue, Protocol):
    """One account on one venue. Each call answers, or raises the order protocol's errors
    (`OrderRejectedError`: refused, nothing done; `VenueUnavailableError`: outcome unknown).
    The order protocol's optional abilities (`OrderTradesVenue`, `RequestWindowVenue`) are
    detected where they are used, as the tracker does."""

    markets: dict[str, MarketRules]  # by the venue's symbol, once `load_markets` ran

    async def load_markets(self) -> dict[str, MarketRules]: ...

    def market(self, symbol: str) -> MarketRules:
        """The rules of a loaded market; `MarketRulesError` if it is not one."""
        ...

    async def fetch_balances(self) -> dict[str, Balance]: ...

    async def deposit_address(self, asset: str, network: str | None = None) -> DepositAddress: ...

    async def deposits(self, asset: str | None = None, since_ms: int | None = None) -> list[Transfer]: ...

    async def withdrawals(self, asset: str | None = None, since_ms: int | None = None) -> list[Transfer]: ...

    async def find_withdrawal(self, asset: str, request_id: str) -> Transfer | None: ...

    async def withdraw(self, request_id: str, asset: str, amount: Decimal, address: str, *,
                       tag: str | None = None, network: str | None = None) -> Transfer:
        """Pays out at most once per `request_id` (the venue's idempotency key)."""
        ...
