"""Helpers for the exchange-simulator tests: a started simulator with a seeded book, ccxt clients."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import ccxt.async_support as ccxt_rest
import ccxt.pro as ccxt_pro

from mixmaker.sim.exchange.server import ExchangeSim, SimConfig

KEY, SECRET = "alice-key", "alice-secret-do-not-print"
SYMBOL, MARKET = "BTCUSDT", "BTC/USDT"
START = {"BTC": Decimal("2"), "USDT": Decimal("100000")}
T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 30) -> T:
    """Run one test coroutine; a hang fails the test instead of the suite."""
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


def seed_book(sim: ExchangeSim, mid: int = 60000, levels: int = 5, size: str = "0.5") -> None:
    """Other participants' quotes: `levels` bids below and asks above `mid`, 1 USDT apart."""
    for i in range(levels):
        sim.venue.set_market_level(SYMBOL, "BUY", Decimal(mid - i), Decimal(size))
        sim.venue.set_market_level(SYMBOL, "SELL", Decimal(mid + 1 + i), Decimal(size))


@asynccontextmanager
async def started_sim(**config: Any) -> AsyncIterator[ExchangeSim]:
    config.setdefault("publish_interval", 0.02)
    async with ExchangeSim(SimConfig(**config)) as sim:
        sim.add_account("alice", KEY, SECRET, START)
        seed_book(sim)
        yield sim


def client_config(sim: ExchangeSim, **overrides: Any) -> dict[str, Any]:
    # ccxt's own pacing is not under test here; it would only make the suite slow.
    config = sim.ccxt_config(KEY, SECRET)
    config.update({"enableRateLimit": False, "timeout": 5000}, **overrides)
    return config


@asynccontextmanager
async def _client(cls: Any, sim: ExchangeSim, overrides: dict[str, Any]) -> AsyncIterator[Any]:
    ex = cls(client_config(sim, **overrides))
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()


def rest_client(sim: ExchangeSim, **overrides: Any) -> Any:
    """A loaded `ccxt.async_support.binance` on the simulator (an async context manager)."""
    return _client(ccxt_rest.binance, sim, overrides)


def pro_client(sim: ExchangeSim, **overrides: Any) -> Any:
    """A loaded `ccxt.pro.binance` on the simulator (an async context manager)."""
    return _client(ccxt_pro.binance, sim, overrides)


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for a condition the simulator's own loop makes true (polling, never timing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


async def clear_of_interval_end(sim: ExchangeSim, span_ms: int = 60_000, need_ms: int = 3_000) -> None:
    """Wait until the venue's current rate-limit interval has `need_ms` left: a test that fills
    one interval must not straddle two (the simulator counts fixed intervals, as Binance does)."""
    while span_ms - sim.venue.clock() % span_ms < need_ms:
        await asyncio.sleep(0.05)


def as_floats(levels: list[tuple[Decimal, Decimal]]) -> list[list[float]]:
    return [[float(p), float(q)] for p, q in levels]


async def synced_book(pro: Any, sim: ExchangeSim, symbol: str = SYMBOL, market: str = MARKET) -> Any:
    """ccxt.pro's live book once its nonce reaches the simulator's update id (all diffs pushed)."""
    sim.publish_now()
    await until(lambda: pro.orderbooks[market]["nonce"] == sim.book(symbol)[0])
    return pro.orderbooks[market]


def ws_api_signed(params: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    """WebSocket API params with apiKey, timestamp and the HMAC over the sorted, raw-encoded query."""
    full = {"apiKey": KEY, "timestamp": time.time_ns() // 1_000_000, **params}
    query = "&".join(f"{k}={v}" for k, v in sorted(full.items()))
    return {**full, "signature": hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()}
