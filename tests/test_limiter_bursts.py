"""Bursts of mixed requests through the Binance connector's rate limiter (the real ccxt binance
class, routed through our limiter) against the simulator at its default `ban_tolerance=0`: the
first request that lands inside a Retry-After is banned (418).

The simulator counts as Binance does (fixed intervals of its clock, by arrival); its intervals
are compressed here (a "minute" and a "10 s" order interval of one second each) so that a run
crosses dozens of interval edges with the pools saturated. Each run sends 2000 queries, creates
and cancels of different weights (1 to 50) in bursts of up to 300 at once.

Seeds: `MIXMAKER_BURST_SEEDS` (comma-separated) overrides the default ones. One run by hand:
`PYTHONPATH=python python tests/test_limiter_bursts.py SEED [FAULTS [MAX_IN_FLIGHT]]`.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from decimal import Decimal

import pytest

ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the simulator needs picows")

from mixmaker.connectors import binance_limits as bl  # noqa: E402
from mixmaker.connectors.binance import BinanceEndpoints, BinanceSpotConnector  # noqa: E402
from mixmaker.connectors.credentials import ApiCredentials  # noqa: E402
from mixmaker.connectors.limiter import Pool  # noqa: E402
from mixmaker.sim.exchange.errors import RateLimited  # noqa: E402
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig  # noqa: E402

SEEDS = [int(s) for s in os.environ.get("MIXMAKER_BURST_SEEDS", "11,12").split(",") if s.strip()]
WEIGHT_LIMIT, WEIGHT_WINDOW_MS = 800, 1000
ORDER_LIMIT, ORDER_WINDOW_MS = 80, 1000
REQUESTS = 2000
MARKET = "BTC/USDT"
KINDS = ["create"] * 30 + ["cancel"] * 30 + ["order"] * 15 + ["open"] * 10 + ["book"] * 8 + ["balance"] * 4 + ["trades"] * 3


def compressed_pools() -> list[Pool]:
    """Binance's pools with the simulator's compressed intervals (names stay Binance's)."""
    short = {bl.REQUEST_WEIGHT: (WEIGHT_LIMIT, WEIGHT_WINDOW_MS / 1000), bl.ORDERS_10S: (ORDER_LIMIT, ORDER_WINDOW_MS / 1000)}
    return [Pool(p.name, *short[p.name]) if p.name in short else p for p in bl.spot_pools()]


async def burst_run(seed: int, *, faults: str, ban_tolerance: int = 0, requests: int = REQUESTS, **connector_kw) -> dict:
    # A short ban: a failing run ends soon instead of sitting out minutes.
    sim = ExchangeSim(SimConfig(seed=seed, publish_interval=0.05, weight_limit=WEIGHT_LIMIT,
                                weight_window_ms=WEIGHT_WINDOW_MS, order_limit=ORDER_LIMIT,
                                order_window_ms=ORDER_WINDOW_MS, ban_ms=1000, ban_tolerance=ban_tolerance))
    # What the venue counted, per interval, as requests arrived (429s and 418s are not counted).
    per_interval: Counter[int] = Counter()
    charge = sim.limiter.charge

    def counting_charge(weight: int, now_ms: int, force_limit: bool = False) -> int:
        used = charge(weight, now_ms, force_limit)
        per_interval[now_ms // WEIGHT_WINDOW_MS] += weight
        return used

    sim.limiter.charge = counting_charge  # type: ignore[method-assign]
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
        stop = asyncio.Event()  # banned: the run has failed, no need to go on

        async def one(kind: str) -> None:
            try:
                if kind == "create":  # weight 1 and one order
                    o = await ex.create_order(MARKET, "limit", "buy", "0.001", str(40000 + rng.randint(0, 500)))
                    open_ids.append(o["id"])
                elif kind == "cancel":  # weight 1
                    if open_ids:
                        await ex.cancel_order(open_ids.pop(rng.randrange(len(open_ids))), MARKET)
                    else:
                        await ex.fetch_time()
                elif kind == "order" and open_ids:  # weight 4
                    await ex.fetch_order(rng.choice(open_ids), MARKET)
                elif kind in ("order", "book"):  # weight 1, 5 or 25 by depth
                    await ex.fetch_order_book(MARKET, rng.choice((5, 100, 500)))
                elif kind == "open":  # weight 6
                    await ex.fetch_open_orders(MARKET)
                elif kind == "balance":  # weight 20
                    await ex.fetch_balance()
                else:  # weight 20
                    await ex.fetch_my_trades(MARKET)
                outcome["ok"] += 1
            except ccxt.DDoSProtection as e:
                banned = "418" in str(e) or "banned" in str(e).lower()
                outcome["banned" if banned else "rate_limited"] += 1
                if banned:
                    stop.set()
            except ccxt.BaseError:
                outcome["other"] += 1

        sent = 0
        try:
            while sent < requests and not stop.is_set():
                n = min(requests - sent, rng.randint(20, 300))
                await asyncio.gather(*(one(rng.choice(KINDS)) for _ in range(n)))
                sent += n
                await asyncio.sleep(rng.random() * 0.3)
        finally:
            await conn.close()
        return {"seed": seed, "sent": sent, **outcome, "bans": sim.limiter.bans, "stats": conn.limiter.stats,
                "faults_hit": sim.faults.hits["rate_limit"], "busiest": max(per_interval.values()),
                "intervals": len(per_interval)}


@pytest.mark.parametrize("max_in_flight", [bl.MAX_IN_FLIGHT, 8])
@pytest.mark.parametrize("seed", SEEDS)
def test_bursts_without_faults_never_meet_a_429(seed, max_in_flight):
    """Without faults every 429 would be the limiter's own miscount against the venue's
    intervals: there is none, so no ban, with one request in flight or several."""
    r = asyncio.run(burst_run(seed, faults="", max_in_flight=max_in_flight))
    assert r["bans"] == 0 and r["banned"] == 0, r
    assert r["rate_limited"] == 0 and r["stats"].rate_limited == 0, r
    assert r["ok"] == r["sent"] == REQUESTS, r
    # The pools were saturated: bursts queued, the venue saw intervals near the limit.
    assert r["stats"].max_queued > 100, r
    assert r["busiest"] > WEIGHT_LIMIT / 2 and r["intervals"] >= 10, r
    assert r["stats"].max_in_flight == max_in_flight, r


@pytest.mark.parametrize("seed", SEEDS)
def test_bursts_with_429_faults_are_never_banned(seed):
    """429s the venue sends whatever the weight (another process on the IP, say): every one is
    waited out before anything else goes, and with the default cap nothing else is on the wire
    when one goes out."""
    r = asyncio.run(burst_run(seed, faults="rate_limit=0.01"))
    assert r["bans"] == 0 and r["banned"] == 0, r
    assert r["faults_hit"] >= 5, r
    assert r["rate_limited"] == r["faults_hit"] == r["stats"].rate_limited, r
    assert r["ok"] + r["rate_limited"] == REQUESTS, r


def test_control_with_more_in_flight_the_same_faults_earn_a_ban():
    """Why one in flight is the default: with four, a request already on the wire when a 429
    goes out lands inside its Retry-After, and this venue bans the first one. (The limiter still
    sends nothing new once it has read the 429; the tail is what was sent before.)"""
    r = asyncio.run(burst_run(SEEDS[0], faults="rate_limit=0.02", max_in_flight=4))
    assert r["bans"] >= 1, r


def test_the_simulator_counts_fixed_intervals_of_its_clock_by_arrival():
    """Binance's rule (spot API docs): a request counts in the interval it arrives in, and the
    count starts again at zero when the next one begins; Retry-After runs to the interval's end."""
    from mixmaker.sim.exchange.limits import OrderCounter, WeightLimiter

    w = WeightLimiter(limit=10, window_ms=60_000)
    assert w.charge(6, 59_000) == 6
    assert w.charge(4, 59_999) == 10
    assert w.charge(10, 60_000) == 10  # a new minute: the full limit again, one ms later
    with pytest.raises(RateLimited) as e:
        w.charge(1, 61_500)
    assert e.value.retry_after == 59  # to 120_000, in whole seconds
    o = OrderCounter(limit=2, window_ms=10_000)
    assert [o.charge("a", t) for t in (9_000, 9_999, 10_000)] == [1, 2, 1]


if __name__ == "__main__":
    import sys
    import time

    t0 = time.monotonic()
    print(asyncio.run(burst_run(int(sys.argv[1]), faults=sys.argv[2] if len(sys.argv) > 2 else "",
                                max_in_flight=int(sys.argv[3]) if len(sys.argv) > 3 else bl.MAX_IN_FLIGHT)),
          f"{time.monotonic() - t0:.1f}s")
