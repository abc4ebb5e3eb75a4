"""The order tracker on the ccxt REST venue, against the local Binance-compatible simulator:
real ccxt binance class, real HTTP on 127.0.0.1, our limiter in front of every request."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the simulator's WebSocket side needs picows")

from connector_helpers import start_sim, venue_for  # noqa: E402

from mixmaker._core import Side
from mixmaker.connectors.ccxt_account import CcxtVenue, market_rules  # noqa: E402
from mixmaker.markets import MarketRules, MarketRulesError  # noqa: E402
from mixmaker.orders import ClientOrderTracker  # noqa: E402
from mixmaker.orders.errors import OrderNotFoundError, OrderRejectedError, VenueUnavailableError  # noqa: E402
from mixmaker.orders.protocol import OrderRequest, VenueStatus  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402
from mixmaker.orders import OrderState  # noqa: E402


def run(coro):
    return asyncio.run(coro)


def test_an_order_lives_its_whole_life_through_the_tracker(tmp_path):
    async def go():
        async with start_sim() as sim:
            mm, taker = await venue_for(sim, "mm-key", "mm-secret"), await venue_for(sim, "tk-key", "tk-secret")
            store = SqliteStore(tmp_path / "orders.db")
            fills = []
            t = ClientOrderTracker(mm, store, fill_sink=fills.append, prefix="mm")
            try:
                await t.start()
                m = mm.market("BTCUSDT")
                cid = await t.create("BTCUSDT", "buy", m.price("50000"), m.size("0.01"))
                assert t.get(cid).state == OrderState.OPEN and t.get(cid).exchange_id
                assert [o.client_order_id for o in sim.open_orders("mm", "BTCUSDT")] == [cid]
                # Someone sells 0.004 into our bid.
                await taker.create_order(OrderRequest("tk1", "BTCUSDT", Side.SELL, m.price("50000"), m.size("0.004")))
                assert t.apply_trades(await mm.fetch_my_trades("BTCUSDT")) == 1
                assert t.apply_trades(await mm.fetch_my_trades("BTCUSDT")) == 0  # the same trade again
                v = t.get(cid)
                assert (v.state, v.filled, v.avg_price) == (OrderState.PARTIALLY_FILLED, m.size("0.004"), m.price("50000"))
                assert await t.cancel(cid) == OrderState.CANCELED
                assert sim.open_orders("mm", "BTCUSDT") == []
                balances = await mm.fetch_balances()
                for asset in ("USDT", "BTC"):
                    free, locked = sim.balance("mm", asset)
                    assert (balances[asset].free, balances[asset].locked) == (free, locked)
                assert balances["USDT"].total == Decimal("100000") - Decimal("0.004") * 50000
                assert [(f.qty, f.price) for f in fills] == [(m.size("0.004"), m.price("50000"))]
            finally:
                store.close()
                for v in (mm, taker):
                    await v.exchange.close()

    run(go())


def test_a_create_the_venue_acted_on_but_never_answered_is_found_not_resent(tmp_path):
    async def go():
        async with start_sim() as sim:
            mm = await venue_for(sim, "mm-key", "mm-secret", timeout_ms=300)
            sim.faults.set("act_then_timeout", 1.0, 1.0)
            store = SqliteStore(tmp_path / "orders.db")
            t = ClientOrderTracker(mm, store, request_timeout=5.0, retry_delay=0.0, inflight_timeout=0.0)
            try:
                await t.start()
                m = mm.market("BTCUSDT")
                cid = await t.create("BTCUSDT", "sell", m.price("70000"), m.size("0.5"))
                sim.faults.set("act_then_timeout", 0.0)
                # Timed out: the tracker asks by client id instead of sending it again.
                assert t.stats["create_uncertain"] == 1
                await t.resolve(cid)
                assert t.get(cid).state == OrderState.OPEN
                assert [o.client_order_id for o in sim.open_orders("mm")] == [cid]  # placed once
            finally:
                store.close()
                await mm.exchange.close()

    run(go())


def test_refusals_and_unknown_orders_map_to_the_tracker_errors():
    async def go():
        async with start_sim() as sim:
            mm = await venue_for(sim, "mm-key", "mm-secret")
            try:
                m = mm.market("BTCUSDT")
                with pytest.raises(OrderRejectedError):  # far more BTC than the account holds
                    await mm.create_order(OrderRequest("big", "BTCUSDT", Side.SELL, m.price("70000"), m.size("50")))
                with pytest.raises(OrderNotFoundError):
                    await mm.fetch_order("BTCUSDT", "never-sent")
                with pytest.raises(OrderNotFoundError):
                    await mm.cancel_order("BTCUSDT", "never-sent", None)
                with pytest.raises(MarketRulesError, match="unknown market"):
                    mm.market("DOGEUSDT")
            finally:
                await mm.exchange.close()

    run(go())


def test_exact_conversions():
    m = MarketRules("BTCUSDT", "BTC", "USDT", 2, 8, 1, 1)
    assert m.price("61659.70") == 6165970 and m.size("0.00100000") == 100000
    assert m.price_str(6165970) == "61659.70" and m.unified == "BTC/USDT"
    for bad in ("0.001", "abc", None, "NaN", 0.1):
        with pytest.raises(MarketRulesError):
            m.price(bad)
    # A float from a ccxt path that ignores number=str is read by its repr, not refused.
    trade = {"id": "1", "order": "9", "side": "buy", "price": 0.1, "amount": "2", "fee": {"cost": 0.000125, "currency": "BNB"}}
    t = CcxtVenue.trade_report(trade, m)
    assert (t.price, t.qty, t.fee) == (10, 200_000_000, 125_000_000)


def test_a_fee_has_one_scale_on_every_live_path():
    """REST (ccxt) and the Binance user stream state one fee the same way: 1e-12 of its asset."""
    from mixmaker.connectors.binance_user import trade_report
    from mixmaker.orders.protocol import FEE_DECIMALS, fee_amount

    m = MarketRules("BTCUSDT", "BTC", "USDT", 2, 5, 1, 1)
    ws = trade_report({"t": 7, "i": 9, "c": "x", "S": "BUY", "L": "50000.00", "l": "0.01000", "n": "0.00000750",
                       "N": "BTC", "m": True, "T": 1}, m)
    rest = CcxtVenue.trade_report({"id": "7", "order": "9", "side": "buy", "price": "50000.00", "amount": "0.01",
                                   "fee": {"cost": "0.0000075", "currency": "BTC"}}, m)
    assert FEE_DECIMALS == 12 and ws.fee == rest.fee == fee_amount("0.0000075") == 7_500_000
    assert ws.fee_asset == rest.fee_asset == "BTC"


def test_market_rules_from_a_ccxt_market():
    m = market_rules({"id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT",
                      "precision": {"price": "0.01", "amount": "0.00001"},
                      "limits": {"amount": {"min": "0.0001"}, "cost": {"min": "5.0000000001"}}})
    assert (m.price_decimals, m.size_decimals, m.tick, m.lot, m.min_size) == (2, 5, 1, 1, 10)
    assert m.min_notional == 50_000_001  # value units (7 decimals), rounded up: below the minimum is refused
    with pytest.raises(MarketRulesError, match="tick and lot"):
        market_rules({"id": "X", "symbol": "X/Y", "base": "X", "quote": "Y", "precision": {"price": "0", "amount": "1"}})


def test_a_venue_clock_that_moved_is_measured_again_and_the_order_is_placed_once():
    async def go():
        async with start_sim() as sim:
            mm = await venue_for(sim, "mm-key", "mm-secret")
            try:
                assert abs(mm.time_difference_ms) < 1_000  # measured in load_markets
                sim.clock_offset_ms = 30_000  # the venue's clock jumps 30 s ahead of ours
                m = mm.market("BTCUSDT")
                rep = await mm.create_order(OrderRequest("c1", "BTCUSDT", Side.BUY, m.price("50000"), m.size("0.01")))
                assert rep.status is VenueStatus.OPEN and mm.clock_resyncs == 1
                assert 29_000 <= -mm.time_difference_ms <= 31_000
                assert [o.client_order_id for o in sim.open_orders("mm")] == ["c1"]  # placed once
                sim.clock_offset_ms = -30_000
                await mm.cancel_order("BTCUSDT", "c1", rep.exchange_id)  # and back: measured again
                assert mm.clock_resyncs == 2 and sim.open_orders("mm") == []
            finally:
                await mm.exchange.close()

    run(go())


def test_a_withdrawal_pays_once_when_its_answer_is_lost_and_when_it_is_asked_again():
    async def go():
        async with start_sim() as sim:
            mm = await venue_for(sim, "mm-key", "mm-secret", timeout_ms=300)
            try:
                sim.faults.set("act_then_timeout", 1.0, 1.0)  # paid, then the answer comes too late
                w = await mm.withdraw("wd-req-1", "BTC", Decimal("0.25"), "bc1qexample")
                sim.faults.set("act_then_timeout", 0.0)
                assert sim.faults.hits["act_then_timeout"] == 1  # the answer really was lost
                assert (w.request_id, w.amount, w.asset) == ("wd-req-1", Decimal("0.25"), "BTC")
                again = await mm.withdraw("wd-req-1", "BTC", Decimal("0.25"), "bc1qexample")
                assert again.exchange_id == w.exchange_id
                assert len(sim.venue.withdrawals) == 1
                free, locked = sim.balance("mm", "BTC")
                assert free + locked == Decimal("1.75")  # 2 - 0.25, once
                other = await mm.withdraw("wd-req-2", "BTC", Decimal("0.5"), "bc1qexample")
                assert other.exchange_id != w.exchange_id and len(await mm.withdrawals("BTC")) == 2
                with pytest.raises(ValueError):
                    await mm.withdraw("wd-req-3", "BTC", 0.1, "bc1qexample")  # a float is refused
            finally:
                await mm.exchange.close()

    run(go())


def test_deposit_address_and_history_are_exact():
    async def go():
        async with start_sim() as sim:
            mm = await venue_for(sim, "mm-key", "mm-secret")
            try:
                a = await mm.deposit_address("USDT")
                assert a.asset == "USDT" and a.address
                sim.venue.deposit("mm", "USDT", "1234.56789012")
                (d,) = await mm.deposits("USDT")
                assert d.amount == Decimal("1234.56789012") and d.request_id is None
            finally:
                await mm.exchange.close()

    run(go())


def test_a_request_held_too_long_in_the_limiter_is_given_up_unsent_which_is_a_certainty():
    async def go():
        async with start_sim() as sim:
            mm = await venue_for(sim, "mm-key", "mm-secret")
            try:
                mm.queue_timeout_s = 0.1
                mm.limiter.rate_limited(60.0)  # as after a 429 with Retry-After: 60
                m = mm.market("BTCUSDT")
                with pytest.raises(OrderRejectedError, match="not sent"):
                    await mm.create_order(OrderRequest("c9", "BTCUSDT", Side.BUY, m.price("50000"), m.size("0.01")))
                with pytest.raises(VenueUnavailableError, match="not sent"):
                    await mm.fetch_order("BTCUSDT", "c9")  # a query: unknown, not refused
                assert sim.open_orders("mm") == [] and mm.limiter.stats.queued == 0
            finally:
                await mm.exchange.close()

    run(go())
