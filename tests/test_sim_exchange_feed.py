"""Market activity: the recorded spot feed and the synthetic generator move the simulator's book."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from conftest import ParsedFeed, recording_path
from mixmaker.sim.exchange.feed import RecordedFeed, SyntheticFeed
from mixmaker.sim.exchange.matching import SymbolRules
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig
from mixmaker.sim.exchange.operations import Venue
from sim_exchange_helpers import MARKET, SYMBOL, pro_client, run, synced_book, until

RULES = (SymbolRules(SYMBOL, "BTC", "USDT"),)


def _reference(feed: ParsedFeed, k: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    book = feed.book_after(k)
    p, s = Decimal(10) ** -feed.price_decimals, Decimal(10) ** -feed.size_decimals
    return [(a * p, b * s) for a, b in book.bids_desc()], [(a * p, b * s) for a, b in book.asks_asc()]


def test_recorded_feed_rebuilds_the_recorded_book(spot_feed: ParsedFeed) -> None:
    """Without prints, the venue's book is exactly the recording's book after the same diff."""
    k = 200
    venue = Venue(RULES)
    feed = RecordedFeed(recording_path("spot"), SYMBOL, speed=0, trades=False, max_messages=spot_feed.applied[k].pos + 1)
    asyncio.run(feed.run(venue))
    _, bids, asks = venue.engine.depth(SYMBOL, 10_000)
    ref_bids, ref_asks = _reference(spot_feed, k)
    assert (bids, asks) == (ref_bids, ref_asks)
    assert feed.applied == k + 2  # the snapshot and diffs 0..k


def test_recorded_prints_fill_our_order_at_the_touch(spot_feed: ParsedFeed) -> None:
    venue = Venue(RULES, maker_fee=Decimal(0))
    venue.add_account("alice", "k", "s", {"USDT": "1000000", "BTC": "10"})
    head = RecordedFeed(recording_path("spot"), SYMBOL, speed=0, max_messages=spot_feed.snapshot_pos + 1)
    asyncio.run(head.run(venue))
    _, bids, asks = venue.engine.depth(SYMBOL, 1)
    best_bid, best_ask = bids[0][0], asks[0][0]
    # Join both sides of the touch, at the back of the queue; the recorded flow reaches us.
    buy = venue.engine.submit("alice", SYMBOL, "BUY", "LIMIT", Decimal("0.001"), best_bid, "GTC").order
    sell = venue.engine.submit("alice", SYMBOL, "SELL", "LIMIT", Decimal("0.001"), best_ask, "GTC").order
    rest = RecordedFeed(recording_path("spot"), SYMBOL, speed=0, max_messages=spot_feed.applied[2000].pos)
    asyncio.run(rest.run(venue))
    assert buy is not None and sell is not None
    assert buy.executed_qty > 0 or sell.executed_qty > 0
    fills = venue.engine.my_trades("alice", SYMBOL)
    assert fills and all(f.is_maker for f in fills)
    for asset in ("BTC", "USDT"):  # conservation holds across our fills and the market account
        assert venue.engine.accounts.total(asset) == {"BTC": Decimal(10), "USDT": Decimal(1000000)}[asset]


def _run_synthetic(seed: int, steps: int) -> tuple[Venue, list[tuple[Decimal, Decimal]]]:
    venue = Venue(RULES)
    feed = SyntheticFeed(SYMBOL, seed=seed)
    touches = []
    for _ in range(steps):
        feed.step(venue)
        _, bids, asks = venue.engine.depth(SYMBOL, 1)
        assert bids[0][0] < asks[0][0]  # never crossed
        touches.append((bids[0][0], asks[0][0]))
    return venue, touches


def test_synthetic_feed_is_deterministic_and_moves() -> None:
    a, touches_a = _run_synthetic(seed=5, steps=300)
    b, touches_b = _run_synthetic(seed=5, steps=300)
    assert touches_a == touches_b
    assert a.engine.depth(SYMBOL, 100) == b.engine.depth(SYMBOL, 100)
    assert len(set(touches_a)) > 20  # the touch wanders
    _, touches_c = _run_synthetic(seed=6, steps=300)
    assert touches_c != touches_a


def test_synthetic_market_fills_our_resting_quotes_and_ccxt_follows_the_book() -> None:
    async def scenario() -> None:
        feed = SyntheticFeed(SYMBOL, seed=3, interval=0.005, steps=400)
        config = SimConfig(publish_interval=0.01, rules=RULES, feed=feed)
        async with ExchangeSim(config) as sim:
            sim.add_account("alice", "alice-key", "alice-secret-do-not-print", {"USDT": "100000", "BTC": "2"})
            await until(lambda: bool(sim.book(SYMBOL)[1]))
            _, bids, asks = sim.book(SYMBOL, 1)
            tick = Decimal("0.01")
            sim.venue.engine.submit("alice", SYMBOL, "BUY", "LIMIT", Decimal("0.01"), bids[0][0] - 3 * tick, "GTC")
            sim.venue.engine.submit("alice", SYMBOL, "SELL", "LIMIT", Decimal("0.01"), asks[0][0] + 3 * tick, "GTC")
            async with pro_client(sim) as pro:
                await pro.watch_order_book(MARKET)
                assert sim.feed_task is not None
                await sim.feed_task  # the generator's steps are done: the book is still
                book = await synced_book(pro, sim)
                _, bids, asks = sim.book(SYMBOL)
                assert book["bids"] == [[float(p), float(q)] for p, q in bids]
                assert book["asks"] == [[float(p), float(q)] for p, q in asks]
            assert sim.venue.engine.my_trades("alice", SYMBOL)  # the moving market reached a quote

    run(scenario())


def test_burst_of_recorded_diffs_reaches_synced_clients_at_socket_speed(spot_feed: ParsedFeed) -> None:
    """Sync first, then 300 recorded diffs go out back to back; ccxt.pro ends on the same book."""

    async def scenario() -> None:
        head = spot_feed.snapshot_pos + 1
        async with ExchangeSim(SimConfig(publish_interval=3600, rules=RULES)) as sim:
            for _ in RecordedFeed(recording_path("spot"), SYMBOL, trades=False, max_messages=head).steps(sim.venue):
                pass
            sim.publish_now()
            async with pro_client(sim) as pro:
                watch = asyncio.ensure_future(pro.watch_order_book(MARKET))
                await until(lambda: pro.orderbooks.get(MARKET) is not None and pro.orderbooks[MARKET]["nonce"])
                sim.venue.set_market_level(SYMBOL, "BUY", Decimal(1), Decimal(1))
                sim.publish_now()  # one diff after the snapshot resolves the watch
                await watch
                # From the file's start again: the snapshot is re-applied as no change, then diffs 0..300.
                rest = RecordedFeed(recording_path("spot"), SYMBOL, trades=False,
                                    max_messages=spot_feed.applied[300].pos + 1)
                payloads = sim.burst(SYMBOL, rest.steps(sim.venue))
                assert len(payloads) > 250  # one diff per recorded diff that changed the book
                sent_before = sim.hub.diffs_sent
                await sim.send_burst(SYMBOL, payloads)
                assert sim.hub.diffs_sent - sent_before == len(payloads)
                book = await synced_book(pro, sim)
                _, bids, asks = sim.book(SYMBOL)
                # ccxt's snapshot held 1,000 levels a side, the venue's book holds more: compare the top.
                assert book["bids"][:50] == [[float(p), float(q)] for p, q in bids[:50]]
                assert book["asks"][:50] == [[float(p), float(q)] for p, q in asks[:50]]

    run(scenario())
