"""Shared set-up for the funds tests: the Mixin simulator, the exchange simulator and the simulated
chain between them, all in this process on 127.0.0.1 (the chain on the real clock, short delays),
and the funds layer on one SQLite file, rebuilt at will on the same file (a "crash")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from connector_helpers import venue_for
from mixin_world import World, make_world

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import Flow
from mixmaker.funds.assets import AssetMap, AssetSpec, VenueAsset
from mixmaker.funds.ledger import Cause, Ledger, tx_key
from mixmaker.funds.mover import MoverConfig
from mixmaker.funds.moves import Timing
from mixmaker.funds.outcomes import RetryPolicy
from mixmaker.funds.worker import FundsConfig, FundsWorker
from mixmaker.mixin.amounts import to_units as mixin_units
from mixmaker.mixin.payments import Payments
from mixmaker.mixin.snapshots import SnapshotReader
from mixmaker.money import Rounding, to_units
from mixmaker.sim.chain import Chain, ChainConfig
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig
from mixmaker.sim.mixin.setup import BTC, ETH, USDT_ERC20
from mixmaker.store import SqliteStore

ACCOUNT = "binance"
POOL = f"{ACCOUNT}:BTC/USDT:tight"
EXCHANGE_FEES = {"BTC": Decimal("0.0002"), "USDT": Decimal("1")}
MIXIN_IDS = {"BTC": BTC, "USDT": USDT_ERC20, "ETH": ETH}


def assets() -> AssetMap:
    return AssetMap([
        AssetSpec("BTC", BTC, 8, {ACCOUNT: VenueAsset("BTC", "BTC")}),
        AssetSpec("USDT", USDT_ERC20, 8, {ACCOUNT: VenueAsset("USDT", "ETH")}),
        AssetSpec("ETH", ETH, 8),  # pays USDT's Mixin withdrawal fee (bot:fees)
    ])


def fast_config(**kw: Any) -> FundsConfig:
    mover = kw.pop("mover", None) or MoverConfig(batch_wait_s=0.2, retry=RetryPolicy(max_attempts=3, delay_s=0.2))
    return FundsConfig(mover=mover, timing=kw.pop("timing", None) or Timing(5, 5, 5), reconcile_every_s=0.5, **kw)


@dataclass
class FundsWorld:
    mixin: World
    xsim: ExchangeSim
    chain: Chain
    venue: Any  # CcxtVenue of the bot's exchange account
    path: Path
    operator: str  # a Mixin user that funds bot:fees
    config: FundsConfig
    crash_at: Any = None
    venues: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.venues = self.venues or {ACCOUNT: self.venue}
        self.open()

    @property
    def bot(self) -> str:
        return self.mixin.bot["app_id"]

    def open(self) -> None:
        """The funds layer on the database (again): what a restarted process builds."""
        self.store = SqliteStore(self.path)
        self.ledger = Ledger(self.store)
        self.assets = assets()
        self.client = self.mixin.client()
        self.payments = Payments(self.client, self.store, uncertain_backoff_s=0.01, crash_at=self.crash_at)
        self.funds = FundsWorker(self.store, self.ledger, self.assets, self.payments, self.venues, config=self.config,
                                 crash_at=self.crash_at)
        self.reader = SnapshotReader(self.client, self.store, rescan_interval_s=None)

    async def close(self) -> None:
        await self.client.close()
        self.store.close()

    async def reopen(self) -> None:
        await self.close()
        self.open()

    def handle(self, tx, s) -> None:
        """A minimal intake: the funds layer's own snapshots, nothing else."""
        if s.units > 0 and self.funds.snapshots.matches(tx, s):
            self.funds.snapshots.book(tx, s)

    async def poll(self) -> int:
        return await self.reader.poll(self.handle)

    async def cycle(self) -> None:
        await self.funds.follow()  # once a round, as the engine
        await self.funds.poll_intake(self.poll)
        await self.funds.move()

    async def cycle_until(self, check, what: str, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not check():
            if loop.time() > end:
                raise AssertionError(f"timed out waiting for {what}: moves "
                                     f"{[(m.move_id, m.state.value, m.last_signal) for m in self.funds.moves.all()]}")
            await self.cycle()
            await asyncio.sleep(0.05)

    # --- money in, as the user layer would book it --------------------------------------------------

    def user_pays(self, order_id: str, asset: str, amount: str) -> int:
        """The bot receives `amount` on Mixin for `order_id`: the wallet really grows, and the
        ledger books the payment to the order's claim."""
        units = mixin_units(amount)
        self.mixin.state.deposit(self.bot, MIXIN_IDS[asset], units)
        self.ledger.post_now(tx_key(Cause.PAYMENT, f"{order_id}-{asset}-{amount}"),
                             acc.inflow(Flow.PAYMENT, asset, units, acc.WALLET, acc.user_order(order_id)), ref=order_id)
        return units

    def fund_fees(self, amount: str) -> None:
        """The operator pays ETH to the bot: intake books it to bot:fees."""
        self.mixin.state.user_sends(self.operator, self.bot, ETH, mixin_units(amount))

    def exchange_units(self, asset: str) -> int:
        free, locked = self.xsim.balance("mm", asset)
        return to_units(free + locked, 8, rounding=Rounding.FLOOR)

    def wallet_units(self, asset: str) -> int:
        return self.mixin.state.balance(self.bot, MIXIN_IDS[asset])

    def assert_ledger_matches_venues(self) -> None:
        assert self.ledger.verify() == []
        for sym in ("BTC", "USDT", "ETH"):
            assert self.ledger.owed(acc.WALLET, sym) == self.wallet_units(sym), f"Mixin wallet {sym}"
            if sym != "ETH":
                assert self.ledger.owed(acc.exchange(ACCOUNT), sym) == self.exchange_units(sym), f"exchange {sym}"


@asynccontextmanager
async def funds_world(tmp_path: Path, *, seed: int = 1, chain: ChainConfig | None = None,
                      config: FundsConfig | None = None, balances: dict[str, str] | None = None,
                      crash_at: Any = None) -> AsyncIterator[FundsWorld]:
    mixin = make_world(seed)
    operator = mixin.state.add_user(full_name="operator").user_id
    mixin.state.deposit(operator, ETH, mixin_units("1"))
    xsim = ExchangeSim(SimConfig(seed=seed, publish_interval=0.05, withdraw_fees=EXCHANGE_FEES))
    xsim.add_account("mm", "mm-key", "mm-secret", balances or {})
    chain_cfg = chain or ChainConfig(seed=seed, send_delay_s=0.1, block_time_s=0.05, confirmations=2,
                                     poll_interval_s=0.02)
    async with xsim:
        ch = Chain.in_process(mixin.state, xsim.venue, chain_cfg)
        task = asyncio.create_task(ch.run())
        venue = await venue_for(xsim, "mm-key", "mm-secret")
        w = FundsWorld(mixin, xsim, ch, venue, tmp_path / "funds.db", operator, config or fast_config(fee_payers=frozenset({operator})),
                       crash_at)
        try:
            yield w
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await w.close()
            await venue.exchange.close()
            mixin.server.stop()
