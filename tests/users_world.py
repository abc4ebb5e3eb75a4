"""The user layer assembled on one SQLite file against the Mixin simulator, with a fake Allocator
and a fake PoolBook (the real ones are the pools' and issue 16's). Every object can be dropped and
rebuilt on the same file: that is how the tests simulate a crash between two steps.

The fakes keep no memory of their own: what they did is read back from the ledger (their
postings are keyed), so they survive a rebuild exactly as the real ones must.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from mixin_world import World, make_world
from users_catalog import catalog as make_catalog

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import Flow
from mixmaker.funds.allocation import AllocationState
from mixmaker.funds.ledger import Cause, Ledger, tx_key
from mixmaker.mixin.amounts import to_units
from mixmaker.mixin.payments import Payments
from mixmaker.mixin.snapshots import SnapshotReader
from mixmaker.sim.mixin.setup import BTC, ETH, USDT_ERC20
from mixmaker.store import SqliteStore
from mixmaker.users import memo as m
from mixmaker.users.catalog import Catalog, parse_pool_id
from mixmaker.users.errors import PoolNotReadyError
from mixmaker.users.intake import Intake
from mixmaker.users.lifecycle import OrderWorker
from mixmaker.users.orders import OrderBook
from mixmaker.users.payouts import Outbox, PayoutWorker


@dataclass
class FakeAllocator:
    """Moves holdings wallet <-> exchange:<venue> in the ledger only (the Mixin wallet keeps the
    money, so payouts can be paid from it). `pending[key]` calls answer PENDING first; keys in
    `failing` answer FAILED (nothing moved)."""

    ledger: Ledger
    pending: dict[str, int] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def _move(self, direction: str, key: str, pool_id: str, amounts: Mapping[str, int]) -> AllocationState:
        self.calls.append((direction, key))
        await asyncio.sleep(0)
        if key in self.failing:
            return AllocationState.FAILED
        if self.pending.get(key, 0) > 0:
            self.pending[key] -= 1
            return AllocationState.PENDING
        venue = acc.exchange(parse_pool_id(pool_id)[0])
        src, dst = (acc.WALLET, venue) if direction == "to_exchange" else (venue, acc.WALLET)
        entries = [e for a, u in sorted(amounts.items()) for e in acc.transfer(Flow.MOVE, a, u, src, dst)]
        self.ledger.post_now(tx_key(Cause.MOVE_ARRIVED, direction, key), entries, ref=key)
        return AllocationState.DONE

    async def to_exchange(self, key: str, pool_id: str, amounts: Mapping[str, int]) -> AllocationState:
        return await self._move("to_exchange", key, pool_id, amounts)

    async def to_mixin(self, key: str, pool_id: str, amounts: Mapping[str, int]) -> AllocationState:
        return await self._move("to_mixin", key, pool_id, amounts)


@dataclass
class FakePools:
    """Shares = the order's money, 1:1, no trading. `burn` gives back exactly what was minted
    (less `bot_cut` units of each asset to bot:share, to exercise that account)."""

    ledger: Ledger
    not_ready: set[str] = field(default_factory=set)
    hold: dict[str, int] = field(default_factory=dict)  # order id -> release answers False this many times
    bot_cut: int = 0

    def ready(self, pool_id: str) -> bool:
        return pool_id not in self.not_ready

    def mint(self, tx, order_id: str, pool_id: str, amounts: Mapping[str, int], *, tranche: int = 0) -> int:
        if pool_id in self.not_ready:
            raise PoolNotReadyError(f"{pool_id} has no synced mid")
        key = tx_key(Cause.MINT, order_id) if tranche == 0 else tx_key(Cause.MINT, order_id, str(tranche))
        entries = [e for a, u in sorted(amounts.items())
                   for e in acc.transfer(Flow.MINT, a, u, acc.user_order(order_id), acc.pool(pool_id))]
        self.ledger.post(tx, key, entries, ref=order_id, detail={"pool": pool_id, "shares": sum(amounts.values())})
        return sum(amounts.values())

    async def release(self, order_id: str) -> bool:
        await asyncio.sleep(0)
        if self.hold.get(order_id, 0) > 0:
            self.hold[order_id] -= 1
            return False
        return True

    def _minted(self, tx, order_id: str) -> tuple[str, dict[str, int]]:
        rows = tx.query("SELECT e.account, e.asset, e.units FROM ledger_entries e JOIN ledger_transactions t "
                        "ON t.tx_key = e.tx_key WHERE t.ref = ? AND e.flow = ? AND e.account LIKE 'pool:%'",
                        (order_id, Flow.MINT.value))
        out: dict[str, int] = {}
        pool = ""
        for account, asset, units in rows:
            pool = acc.Account.parse(account).id
            out[asset] = out.get(asset, 0) - units
        return pool, out

    def burn(self, tx, order_id: str) -> dict[str, int]:
        pool_id, minted = self._minted(tx, order_id)
        if not minted:
            return {}
        if pool_id in self.not_ready:
            raise PoolNotReadyError(f"{pool_id} has no synced mid")
        entries = []
        credited = {}
        for a, u in sorted(minted.items()):
            cut = min(self.bot_cut, u)
            credited[a] = u - cut
            entries += acc.transfer(Flow.BURN, a, u - cut, acc.pool(pool_id), acc.user_order(order_id))
            entries += acc.transfer(Flow.BOT_SHARE, a, cut, acc.pool(pool_id), acc.BOT_SHARE)
        self.ledger.post(tx, tx_key(Cause.BURN, order_id), entries, ref=order_id, detail={"pool": pool_id})
        return credited

    def shares(self, order_id: str) -> int:
        return 0


@dataclass
class UserLayer:
    """Every object of the user layer on one database: drop it and build another to 'crash'."""

    world: World
    path: Any
    catalog: Catalog
    now: Callable[[], int]
    crash_at: Callable[[str, str], None] | None = None
    allocator_kw: dict[str, Any] = field(default_factory=dict)
    pools_kw: dict[str, Any] = field(default_factory=dict)
    start_ns: int = 0  # where a fresh snapshot cursor starts

    def __post_init__(self) -> None:
        self.store = SqliteStore(self.path)
        self.ledger = Ledger(self.store)
        self.orders = OrderBook(self.store)
        self.outbox = Outbox(self.store, self.ledger, self.catalog.assets, self.catalog.limits, self.orders)
        self.intake = Intake(self.store, self.ledger, self.catalog, self.orders, self.outbox,
                             app_id=self.world.bot["app_id"])
        self.allocator = FakeAllocator(self.ledger, **self.allocator_kw)
        self.pools = FakePools(self.ledger, **self.pools_kw)
        self.worker = OrderWorker(self.store, self.ledger, self.orders, self.outbox, self.allocator, self.pools,
                                  now_ns=self.now, crash_at=self.crash_at)

    async def poll(self) -> int:
        def handle(tx, snapshot) -> None:
            self.intake.handle(tx, snapshot)
            if self.crash_at is not None:
                self.crash_at("intake", snapshot.snapshot_id)  # inside the page's transaction

        async with self.world.client() as c:
            return await SnapshotReader(c, self.store, start_ns=self.start_ns).poll(handle)

    async def pay_out(self) -> int:
        async with self.world.client() as c:
            payments = Payments(c, self.store, uncertain_backoff_s=0.01, crash_at=self.crash_at, lease_ttl_s=2.0)
            return await PayoutWorker(self.outbox, payments, crash_at=self.crash_at).run_once()

    async def cycle(self, rounds: int = 6) -> None:
        """Intake, the order worker and the payout worker, a few times over."""
        for _ in range(rounds):
            await self.poll()
            await self.worker.run_once()
            await self.pay_out()

    def close(self) -> None:
        self.store.close()


class Clock:
    def __init__(self, start: int = 0) -> None:
        self.t = start

    def __call__(self) -> int:
        return self.t


def new_layer(world: World, path, *, catalog: Catalog | None = None, clock: Clock | None = None, **kw: Any) -> UserLayer:
    return UserLayer(world, path, catalog or make_catalog(), clock or Clock(), **kw)


def create_text(order_id: str, *, base: int = 0, quote: int = 0, market: str = "binance:BTC/USDT",
                preset: str = "tight") -> bytes:
    return m.to_extra(m.CreateMemo(order_id, market, preset, base, quote))


def two_payers(seed: int) -> Any:
    """A Mixin simulator world with alice and bob, each holding BTC, USDT (ERC-20) and ETH to pay with."""
    w = make_world(seed=seed)
    w.alice = w.state.add_user(full_name="alice")
    w.bob = w.state.add_user(full_name="bob")
    for u in (w.alice, w.bob):
        w.state.deposit(u.user_id, BTC, to_units("10"))
        w.state.deposit(u.user_id, USDT_ERC20, to_units("100000"))
        w.state.deposit(u.user_id, ETH, to_units("10"))
    return w


def pay(w: Any, who: Any, asset: str, amount: str, extra: bytes) -> Any:
    """`who` sends `amount` of `asset` to the bot with `extra` as the memo."""
    return w.state.user_sends(who.user_id, w.bot["app_id"], asset, to_units(amount), extra)


def bal(w: Any, who: Any, asset: str) -> int:
    return int(w.state.balance(who.user_id, asset))


def oid() -> str:
    return str(uuid.uuid4())
