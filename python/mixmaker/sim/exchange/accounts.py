"""Balances per account and asset: free and locked, exact Decimals, fees collected apart.

Every move is between two buckets, so the sum over all accounts plus collected fees only
changes through `credit`/`debit` (deposits and withdrawals). The market account, which stands
for every other participant of a feed, is unlimited: it may go negative and is never refused.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from mixmaker.sim.exchange.errors import InsufficientBalance

ZERO = Decimal(0)
MARKET = "market"  # other participants' liquidity (feed or synthetic generator)


class Accounts:
    def __init__(self) -> None:
        self._free: dict[str, defaultdict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        self._locked: dict[str, defaultdict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        self.fees: defaultdict[str, Decimal] = defaultdict(Decimal)
        self.unlimited: set[str] = {MARKET}
        self.touched: set[tuple[str, str]] = set()  # (account, asset) changed since last `take_touched`

    def free(self, account: str, asset: str) -> Decimal:
        return self._free[account][asset]

    def locked(self, account: str, asset: str) -> Decimal:
        return self._locked[account][asset]

    def assets(self, account: str) -> list[str]:
        return sorted(set(self._free[account]) | set(self._locked[account]))

    def total(self, asset: str) -> Decimal:
        """All of an asset held anywhere in the venue, fees included."""
        held = sum((b[asset] for b in self._free.values()), ZERO)
        held += sum((b[asset] for b in self._locked.values()), ZERO)
        return held + self.fees[asset]

    def credit(self, account: str, asset: str, amount: Decimal) -> None:
        """Money entering the venue (deposit, initial funding)."""
        self._free[account][asset] += amount
        self.touched.add((account, asset))

    def debit(self, account: str, asset: str, amount: Decimal) -> None:
        """Money leaving the venue (withdrawal)."""
        self._require_free(account, asset, amount)
        self._free[account][asset] -= amount
        self.touched.add((account, asset))

    def lock(self, account: str, asset: str, amount: Decimal) -> None:
        self._require_free(account, asset, amount)
        self._free[account][asset] -= amount
        self._locked[account][asset] += amount
        self.touched.add((account, asset))

    def unlock(self, account: str, asset: str, amount: Decimal) -> None:
        if amount:
            self._locked[account][asset] -= amount
            self._free[account][asset] += amount
            self.touched.add((account, asset))

    def pay(self, payer: str, payee: str, asset: str, amount: Decimal, fee: Decimal, from_locked: bool) -> None:
        """Move `amount` from payer (locked or free) to payee, keeping `fee` of it for the venue."""
        if from_locked:
            self._locked[payer][asset] -= amount
        else:
            self._require_free(payer, asset, amount)
            self._free[payer][asset] -= amount
        self._free[payee][asset] += amount - fee
        self.fees[asset] += fee
        self.touched.update(((payer, asset), (payee, asset)))

    def take_touched(self) -> set[tuple[str, str]]:
        touched, self.touched = self.touched, set()
        return touched

    def _require_free(self, account: str, asset: str, amount: Decimal) -> None:
        if account not in self.unlimited and self._free[account][asset] < amount:
            raise InsufficientBalance()
