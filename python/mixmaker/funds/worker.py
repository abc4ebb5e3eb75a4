"""The funds layer at work: its parts on one store, the start-up comparison, and its rounds.

    funds = FundsWorker(store, ledger, assets, payments, {"binance": venue}, catch_up={"binance": ...})
    intake = Intake(..., own_deposits=funds.snapshots)       # the user layer books our arrivals
    orders = OrderWorker(..., allocator=funds.mover, ...)    # and moves through our mover
    await funds.start(poll_intake)                           # nothing moves before this returns
    while True:
        await funds.follow()                                 # before intake: hashes known first
        await funds.poll_intake(poll_intake)                 # reader.poll(intake.handle); see below
        await orders.run_once(); await funds.move(); await payouts.run_once()

Each round asks the venues about the moves in flight once (`follow`); `move` does not ask again
(`run_once` is both, for a caller that has no intake between them). `poll_intake` may raise
`DepositNotYetKnown` (a deposit that may be one of our withdrawals whose hash is not known yet):
`funds.poll_intake(...)` then follows the moves and polls again.

At start, nothing moves until: the asset map matches Mixin and the exchanges; the deposit
addresses are fetched and match the stored ones; the payments a previous run left are finished;
every move in flight was asked about at its venue; intake has read to the end; every move's
transit account holds what its state says and every user order's request agrees with its move;
and a first reconciliation compared the ledger with
Mixin and the exchanges (its differences count as the first of two).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mixmaker.funds import alerts, halts
from mixmaker.funds.addresses import AddressBook, AddressChangedError
from mixmaker.funds.alerts import FundsAlert
from mixmaker.funds.arrivals import DepositNotYetKnown, FundsSnapshots
from mixmaker.funds.assets import AssetMap, check_assets
from mixmaker.funds.confirm import ConfirmWorker
from mixmaker.funds.ledger import Ledger
from mixmaker.funds.mover import FundsMover, MoverConfig
from mixmaker.funds.moves import MoveBook, Timing
from mixmaker.funds.outcomes import Outcomes
from mixmaker.funds.reconcile import CatchUp, Check, Reconciler, request_problems, transit_problems
from mixmaker.funds.requests import Requests
from mixmaker.mixin.errors import MixinError
from mixmaker.mixin.payments import Payments
from mixmaker.orders.errors import VenueError
from mixmaker.store import Store
from mixmaker.store.lease import LeaseError

log = logging.getLogger("mixmaker.funds.worker")


@dataclass(frozen=True)
class FundsConfig:
    mover: MoverConfig = field(default_factory=MoverConfig)
    timing: Timing = field(default_factory=Timing)
    reconcile_every_s: float = 60.0
    fee_payers: frozenset[str] = frozenset()  # Mixin users whose payments fund bot:fees
    defer_s: float = 600.0  # how long a deposit that may be ours waits for its move's hash


class FundsWorker:
    def __init__(self, store: Store, ledger: Ledger, assets: AssetMap, payments: Payments, venues: Mapping[str, Any],
                 *, config: FundsConfig | None = None, catch_up: Mapping[str, CatchUp] | None = None,
                 now_ns: Callable[[], int] = time.time_ns, crash_at: Callable[[str, str], None] | None = None) -> None:
        self.store, self.ledger, self.assets, self.payments = store, ledger, assets, payments
        self.venues = dict(venues)
        self.config = config or FundsConfig()
        self.now_ns = now_ns
        assets.register(ledger)
        alerts.migrate(store)
        halts.migrate(store)
        self.addresses = AddressBook(store)
        self.moves = MoveBook(store, ledger, self.config.timing)
        self.requests = Requests(store)
        self.outcomes = Outcomes(self.moves, self.requests, self.config.mover.retry)
        self.mover = FundsMover(store, ledger, assets, self.moves, self.requests, self.outcomes, self.addresses,
                                payments, self.venues, self.config.mover, now_ns=now_ns, crash_at=crash_at)
        self.confirm = ConfirmWorker(store, self.moves, self.outcomes, assets, payments, self.venues, now_ns=now_ns,
                                     crash_at=crash_at)
        self.snapshots = FundsSnapshots(ledger, assets, self.moves, self.outcomes, self.addresses,
                                        fee_payers=self.config.fee_payers, defer_s=self.config.defer_s, now_ns=now_ns)
        self.reconciler = Reconciler(store, ledger, assets, self.moves, payments.client, self.venues,
                                     catch_up=catch_up, now_ns=now_ns)
        self._last_check = 0.0
        self.started = False

    async def start(self, poll_intake: Callable[[], Awaitable[Any]] | None = None) -> Check:
        """The start-up comparison; moves are allowed once it passed (`mover.ready`). Raises
        `AssetCheckError` when the asset map does not match the venues."""
        self.mover.networks = await check_assets(self.assets, self.payments.client, self.venues)
        await self.refresh_addresses()
        try:
            await self.payments.recover()
        except (MixinError, LeaseError) as e:
            log.warning("payments left unfinished by a previous run: %s (finished later)", e)
        await self.confirm.run_once()
        if poll_intake is not None:
            await self.poll_intake(poll_intake)
        problems = transit_problems(self.ledger, self.moves) + request_problems(self.store, self.requests, self.moves)
        if problems:
            with self.store.transaction() as tx:
                for p in problems:
                    account = p.split(" ", 1)[0]
                    halts.raise_halt(tx, halts.HaltKind.RECONCILIATION, account, "*", 0,
                                     f"at start: {p}; moves halt until an operator clears it")
                    alerts.alert(tx, FundsAlert.RECONCILIATION, f"start:{account}", p)
        check = await self.reconciler.check()
        self._last_check = time.monotonic()
        self.mover.ready = True
        self.started = True
        return check

    async def refresh_addresses(self) -> None:
        """Fetches every deposit address (exchange and Mixin) and checks it against the stored one;
        a change is an alert and a halt, never a silent switch."""
        chains: dict[str, str] = {}
        for spec in self.assets:
            for account, va in sorted(spec.venues.items()):
                if account not in self.venues:
                    continue
                try:
                    await self.addresses.exchange_address(self.venues[account], account, spec)
                    if spec.mixin_asset_id not in chains:
                        chains[spec.mixin_asset_id] = str((await self.payments.client.asset(spec.mixin_asset_id))
                                                          ["chain_id"])
                    await self.addresses.mixin_entry(self.payments.client, spec, chains[spec.mixin_asset_id], va.network)
                except AddressChangedError as e:
                    log.error("%s", e)

    async def poll_intake(self, poll: Callable[[], Awaitable[Any]], *, tries: int = 5) -> Any:
        """Runs `poll` (the snapshot reader over intake); a deposit waiting for its move's hash
        makes the confirmation worker ask the venues, then `poll` runs again."""
        for n in range(tries):
            try:
                return await poll()
            except DepositNotYetKnown as e:
                log.info("intake waits for a move's hash: %s", e)
                await self.confirm.run_once()
                if n == tries - 1:
                    return None
        return None

    async def follow(self) -> int:
        """Asks the venues about every move in flight (the confirmation worker's round); returns
        how many changed."""
        return await self.confirm.run_once()

    async def run_once(self) -> None:
        """One round: follow the moves, move what is due, reconcile when it is time."""
        await self.follow()
        await self.move()

    async def move(self) -> None:
        """Moves what is due and reconciles when it is time; the moves in flight are not asked
        about again (the round's `follow` did, before intake)."""
        try:
            await self.mover.run_once()
        except (MixinError, VenueError, LeaseError) as e:
            log.warning("mover round: %s", e)
        if time.monotonic() - self._last_check >= self.config.reconcile_every_s:
            await self.reconcile()

    async def reconcile(self) -> Check:
        self._last_check = time.monotonic()
        return await self.reconciler.check()
