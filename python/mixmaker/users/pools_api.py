"""The seam between user orders and pools: what the order lifecycle worker needs from the pools.

`mixmaker.users.pools` implements `PoolBook`; the lifecycle worker (`mixmaker.users.orders`) only
calls these methods, so either side can change inside without the other noticing, and the worker's
tests use a fake.

Contract (every method idempotent by its key, so the worker may repeat a step after a crash):
- `mint(tx, order_id, pool_id, amounts, tranche=)`: inside the caller's store transaction, moves
  `amounts` (ledger units per asset symbol; the funds just credited on the pool's exchange account)
  from `order:<id>` to `pool:<pool id>` and issues the order its shares at the pool's value at the
  synced mid BEFORE the new money is added. Ledger key `tx_key(Cause.MINT, order_id)` for tranche
  0, `tx_key(Cause.MINT, order_id, str(tranche))` for the n-th top-up; ref = order_id. Returns the
  shares minted by that tranche (the same number when repeated). Raises `PoolNotReadyError` when
  the pool cannot be valued now (the worker retries later; nothing was written).
- `release(order_id)`: frees the order's part of the pool on the exchange (cancels what must be
  cancelled so the free balance covers it) without stopping the pool. True once it is free; call
  again while False.
- `burn(tx, order_id)`: inside the caller's store transaction, burns all the order's shares and
  credits its entitlement less the bot's share back to `order:<id>` (ledger key
  `tx_key(Cause.BURN, order_id)`, ref = order_id). Returns the amounts credited to the order per
  asset (the same when repeated; {} if the order holds no shares). Raises `PoolNotReadyError` like
  `mint`.
- `ready(pool_id)`: the pool runs and can be valued now (its book is synced).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from mixmaker.store.base import Transaction


class PoolBook(Protocol):
    def ready(self, pool_id: str) -> bool: ...

    def mint(self, tx: Transaction, order_id: str, pool_id: str, amounts: Mapping[str, int], *,
             tranche: int = 0) -> int: ...

    async def release(self, order_id: str) -> bool: ...

    def burn(self, tx: Transaction, order_id: str) -> dict[str, int]: ...

    def shares(self, order_id: str) -> int:
        """The order's shares now (0 before its first mint and after its burn)."""
        ...
