"""The lifecycle worker: drives every live user order one step at a time, by its state.

    AWAITING_FUNDS  past its deadline -> TIMEOUT, its payments returned as they arrived
    FUNDED          fix the tranche (what the claim holds) -> ALLOCATING
    ALLOCATING      Allocator.to_exchange(key, ...) until DONE -> ALLOCATED; PoolBook.mint -> ACTIVE
    ACTIVE          a deferred stop -> STOPPING; money added to the claim -> a new tranche
    STOPPING        PoolBook.release until free -> PoolBook.burn -> SETTLING
    SETTLING        Allocator.to_mixin(order id, what the burn credited) until DONE -> PAYING
    PAYING/REFUNDING  the payout worker sends the outbox (users.payouts)

Each step is an external call that is idempotent by its key (the allocation key, the order id)
followed by ONE store transaction that records its result with the state change. A crash between
any two steps leaves the order in a state whose step is simply done again: the external call
answers for the same key, and the store transaction either committed (the state moved on) or not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from mixmaker.funds import accounts as acc
from mixmaker.funds.allocation import AllocationState, Allocator
from mixmaker.funds.ledger import Ledger
from mixmaker.store import Store
from mixmaker.store.base import Transaction
from mixmaker.users.alerts import AlertKind, alert
from mixmaker.users.errors import PoolNotReadyError
from mixmaker.users.intake import RefundReason
from mixmaker.users.orders import OrderBook, OrderEvent, OrderState, TrancheState, UserOrder
from mixmaker.users.payouts import Outbox, PayoutKind
from mixmaker.users.pools_api import PoolBook

log = logging.getLogger("mixmaker.users.lifecycle")

Crash = Callable[[str, str], None]

DRIVEN = (OrderState.AWAITING_FUNDS, OrderState.FUNDED, OrderState.ALLOCATING, OrderState.ACTIVE,
          OrderState.STOPPING, OrderState.SETTLING)


def allocation_key(order_id: str, tranche: int) -> str:
    """The Allocator's idempotency key of an order's tranche: the order id, then `<id>.<n>`."""
    return order_id if tranche == 0 else f"{order_id}.{tranche}"


class OrderWorker:
    def __init__(self, store: Store, ledger: Ledger, orders: OrderBook, outbox: Outbox, allocator: Allocator,
                 pools: PoolBook, *, now_ns: Callable[[], int] = time.time_ns, crash_at: Crash | None = None) -> None:
        self.store, self.ledger, self.orders, self.outbox = store, ledger, orders, outbox
        self.allocator, self.pools = allocator, pools
        self.now_ns = now_ns
        self._crash_at = crash_at or (lambda step, order_id: None)

    async def run_once(self, *, max_steps: int = 8) -> int:
        """Moves every live order as far as it can go now (at most `max_steps` steps each);
        returns how many steps were taken."""
        moved = 0
        for o in self.orders.in_states(*DRIVEN):
            for _ in range(max_steps):
                if not await self.step(o.order_id):
                    break
                moved += 1
        return moved

    async def step(self, order_id: str) -> bool:
        o = self.orders.order(order_id)
        match o.state:
            case OrderState.AWAITING_FUNDS:
                return self._timeout(o)
            case OrderState.FUNDED:
                return self._start_tranche(o, 0, OrderEvent.ALLOCATE)
            case OrderState.ALLOCATING:
                return await self._allocating(o)
            case OrderState.ACTIVE:
                return self._active(o)
            case OrderState.STOPPING:
                return await self._stopping(o)
            case OrderState.SETTLING:
                return await self._settling(o)
            case (OrderState.PAYING | OrderState.SETTLED | OrderState.REFUNDING | OrderState.REFUNDED
                  | OrderState.FAILED):
                return False

    # --- steps --------------------------------------------------------------------------------

    def _timeout(self, o: UserOrder) -> bool:
        if self.now_ns() < o.deadline_ns:
            return False
        with self.store.transaction() as tx:
            fired = self.orders.fire(tx, o.order_id, OrderEvent.TIMEOUT, "deadline", expect=o.state,
                                     detail={"paid": self.orders.paid(tx, o.order_id)})
            if fired.changed:
                self.outbox.queue_order(tx, o.order_id, PayoutKind.RETURN, RefundReason.TIMEOUT.value)
        return fired.changed

    def _unallocated(self, tx: Transaction, order_id: str) -> dict[str, int]:
        return {a: u for a, u in self.ledger.holdings_of(acc.user_order(order_id), tx=tx).items() if u > 0}

    def _start_tranche(self, o: UserOrder, n: int, event: OrderEvent) -> bool:
        with self.store.transaction() as tx:
            amounts = self._unallocated(tx, o.order_id)
            if not amounts:
                return False
            fired = self.orders.fire(tx, o.order_id, event, f"tranche:{n}", expect=o.state, detail={"amounts": amounts},
                                     tranche=n)
            if fired.changed:
                self.orders.start_tranche(tx, o.order_id, n, amounts)
        return fired.changed

    async def _allocating(self, o: UserOrder) -> bool:
        t = self.orders.tranche(self.store, o.order_id, o.tranche)
        assert t is not None, f"order {o.order_id} is allocating tranche {o.tranche} that was never started"
        amounts, state, _ = t
        key = allocation_key(o.order_id, o.tranche)
        if state is TrancheState.SENDING:
            result = await self.allocator.to_exchange(key, o.pool_id, amounts)
            self._crash_at("to_exchange", o.order_id)
            if result is AllocationState.PENDING:
                return False
            with self.store.transaction() as tx:
                if result is AllocationState.FAILED:
                    self.orders.set_tranche(tx, o.order_id, o.tranche, TrancheState.FAILED)
                    self.orders.fire(tx, o.order_id, OrderEvent.ALLOCATION_FAILED, key)
                    return True
                self.orders.set_tranche(tx, o.order_id, o.tranche, TrancheState.ARRIVED)
                self.orders.fire(tx, o.order_id, OrderEvent.ALLOCATED, key, detail={"amounts": amounts})
            self._crash_at("allocated", o.order_id)
        if not self.pools.ready(o.pool_id):
            return False
        try:
            with self.store.transaction() as tx:
                # The move's fees were charged to the order's claim (issue 16): mint what is left.
                held = self.ledger.holdings_of(acc.user_order(o.order_id), tx=tx)
                amounts = {a: min(u, held.get(a, 0)) for a, u in amounts.items()}
                shares = self.pools.mint(tx, o.order_id, o.pool_id, amounts, tranche=o.tranche)
                self.orders.set_tranche(tx, o.order_id, o.tranche, TrancheState.MINTED, shares)
                self.orders.fire(tx, o.order_id, OrderEvent.MINTED, key, detail={"shares": str(shares)})
                self._crash_at("minted", o.order_id)  # inside: the mint rolls back with it
        except PoolNotReadyError as e:
            log.info("order %s: mint waits: %s", o.order_id, e)
            return False
        return True

    def _active(self, o: UserOrder) -> bool:
        if o.stop_requested:
            with self.store.transaction() as tx:
                return self.orders.fire(tx, o.order_id, OrderEvent.STOP, "deferred", expect=o.state).changed
        return self._start_tranche(o, o.tranche + 1, OrderEvent.ALLOCATE)

    async def _stopping(self, o: UserOrder) -> bool:
        if not await self.pools.release(o.order_id):
            return False
        self._crash_at("released", o.order_id)
        try:
            with self.store.transaction() as tx:
                self.orders.fire(tx, o.order_id, OrderEvent.RELEASED, "release")
                credited = self.pools.burn(tx, o.order_id)
                self.orders.set_returns(tx, o.order_id, {a: u for a, u in credited.items() if u > 0})
                self.orders.fire(tx, o.order_id, OrderEvent.BURNED, "burn", detail={"credited": credited})
        except PoolNotReadyError as e:
            log.info("order %s: burn waits: %s", o.order_id, e)
            return False
        return True

    async def _settling(self, o: UserOrder) -> bool:
        amounts = self.orders.returns(o.order_id) or {}
        result = AllocationState.DONE
        if amounts:
            result = await self.allocator.to_mixin(o.order_id, o.pool_id, amounts)
            self._crash_at("to_mixin", o.order_id)
        if result is AllocationState.PENDING:
            return False
        with self.store.transaction() as tx:
            if result is AllocationState.FAILED:
                alert(tx, AlertKind.RETURN_FAILED, o.order_id, f"the funds of order {o.order_id} ({amounts}) could not "
                      f"come back from {o.pool_id}: they stay in the ledger under the order")
                self.orders.fire(tx, o.order_id, OrderEvent.RETURN_FAILED, o.order_id)
                return True
            self.orders.fire(tx, o.order_id, OrderEvent.RETURNED, o.order_id, detail={"amounts": amounts})
            self.outbox.queue_order(tx, o.order_id, PayoutKind.PAYOUT, "")
        return True
