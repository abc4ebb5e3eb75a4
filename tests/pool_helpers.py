"""Shared set-up for the pool tests: a ledger with BTC and USDT, an exchange simulator with a
moving market, and a PoolRuntime over one BinanceSpotConnector."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from decimal import Decimal
from fractions import Fraction
from typing import Any, AsyncIterator, Callable

from mixmaker.connectors.binance import BinanceEndpoints, BinanceSpotConnector
from mixmaker.connectors.credentials import ApiCredentials
from mixmaker.funds.accounts import Flow, exchange, inflow, user_order
from mixmaker.funds.ledger import Ledger
from mixmaker.money import Rounding, to_units
from mixmaker.sim.exchange.feed import SyntheticFeed
from mixmaker.sim.exchange.matching import SymbolRules
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig
from mixmaker.store import SqliteStore
from mixmaker.strategy import PMMConfig
from mixmaker.users.catalog import MarketSpec
from mixmaker.users.pool_fills import FillBook
from mixmaker.users.pool_runtime import PoolRuntime, PoolSetup
from mixmaker.users.pools import PoolLedger, PoolTerms

ACCOUNT = "binance"  # the ledger's exchange account = the connector's venue name
KEY, SECRET = "mm-key", "mm-secret-never-printed"
MARKET = MarketSpec(ACCOUNT, "BTC/USDT", "BTC", "USDT", price_decimals=2, size_decimals=5)
RULES = (SymbolRules("BTCUSDT", "BTC", "USDT"),)


def pmm(**kw: Any) -> PMMConfig:
    base = {"bid_spread": Decimal("0.0001"), "ask_spread": Decimal("0.0001"), "order_amount": Decimal("0.001"),
            "order_refresh_time": Decimal("2"), "filled_order_delay": Decimal("0.2")}
    return PMMConfig(**{**base, **kw})


def ledger_for(store: SqliteStore) -> Ledger:
    ledger = Ledger(store)
    ledger.register_asset("BTC", 8)
    ledger.register_asset("USDT", 8)
    return ledger


def fund_order(ledger: Ledger, order_id: str, btc: str, usdt: str) -> dict[str, int]:
    """The order's money already on the exchange account (what the allocator does, shortened);
    returns the tranche to mint."""
    entries = []
    for asset, amount in (("BTC", btc), ("USDT", usdt)):
        units = to_units(amount, 8)
        if units:
            entries += inflow(Flow.PAYMENT, asset, units, exchange(ACCOUNT), user_order(order_id))
    ledger.post_now(f"payment:{order_id}", entries, ref=order_id)
    return ledger.holdings_of(user_order(order_id))


def sim_units(sim: ExchangeSim, asset: str) -> int:
    """What the venue holds for us, free and locked, as ledger units (floor)."""
    free, locked = sim.balance("mm", asset)
    return to_units(free + locked, 8, rounding=Rounding.FLOOR)


async def until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def exchange_sim(balances: dict[str, str], *, feed: Any = "synthetic", seed: int = 3,
                       **cfg: Any) -> AsyncIterator[ExchangeSim]:
    if feed == "synthetic":
        feed = SyntheticFeed("BTCUSDT", seed=seed, interval=0.02, trade_rate=0.5)
    sim = ExchangeSim(SimConfig(seed=seed, publish_interval=0.02, feed=feed, rules=RULES, **cfg))
    sim.add_account("mm", KEY, SECRET, balances)
    async with sim:
        yield sim


def connector_for(sim: ExchangeSim) -> BinanceSpotConnector:
    endpoints = BinanceEndpoints(sim.rest_url, sim.ws_url, f"{sim.ws_url}/ws-api/v3")
    return BinanceSpotConnector(ApiCredentials(KEY, SECRET), endpoints, name=ACCOUNT)


def pool_id(preset: str) -> str:
    return f"{ACCOUNT}:BTC/USDT:{preset}"


def runtime_for(store: SqliteStore, ledger: Ledger, conn: BinanceSpotConnector, presets: dict[str, PMMConfig],
                bot_share: Fraction = Fraction(1, 10), **kw: Any) -> tuple[PoolRuntime, PoolLedger, FillBook]:
    pools = PoolLedger(store, ledger, [PoolTerms(pool_id(p), "BTC", "USDT", bot_share) for p in presets])
    fills = FillBook(store, ledger)
    setups = [PoolSetup(pool_id(p), MARKET, cfg) for p, cfg in presets.items()]
    kw.setdefault("tick_s", "0.1")
    kw.setdefault("poll_s", 0.5)
    return PoolRuntime(conn, store, pools, fills, setups, **kw), pools, fills
