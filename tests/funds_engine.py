"""The engine for the funds tests: intake, the order lifecycle, the pools, payouts and the funds
layer (mover, confirmation worker, reconciliation) wired over ONE SQLite store, against a Mixin
API and a Binance-like exchange given by URL (the simulators of `mixmaker sim all`, in this
process or another). The product's runtime (`mixmaker.engine`, issue 17) is to adopt this
wiring: `Engine.start()` then `Engine.cycle()` in a loop, `Engine.stop()` at the end.

As a process (the crash test kills it with SIGKILL and starts it again on the same database):

    python funds_engine.py SIMS_JSON DB FEE_PAYER [STEP:N]

SIMS_JSON is `mixmaker sim all`'s credentials file. It prints "ready" once the start-up
comparison passed, then runs until SIGTERM (a clean stop). With STEP:N it SIGKILLs itself the
N-th time a component reaches STEP (the mover's planned/sent/seen/arrived/reversed, Payments'
recorded/verified/signed/broadcast/sent, the order worker's and payout worker's steps).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from mixmaker.connectors.binance import BinanceEndpoints, BinanceSpotConnector
from mixmaker.connectors.credentials import ApiCredentials
from mixmaker.funds.assets import AssetMap, AssetSpec, VenueAsset
from mixmaker.funds.ledger import Ledger
from mixmaker.funds.mover import MoverConfig
from mixmaker.funds.moves import Timing
from mixmaker.funds.outcomes import RetryPolicy
from mixmaker.funds.worker import FundsConfig, FundsWorker
from mixmaker.mixin import Keystore, MixinClient
from mixmaker.mixin.payments import Payments
from mixmaker.mixin.snapshots import SnapshotReader
from mixmaker.sim.mixin.setup import BTC, ETH, USDT_ERC20
from mixmaker.store import SqliteStore
from mixmaker.strategy import PMMConfig
from mixmaker.users.catalog import AssetLimits, Catalog, Limits, MarketSpec, Preset
from mixmaker.users.intake import Intake
from mixmaker.users.lifecycle import OrderWorker
from mixmaker.users.orders import OrderBook, OrderState
from mixmaker.users.payouts import Outbox, PayoutWorker
from mixmaker.users.pool_fills import FillBook
from mixmaker.users.pool_runtime import PoolRuntime, setups_from_catalog
from mixmaker.users.pools import PoolLedger, Pools, terms_from_catalog

ACCOUNT = "binance"
MARKET = f"{ACCOUNT}:BTC/USDT"
ASSET_IDS = {"BTC": BTC, "USDT": USDT_ERC20, "ETH": ETH}

log = logging.getLogger("funds_engine")


def engine_catalog(presets: tuple[str, ...] = ("tight", "wide")) -> Catalog:
    def u(x: str) -> int:
        return int(Decimal(x).scaleb(8))

    quick = {"order_amount": Decimal("0.001"), "order_refresh_time": Decimal("2"), "filled_order_delay": Decimal("0.2")}
    spreads = {"tight": Decimal("0.0001"), "wide": Decimal("0.0003")}
    return Catalog(
        AssetMap([AssetSpec("BTC", BTC, 8, {ACCOUNT: VenueAsset("BTC", "BTC")}),
                  AssetSpec("USDT", USDT_ERC20, 8, {ACCOUNT: VenueAsset("USDT", "ETH")}),
                  AssetSpec("ETH", ETH, 8)]),
        [MarketSpec(ACCOUNT, "BTC/USDT", "BTC", "USDT", 2, 5)],
        [Preset(p, PMMConfig(bid_spread=spreads[p], ask_spread=spreads[p], **quick)) for p in presets],
        Limits({"BTC": AssetLimits(u("0.001"), u("1"), u("0.000001")),
                "USDT": AssetLimits(u("10"), u("100000"), u("0.01"))}, bot_share=Fraction(1, 10)),
    )


def funds_config(fee_payers: frozenset[str]) -> FundsConfig:
    """Short delays and fast ticks, for tests."""
    return FundsConfig(
        mover=MoverConfig(batch_wait_s=0.3, fee_hold_s=2.0, max_fee_fraction=Fraction(1, 10),
                          retry=RetryPolicy(max_attempts=4, delay_s=0.3)),
        timing=Timing(20, 20, 20), reconcile_every_s=1.0, fee_payers=fee_payers)


@dataclass
class Endpoints:
    """Where the engine finds Mixin and the exchange, and how it logs in."""

    mixin_url: str
    keystore: dict[str, str]
    rest_url: str
    ws_url: str
    api_key: str
    api_secret: str

    @classmethod
    def from_sims(cls, doc: dict[str, Any]) -> Endpoints:
        ex = doc["exchange"]
        return cls(doc["mixin"]["url"], doc["mixin"]["keystore"], ex["rest_url"], ex["ws_url"], ex["api_key"],
                   ex["api_secret"])


class Engine:
    def __init__(self, db: str | Path, endpoints: Endpoints, *, catalog: Catalog | None = None,
                 config: FundsConfig | None = None, fee_payers: frozenset[str] = frozenset(),
                 crash_at: Callable[[str, str], None] | None = None, tick_s: str = "0.2") -> None:
        self.catalog = catalog or engine_catalog()
        self.store = SqliteStore(db)
        self.ledger = Ledger(self.store)
        self.catalog.assets.register(self.ledger)
        self.client = MixinClient(Keystore.from_dict(endpoints.keystore), endpoints.mixin_url, timeout_s=5,
                                  backoff_s=0.02, rate_limit_backoff_s=0.05)
        self.payments = Payments(self.client, self.store, uncertain_backoff_s=0.02, crash_at=crash_at,
                                 lease_ttl_s=3.0)
        ws = endpoints.ws_url
        self.connector = BinanceSpotConnector(ApiCredentials(endpoints.api_key, endpoints.api_secret),
                                              BinanceEndpoints(endpoints.rest_url, ws, f"{ws}/ws-api/v3"), name=ACCOUNT)
        self.orders = OrderBook(self.store)
        self.outbox = Outbox(self.store, self.ledger, self.catalog.assets, self.catalog.limits, self.orders)
        self.book = PoolLedger(self.store, self.ledger, terms_from_catalog(self.catalog))
        self.runtime = PoolRuntime(self.connector, self.store, self.book, FillBook(self.store, self.ledger),
                                   setups_from_catalog(self.catalog, ACCOUNT), assets=self.catalog.assets,
                                   tick_s=tick_s, poll_s=0.5)

        async def catch_up() -> None:
            await self.runtime.tracker.catch_up()
            self.runtime.tracker.redeliver()

        self.funds = FundsWorker(self.store, self.ledger, self.catalog.assets, self.payments,
                                 {ACCOUNT: self.connector.venue}, config=config or funds_config(fee_payers),
                                 catch_up={ACCOUNT: catch_up}, crash_at=crash_at)
        self.intake = Intake(self.store, self.ledger, self.catalog, self.orders, self.outbox,
                             app_id=endpoints.keystore["app_id"], own_deposits=self.funds.snapshots)
        self.worker = OrderWorker(self.store, self.ledger, self.orders, self.outbox, self.funds.mover,
                                  Pools(self.book, {ACCOUNT: self.runtime}), crash_at=crash_at)
        self.payer = PayoutWorker(self.outbox, self.payments, crash_at=crash_at)
        self.reader = SnapshotReader(self.client, self.store, rescan_interval_s=30.0)
        self._crash_at = crash_at

    def _handle(self, tx: Any, snapshot: Any) -> None:
        self.intake.handle(tx, snapshot)
        if self._crash_at is not None:
            self._crash_at("intake", snapshot.snapshot_id)  # inside the page's transaction

    async def poll(self) -> int:
        return await self.reader.poll(self._handle)

    async def start(self) -> None:
        """The order journal compared with the venue (the pools' runtime), then the funds layer's
        start-up comparison (asset map, addresses, payments left, moves in flight, intake read to
        the end, transit accounts, a first reconciliation). Only then does anything move."""
        await self.runtime.start()
        await self.funds.start(self.poll)

    async def cycle(self) -> None:
        await self.funds.follow()  # before intake: our withdrawals' hashes known first; once a round
        await self.funds.poll_intake(self.poll)
        await self.worker.run_once()
        await self.funds.move()
        await self.payer.run_once()

    async def stop(self) -> None:
        await self.runtime.stop()
        await self.connector.close()
        await self.client.close()
        self.store.close()

    def counts(self) -> Counter[str]:
        return Counter({s.value: n for s, n in self.orders.counts_by_state().items()})

    def settled(self, n: int) -> bool:
        c = self.orders.counts_by_state()
        return c.get(OrderState.SETTLED, 0) >= n and not self.outbox.queued()


def main() -> None:
    sims, db, fee_payer = sys.argv[1:4]
    kill_step, _, kill_n = (sys.argv[4] if len(sys.argv) > 4 else "").partition(":")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    seen: Counter[str] = Counter()

    def crash_at(step: str, ident: str) -> None:
        seen[step] += 1
        if step == kill_step and seen[step] == int(kill_n):
            print(f"killing myself at {step} #{kill_n} ({ident})", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    endpoints = Endpoints.from_sims(json.loads(Path(sims).read_text()))
    engine = Engine(db, endpoints, fee_payers=frozenset({fee_payer}), crash_at=crash_at)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        try:
            await engine.start()
            print("ready", flush=True)
            while not stop.is_set():
                try:
                    await engine.cycle()
                except Exception as e:  # noqa: BLE001 - a round that fails is run again
                    log.warning("cycle failed: %s: %s", type(e).__name__, e)
                await asyncio.sleep(0.05)
        finally:
            await engine.stop()
        print("stopped", flush=True)

    asyncio.run(run())


if __name__ == "__main__":
    main()
