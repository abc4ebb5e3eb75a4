"""Bursts of mixed requests through the Binance connector's rate limiter (the real ccxt binance
class, routed through our limiter) against the simulator at its default `ban_tolerance=0`: the
first request that lands inside a Retry-After is banned (418).

The simulator counts as Binance does (fixed intervals of its clock, by arrival); its intervals
are compressed here (a "minute" of one second, a "10 s" order interval of one second) so that a
run crosses dozens of interval edges with the pools saturated. Each run sends thousands of
queries, creates and cancels of different weights in bursts of up to a few hundred at once.

Seeds: `MIXMAKER_BURST_SEEDS` (comma-separated) overrides the default ones.
"""

from __future__ import annotations

import asyncio
import os
import random
from decimal import Decimal

import pytest

ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the simulator needs picows")

from mixmaker.connectors import binance_limits as bl  # noqa: E402
from mixmaker.connectors.binance import BinanceEndpoints, BinanceSpotConnector  # noqa: E402
from mixmaker.connectors.credentials import ApiCredentials  # noqa: E402
from mixmaker.connectors.limiter import Pool  # noqa: E402
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig  # noqa: E402

SEEDS = [int(s) for s in os.environ.get("MIXMAKER_BURST_SEEDS", "11,12").split(",") if s.strip()]
WEIGHT_LIMIT, WEIGHT_WINDOW_MS = 800, 1000
ORDER_LIMIT, ORDER_WINDOW_MS = 80, 1000
REQUESTS = 2000
MARKET = "BTC/USDT"


def compressed_pools() -> list[Pool]:
    """Binance's pools with the simulator's compressed intervals (names stay Binance's)."""
    short = {bl.REQUEST_WEIGHT: (WEIGHT_LIMIT, WEIGHT_WINDOW_MS / 1000), bl.ORDERS_10S: (ORDER_LIMIT, ORDER_WINDOW_MS / 1000)}
    return [Pool(p.name, *short[p.name]) if p.name in short else p for p in bl.spot_pools()]


async def burst_run(seed: int, *, faults: str, **connector_kw) -> dict:
    sim = ExchangeSim(SimConfig(seed=seed, faults="", publish_interval=0.05, weight_limit=WEIGHT_LIMIT,
                                weight_window_ms=WEIGHT_WINDOW_MS, order_limit=ORDER_LIMIT,
                                order_window_ms=ORDER_WINDOW_MS, ban_ms=1000))  # a short ban: a failing run ends soon
    assert sim.config.ban_tolerance == 0, "the simulator's default: the first request inside a Retry-After is banned"
    async with sim:
        sim.add_account("mm", "mm-key", "mm-secret", {"USDT": "100000000", "BTC": "1000"})
        sim.venue.set_market_level("BTCUSDT", "BUY", Decimal("50000"), Decimal("5"))
        sim.venue.set_market_level("BTCUSDT", "SELL", Decimal("50010"), Decimal("5"))
        endpoints = BinanceEndpoints(sim.rest_url, sim.ws_url, f"{sim.ws_url}/ws-api/v3")
        conn = BinanceSpotConnector(ApiCredentials("mm-key", "mm-secret"), endpoints, pools=compressed_pools(),
                                    timeout_ms=10_000, **connector_kw)
        ex = conn.venue.exchange  # the real ccxt binance class, routed through conn.limiter
        await conn.venue.load_markets()
        sim.faults.configure(faults)
        rng = random.Random(seed)
        open_ids: list[str] = []
        outcome = {"ok": 0, "rate_limited": 0, "banned": 0, "other": 0}

        async def one(kind: str) -> None:
            try:
                if kind == "create":
                    price = str(40000 + rng.randint(0, 500))
                    o = await ex.create_order(MARKET, "limit", "buy", "0.001", price)
                    open_ids.append(o["id"])
                elif kind == "cancel":
                    if not open_ids:
                        await ex.fetch_time()
                    else:
                        await ex.cancel_order(open_ids.pop(rng.randrange(len(open_ids))), MARKET)
                elif kind == "order":
                    if open_ids:
                        await ex.fetch_order(rng.choice(open_ids), MARKET)
                    else:
                        await ex.fetch_order_book(MARKET, 100)
                elif kind == "open":
                    await ex.fetch_open_orders(MARKET)
                elif kind == "book":
                    await ex.fetch_order_book(MARKET, rng.choice((5, 100, 500)))
                elif kind == "balance":
                    await ex.fetch_balance()
                else:
                    await ex.fetch_my_trades(MARKET)
                outcome["ok"] += 1
            except ccxt.DDoSProtection as e:
                outcome["banned" if "418" in str(e) or "banned" in str(e).lower() else "rate_limited"] += 1
                if outcome["banned"]:
                    stop.set()
            except ccxt.BaseError:
                outcome["other"] += 1

        kinds = ["create"] * 30 + ["cancel"] * 30 + ["order"] * 15 + ["open"] * 10 + ["book"] * 8 + ["balance"] * 4 + ["trades"] * 3
        sent = 0
        stop = asyncio.Event()  # banned: the run has failed, no need to sit out the ban
        try:
            while sent < REQUESTS and not stop.is_set():
                n = min(REQUESTS - sent, rng.randint(20, 300))
                await asyncio.gather(*(one(rng.choice(kinds)) for _ in range(n)))
                sent += n
                await asyncio.sleep(rng.random() * 0.3)
        finally:
            await conn.close()
        return {"seed": seed, "sent": sent, **outcome, "bans": sim.limiter.bans, "limiter": conn.limiter.stats,
                "faults_hit": sim.faults.hits["rate_limit"], "arrived": len(sim.rest.requests)}


@pytest.mark.parametrize("seed", SEEDS)
def test_bursts_without_faults_never_meet_a_429(seed):
    """Without faults every 429 would be the limiter's own miscount: none at all, so no ban."""
    r = asyncio.run(burst_run(seed, faults=""))
    assert r["bans"] == 0 and r["banned"] == 0, r
    assert r["rate_limited"] == 0 and r["limiter"].rate_limited == 0, r
    assert r["ok"] == r["sent"] == REQUESTS, r
    assert r["limiter"].max_queued > 100, "bursts queued in the limiter: the pools were saturated"


@pytest.mark.parametrize("seed", SEEDS)
def test_bursts_with_429_faults_are_never_banned(seed):
    """429s the venue sends whatever the weight (another process on the IP, say): every one is
    waited out before anything else goes, and nothing is on the wire when one goes out."""
    r = asyncio.run(burst_run(seed, faults="rate_limit=0.02"))
    assert r["bans"] == 0 and r["banned"] == 0, r
    assert r["faults_hit"] >= 10, r
    assert r["rate_limited"] == r["faults_hit"] == r["limiter"].rate_limited, r
    assert r["ok"] + r["rate_limited"] == REQUESTS, r


if __name__ == "__main__":  # a look at one run: python tests/test_limiter_bursts.py SEED FAULTS
    import sys
    import time

    t0 = time.monotonic()
    print(asyncio.run(burst_run(int(sys.argv[1]), faults=sys.argv[2] if len(sys.argv) > 2 else "",
                                max_in_flight=int(sys.argv[3]) if len(sys.argv) > 3 else 1)),
          f"{time.monotonic() - t0:.1f}s")
