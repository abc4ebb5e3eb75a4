"""The native depth stream (picows -> BookSync) against the local simulator, with its diff faults:
whenever the book says SYNCED it equals the simulator's book, level for level."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest

pytest.importorskip("picows", reason="the depth stream and the simulator need picows")

from mixmaker.book import BookState, BookSync  # noqa: E402
from mixmaker.connectors import RateLimiter  # noqa: E402
from mixmaker.connectors import binance_limits as bl  # noqa: E402
from mixmaker.connectors.binance_depth import DepthStream  # noqa: E402
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig  # noqa: E402

from connector_helpers import until  # noqa: E402

PRICE_DECIMALS, SIZE_DECIMALS = 2, 5  # the simulator's BTCUSDT: tick 0.01, step 0.00001
SYMBOL = "BTCUSDT"


def run(coro):
    return asyncio.run(coro)


def units(d: Decimal, decimals: int) -> int:
    return int(d.scaleb(decimals))


def sim_levels(sim: ExchangeSim) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
    uid, bids, asks = sim.book(SYMBOL, 5000)
    conv = lambda rows: [(units(p, PRICE_DECIMALS), units(q, SIZE_DECIMALS)) for p, q in rows]  # noqa: E731
    return uid, conv(bids), conv(asks)


def our_levels(sync: BookSync) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    return sync.book.bids_raw(), sync.book.asks_raw()


def move_market(sim: ExchangeSim, rng: random.Random) -> None:
    """A few level changes around 60,000 on both sides, as a feed would make them."""
    for _ in range(rng.randint(1, 6)):
        side = rng.choice(("BUY", "SELL"))
        ticks = rng.randint(1, 40)
        price = Decimal(60_000) + (-ticks if side == "BUY" else ticks) * Decimal("0.01")
        qty = Decimal(rng.choice((0, 0, 1, 5, 12, 40))) * Decimal("0.001")
        sim.venue.set_market_level(SYMBOL, side, price, qty)


def stream_for(sim: ExchangeSim, **kw) -> tuple[BookSync, DepthStream]:
    sync = BookSync(rule="binance_spot", price_decimals=PRICE_DECIMALS, size_decimals=SIZE_DECIMALS)
    lim = RateLimiter(bl.spot_pools())
    ds = DepthStream(sync, SYMBOL, ws_url=sim.ws_url, rest_url=sim.rest_url, limiter=lim, seed=3, **kw)
    return sync, ds


def test_the_book_equals_the_venue_whenever_synced_under_skipped_duplicated_reordered_diffs_and_drops():
    async def go():
        # publish_interval huge: the test publishes each diff itself, deterministically.
        sim = ExchangeSim(SimConfig(seed=11, publish_interval=3600.0))
        rng = random.Random(5)
        async with sim:
            move_market(sim, rng)
            sim.publish_now()
            sync, ds = stream_for(sim, backoff_s=0.01)
            task = asyncio.create_task(ds.run())
            await until(lambda: sync.state == BookState.SYNCED, "the first sync")
            sim.faults.configure("diff_skip=0.1,diff_duplicate=0.1,diff_reorder=0.1")
            compared = 0
            for step in range(300):
                move_market(sim, rng)
                uid, bids, asks = sim_levels(sim)
                faults_before = (sim.faults.hits["diff_skip"], sim.faults.hits["diff_reorder"])
                sent_before = sim.hub.diffs_sent
                sim.publish_now()
                if step % 97 == 50:
                    ds.drop_connection()
                faulted = (sim.faults.hits["diff_skip"], sim.faults.hits["diff_reorder"]) != faults_before
                if faulted or sim.hub.diffs_sent == sent_before:
                    # Skipped or held back, or nothing to send: a missing diff shows only when a
                    # later one arrives. The book stays at its last (true) state meanwhile.
                    continue
                # The diff arrives and the book catches up, or a gap is seen (desync, then a
                # snapshot). Never a synced book that differs from the venue.
                await until(lambda: sync.state == BookState.SYNCED and sync.last_update_id >= uid, f"step {step}")
                if sync.last_update_id == uid:
                    assert our_levels(sync) == (bids, asks), f"step {step}"
                    compared += 1
            sim.faults.configure("diff_skip=0,diff_duplicate=0,diff_reorder=0")
            ds.close()
            await asyncio.wait_for(task, 5)
            return sync, ds, compared

    sync, ds, compared = run(go())
    assert compared >= 150  # most steps end with a comparison (faulted steps cannot)
    s = sync.stats
    assert s.gaps > 0, "the faults broke the chain at least once"
    assert ds.stats.snapshots > ds.stats.connects, "gaps were repaired from fresh snapshots"
    assert ds.stats.connects >= 4 and ds.stats.disconnects >= 3  # the three drops, reconnected


def test_a_stream_that_cannot_connect_degrades_to_rest_polling_and_says_so():
    async def go():
        sim = ExchangeSim(SimConfig(seed=2, publish_interval=3600.0))
        async with sim:
            rng = random.Random(9)
            move_market(sim, rng)
            sync, ds = stream_for(sim, backoff_s=0.01, degrade_after=2, poll_interval_s=0.01)
            ds.url = "ws://127.0.0.1:9/ws/nothing-listens-here"
            task = asyncio.create_task(ds.run())
            await until(lambda: ds.stats.degraded and sync.state == BookState.SYNCED, "degraded polling")
            move_market(sim, rng)
            uid, bids, asks = sim_levels(sim)
            await until(lambda: sync.last_update_id == uid, "a poll after the market moved")
            assert our_levels(sync) == (bids, asks)
            ds.close()
            await asyncio.wait_for(task, 5)
            return ds

    ds = run(go())
    assert ds.stats.connect_failures >= 2 and ds.stats.connects == 0
    assert "connect" in (ds.stats.last_error or "")


def test_depth_weights():
    assert [bl.depth_weight(n) for n in (1, 100, 101, 500, 1000, 5000)] == [5, 5, 25, 25, 50, 250]
    with pytest.raises(ValueError):
        bl.depth_weight(0)
