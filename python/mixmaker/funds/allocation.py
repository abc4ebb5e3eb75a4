"""Moving a user order's funds between the bot's Mixin wallet and a pool's exchange account.

The `Allocator` protocol is the seam between the user layer (which decides WHEN an order's funds
go to the exchange and come back) and the funds layer (which knows HOW: issue 15's
`SimDirectAllocator` stand-in, issue 16's real moves through the chain).

An allocator moves HOLDINGS only (wallet -> transit:<move id> -> exchange:<account> and back, each
step a ledger transaction keyed by its move id); whose the money is (the user order's claim, the
pool's claim) is the user layer's business. Every call is idempotent by `key`: calling again with
the same key reports the state of the same move and never starts a second one, so the caller may
call after a crash, after a timeout, or on every tick until it is DONE or FAILED.
"""

from __future__ import annotations

import enum
from typing import Mapping, Protocol


class AllocationState(enum.Enum):
    PENDING = "pending"  # on its way (or not started yet): call again later with the same key
    DONE = "done"  # the amounts are where they were sent, and the ledger says so
    FAILED = "failed"  # the move did not happen for good; the holdings are back where they started


class Allocator(Protocol):
    async def to_exchange(self, key: str, pool_id: str, amounts: Mapping[str, int]) -> AllocationState:
        """Moves `amounts` (ledger units per asset symbol) from the Mixin wallet to the exchange
        account of `pool_id`. `key` is the user order id for an order's first funding and
        `<order id>.<n>` for its n-th top-up (an ADD to an active order)."""
        ...

    async def to_mixin(self, key: str, pool_id: str, amounts: Mapping[str, int]) -> AllocationState:
        """Moves `amounts` back from the pool's exchange account to the Mixin wallet. `key` is the
        user order id (an order comes back once, when it is stopped)."""
        ...
