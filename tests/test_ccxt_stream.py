"""The ccxt.pro fallback book stream against the simulator with skipped diffs: ccxt finds each
gap (ChecksumError), our book goes not-ready at once, and whenever it is synced it equals the
venue's book at the same update id."""

from __future__ import annotations

import asyncio
import random

import pytest

ccxtpro = pytest.importorskip("ccxt.pro", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the simulator needs picows")

from mixmaker.book import BookState, BookSync  # noqa: E402
from mixmaker.connectors.ccxt_stream import CcxtProBook  # noqa: E402
from mixmaker.sim.exchange.feed import SyntheticFeed  # noqa: E402
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig  # noqa: E402

from connector_helpers import until  # noqa: E402

DEPTH = 20


def test_gaps_make_the_book_not_ready_and_it_comes_back_equal_to_the_venue():
    async def go():
        sim = ExchangeSim(SimConfig(seed=5, publish_interval=0.02, keep_books=DEPTH,
                                    feed=SyntheticFeed(symbol="BTCUSDT", seed=6, interval=0.02)))
        async with sim:
            ex = ccxtpro.binance(sim.ccxt_config("k", "s"))
            await ex.load_markets()
            sync = BookSync(rule="sequential", price_decimals=2, size_decimals=5)
            stream = CcxtProBook(ex, "BTC/USDT", sync, depth=DEPTH)
            task = asyncio.create_task(stream.run())
            compared, rng = 0, random.Random(1)
            try:
                await until(lambda: sync.state == BookState.SYNCED, "the first sync")
                sim.faults.set("diff_skip", 0.1)
                loop = asyncio.get_running_loop()
                end = loop.time() + 4.0
                while loop.time() < end:
                    await asyncio.sleep(rng.uniform(0.005, 0.03))
                    if sync.state != BookState.SYNCED:
                        assert sync.book.best_bid_raw() is None  # not ready means no data at all
                        continue
                    truth = sim.book_at("BTCUSDT", sync.last_update_id)
                    if truth is None:
                        continue
                    bids, asks = ([(int(p.scaleb(2)), int(q.scaleb(5))) for p, q in side] for side in truth)
                    assert sync.book.bids_raw(DEPTH) == bids[:DEPTH] and sync.book.asks_raw(DEPTH) == asks[:DEPTH]
                    compared += 1
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await ex.close()
            return compared, stream.stats

    compared, stats = asyncio.run(go())
    assert compared >= 20, compared
    assert stats.checksum_errors > 0, "ccxt saw the skipped diffs"
    assert stats.updates > stats.checksum_errors


def test_the_fallback_needs_the_sequential_rule():
    with pytest.raises(ValueError, match="sequential"):
        CcxtProBook(object(), "BTC/USDT", BookSync(rule="binance_spot", price_decimals=2, size_decimals=5))
