"""The simulated venue's own rules: fee rounding, queue lookup, post-only at arrival, taking,
balances, and the OrderVenue answers the tracker relies on."""

from __future__ import annotations

import pytest

from mixmaker.backtest.sim_venue import SimVenue, _level_size, charged_fee, fee_of
from mixmaker.orders import OrderNotFoundError, OrderRejectedError, OrderRequest, Side
from mixmaker.orders.protocol import VenueStatus
from mixmaker.strategy import SCALE
from strategy_helpers import RULES, V, book, in_loop

S = 1_000_000_000


def venue(**kw) -> SimVenue:
    v = SimVenue(RULES, base=10_000, quote=10_000 * V, **kw)
    v.book = book([("99.90", "2"), ("99.80", "3")], [("100.10", "1"), ("100.20", "4")])
    return v


def req(cid, side, price, qty=1000):
    return OrderRequest(cid, "TESTUSDT", Side.from_value(side), price, qty)


def test_fees_round_in_the_venues_favour():
    assert fee_of(10_000_001, SCALE // 5000) == 2001  # 0.02 % of 10,000,001 = 2000.0002 -> 2001
    assert fee_of(10_000_000, SCALE // 5000) == 2000
    assert fee_of(10_000_001, -(SCALE // 10_000)) == -1000  # a rebate of 1000.0001 -> 1000


def test_a_fee_is_reported_as_live_venues_do_in_1e12_of_the_quote():
    # value units at 5 decimals: 2001 of them are 0.02001 of the quote, 20_010_000_000 of 1e-12
    assert charged_fee(10_000_001, SCALE // 5000, 5) == (2001, 20_010_000_000)
    # value units finer than 1e-12 (16 decimals): rounded up to whole 1e-12, and charged as that
    assert charged_fee(10**16 + 1, SCALE // 5000, 16) == (2_000_000_010_000, 200_000_001)


def test_level_size_lookup():
    levels = book([("99.90", "2"), ("99.70", "3")], [("100.10", "1")]).top_raw(10)
    assert _level_size(levels, Side.BUY, 9990) == 2000
    assert _level_size(levels, Side.BUY, 9980) == 0  # inside the levels, empty
    assert _level_size(levels, Side.BUY, 9960) is None  # beyond the levels read
    assert _level_size(levels, Side.SELL, 10010) == 1000 and _level_size(levels, Side.SELL, 10020) is None


@in_loop
async def test_grid_balance_and_post_only_rejects():
    v = venue()
    with pytest.raises(OrderRejectedError, match="grid"):
        await v.create_order(req("a", "buy", 9985))
    with pytest.raises(OrderRejectedError, match="insufficient"):
        await v.create_order(req("b", "sell", 10100, 20_000))
    with pytest.raises(OrderRejectedError, match="immediately match"):
        await v.create_order(req("c", "buy", 10010))
    rep = await v.create_order(req("d", "buy", 9990))
    assert rep.status == VenueStatus.OPEN and v.balances().quote_free == 10_000 * V - 9990 * 1000
    with pytest.raises(OrderNotFoundError):
        await v.cancel_order("TESTUSDT", "zzz", None)


@in_loop
async def test_an_order_that_would_take_on_arrival_expires():
    v = venue(latency_ns=50_000_000)
    await v.create_order(req("a", "buy", 10000))
    v.book = book([("99.90", "2")], [("100.00", "1")])  # the ask comes down while we travel
    v.advance(60_000_000)
    assert v.orders["a"].status == VenueStatus.EXPIRED and v.stream[-1].status == VenueStatus.EXPIRED
    assert v.balances().quote_free == 10_000 * V


@in_loop
async def test_crossing_orders_take_the_book_when_not_post_only():
    v = venue(post_only=False, taker_fee=SCALE // 2000)  # 0.05 %
    await v.create_order(req("a", "buy", 10020, 3000))  # 1 @ 100.10 + 2 @ 100.20, nothing rests
    fills = [t for t in v.trades if t.client_id == "a"]
    assert [(t.price, t.qty, t.is_maker) for t in fills] == [(10010, 1000, False), (10020, 2000, False)]
    assert fills[0].fee == charged_fee(10010 * 1000, SCALE // 2000, RULES.value_decimals)[1]
    assert fills[0].fee == fee_of(10010 * 1000, SCALE // 2000) * 10 ** (12 - RULES.value_decimals)  # 1e-12
    assert v.orders["a"].status == VenueStatus.FILLED
    assert v.base == 13_000


@in_loop
async def test_risk_averse_queue_moves_up_when_the_level_shrinks():
    v = venue()
    await v.create_order(req("a", "buy", 9990))
    assert v.orders["a"].queue_ahead == 2000
    v.book = book([("99.90", "0.5")], [("100.10", "1")])  # 1.5 cancelled ahead of us
    v.on_book()
    assert v.orders["a"].queue_ahead == 500
    v.on_public_trade(9990, 700, buyer_is_maker=True)  # 0.5 ahead, then 0.2 for us
    assert v.orders["a"].filled == 200 and v.orders["a"].status == VenueStatus.PARTIALLY_FILLED
    assert (await v.fetch_order("TESTUSDT", "a")).filled == 200
    assert [r.client_id for r in await v.fetch_open_orders()] == ["a"]


def test_level_within_answers_what_a_top_raw_lookup_answers():
    """The venue places us in the queue with `OrderBook.level_within_raw`; it must say what the
    lookup in `top_raw(n)` arrays says, for prices on both sides, inside, between and beyond."""
    import random

    rnd = random.Random(7)
    for _ in range(200):
        bids = sorted({rnd.randrange(9000, 9990) for _ in range(rnd.randrange(0, 30))}, reverse=True)
        asks = sorted({rnd.randrange(10010, 11000) for _ in range(rnd.randrange(0, 30))})
        b = book([(f"{p / 100:.2f}", str(rnd.randrange(1, 9))) for p in bids],
                 [(f"{p / 100:.2f}", str(rnd.randrange(1, 9))) for p in asks])
        n = rnd.randrange(1, 12)
        levels = b.top_raw(n)
        for _ in range(20):
            side = rnd.choice([Side.BUY, Side.SELL])
            price = rnd.randrange(8990, 11010)
            assert b.level_within_raw(side == Side.BUY, price, n) == _level_size(levels, side, price), (side, price, n)
