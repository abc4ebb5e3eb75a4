"""Shared set-up for the connector tests: a simulator with two funded accounts, a routed ccxt
venue on it, and a bounded wait."""

from __future__ import annotations

import asyncio

import ccxt.async_support as ccxt

from mixmaker.connectors import RateLimiter
from mixmaker.connectors import binance_limits as bl
from mixmaker.connectors.ccxt_routing import route_through
from mixmaker.connectors.ccxt_account import CcxtVenue
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig


async def venue_for(sim: ExchangeSim, key: str, secret: str, *, timeout_ms: int = 10_000) -> CcxtVenue:
    ex = ccxt.binance(sim.ccxt_config(key, secret))
    ex.timeout = timeout_ms
    lim = RateLimiter(bl.spot_pools())
    route_through(ex, lim, cost=bl.request_cost, usage=bl.usage_from_headers, retry_after=bl.retry_after_s)
    v = CcxtVenue(ex, lim, name="binance")
    await v.load_markets()
    return v


def start_sim(**cfg) -> ExchangeSim:
    sim = ExchangeSim(SimConfig(seed=7, **cfg))
    sim.add_account("mm", "mm-key", "mm-secret", {"USDT": "100000", "BTC": "2"})
    sim.add_account("taker", "tk-key", "tk-secret", {"USDT": "100000", "BTC": "2"})
    return sim


async def until(cond, what: str, timeout: float = 10.0) -> None:
    """Waits for a condition the code under test reaches by itself (a bound, not a measurement)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
