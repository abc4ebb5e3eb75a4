"""Pools trading on the exchange simulator: one connector, one tracker, fills attributed to the
pool whose order filled, the ledger equal to the venue, the self-trade guard, and release."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

pytest.importorskip("picows", reason="the connector and the simulator need picows")

from mixmaker.funds.accounts import exchange, pool, user_order  # noqa: E402
from mixmaker.orders import OrderState  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402

from pool_helpers import (  # noqa: E402
    ACCOUNT, connector_for, exchange_sim, fund_order, ledger_for, pmm, pool_id, runtime_for, sim_units, until,
)


def test_two_pools_trade_and_the_ledger_equals_the_venue(tmp_path):
    async def go():
        async with exchange_sim({"BTC": "0.2", "USDT": "12000"}) as sim:
            store = SqliteStore(tmp_path / "db.sqlite")
            ledger = ledger_for(store)
            fund_order(ledger, "a", "0.1", "6000")
            fund_order(ledger, "b", "0.1", "6000")
            async with connector_for(sim) as conn:
                rt, pools, fills = runtime_for(store, ledger, conn, {"tight": pmm(), "wide": pmm(
                    bid_spread=Decimal("0.0003"), ask_spread=Decimal("0.0003"))})
                await rt.start()
                await until(lambda: rt.mid(pool_id("tight")) is not None, "a synced book")
                with store.transaction() as tx:
                    pools.mint(tx, "a", pool_id("tight"), rt.mid(pool_id("tight")), ledger.holdings_of(user_order("a"), tx=tx))
                    pools.mint(tx, "b", pool_id("wide"), rt.mid(pool_id("wide")), ledger.holdings_of(user_order("b"), tx=tx))
                await until(lambda: all(len(ledger.transactions(ref=pool_id(p))) >= 3 for p in ("tight", "wide")),
                            "fills in both pools", timeout=180)  # a bound: ~15 s alone, more under load
                assert await rt.stop()
                rt.tracker.redeliver()
            # every fill is booked once, to the pool whose order it was
            trades = sim.venue.engine.my_trades("mm", "BTCUSDT")
            booked = [t for p in ("tight", "wide") for t in ledger.transactions(ref=pool_id(p)) if t.cause == "fill"]
            assert len(booked) == len(trades) and len(trades) >= 6
            by_order = {o.order_id: o.client_order_id for o in sim.venue.engine.orders.values()}
            for t in trades:
                posted = ledger.transaction(f"fill:{ACCOUNT}:BTCUSDT:{t.trade_id}")
                assert posted is not None and posted.ref == fills.pool_of(ACCOUNT, by_order[t.order_id])
            # where = whose, and the ledger's exchange account is what the venue holds
            assert ledger.verify() == []
            for asset in ("BTC", "USDT"):
                assert ledger.owed(exchange(ACCOUNT), asset) == sim_units(sim, asset), asset
            # no order of ours ever met another of ours (the venue would have expired it)
            assert not [o for o in sim.venue.engine.orders.values() if o.status == "EXPIRED_IN_MATCH"]
            store.close()

    asyncio.run(go())


def quiet_book(sim, bid: str = "59000", ask: str = "61000") -> None:
    """Other participants' quotes that do not move: a wide spread, nothing trades by itself."""
    for i in range(3):
        sim.venue.set_market_level("BTCUSDT", "BUY", Decimal(bid) - i, Decimal("1"))
        sim.venue.set_market_level("BTCUSDT", "SELL", Decimal(ask) + i, Decimal("1"))


def orders_posted(sim) -> int:
    return sum(1 for m, p in sim.rest.requests if (m, p) == ("POST", "/api/v3/order"))


def test_the_guard_refuses_an_order_that_would_cross_another_pool_before_it_is_sent(tmp_path):
    async def go():
        async with exchange_sim({"BTC": "1", "USDT": "100000"}, feed=None) as sim:
            quiet_book(sim)
            store = SqliteStore(tmp_path / "db.sqlite")
            ledger = ledger_for(store)
            async with connector_for(sim) as conn:
                # no members: the pools' controllers have no budget and place nothing themselves
                rt, _, fills = runtime_for(store, ledger, conn, {"a": pmm(), "b": pmm()})
                await rt.start()
                a, b = rt.engines[pool_id("a")].orders, rt.engines[pool_id("b")].orders
                buy = await a.create("BTCUSDT", "buy", 6_050_000, 100)  # 60500.00 x 0.001
                assert rt.tracker.get(buy).state == OrderState.OPEN and fills.pool_of(ACCOUNT, buy) == pool_id("a")
                sent = orders_posted(sim)
                sell = await b.create("BTCUSDT", "sell", 6_040_000, 100)  # would trade with a's bid
                assert rt.tracker.get(sell).state == OrderState.FAILED and orders_posted(sim) == sent  # never left
                assert rt.guard.refused == {pool_id("b"): 1}
                above = await b.create("BTCUSDT", "sell", 6_060_000, 100)
                assert rt.tracker.get(above).state == OrderState.OPEN
                # within one pool the guard does not judge (a controller never crosses itself); the
                # venue's self-trade prevention is the second line: it expires the resting order
                await a.create("BTCUSDT", "sell", 6_050_000, 100)
                await until(lambda: rt.tracker.get(buy).state == OrderState.EXPIRED, "the venue's STP to expire a's bid")
                # an order outside every pool is refused: its fills would have no owner
                stray = await rt.tracker.create("BTCUSDT", "buy", 5_000_000, 100)
                assert rt.tracker.get(stray).state == OrderState.FAILED and fills.pool_of(ACCOUNT, stray) is None
                assert await rt.stop()
            assert sim.venue.engine.my_trades("mm", "BTCUSDT") == []
            store.close()

    asyncio.run(go())


def test_two_running_pools_whose_quotes_cross_never_trade_with_each_other(tmp_path):
    async def go():
        async with exchange_sim({"BTC": "0.1", "USDT": "12000"}, feed=None) as sim:
            quiet_book(sim)
            store = SqliteStore(tmp_path / "db.sqlite")
            ledger = ledger_for(store)
            fund_order(ledger, "a", "0.05", "6000")
            fund_order(ledger, "b", "0.05", "6000")
            async with connector_for(sim) as conn:
                # a quotes around the best ask, b around the best bid: decided on one tick from one book,
                # before either order is in it, a's bid is far above b's ask
                rt, pools, _ = runtime_for(store, ledger, conn, {
                    "a": pmm(price_type="best_ask", order_refresh_time=Decimal("0.3")),
                    "b": pmm(price_type="best_bid", order_refresh_time=Decimal("0.3"))})
                await rt.start()
                await until(lambda: rt.mid(pool_id("a")) is not None, "a synced book")
                with store.transaction() as tx:
                    pools.mint(tx, "a", pool_id("a"), rt.mid(pool_id("a")), ledger.holdings_of(user_order("a"), tx=tx))
                    pools.mint(tx, "b", pool_id("b"), rt.mid(pool_id("b")), ledger.holdings_of(user_order("b"), tx=tx))
                await until(lambda: sum(rt.guard.refused.values()) >= 1, "the guard to refuse crossing quotes")
                await asyncio.sleep(1)  # and they keep quoting for a while
                assert await rt.stop()
            ours = [o for o in sim.venue.engine.orders.values()]
            assert ours and not [o for o in ours if o.status == "EXPIRED_IN_MATCH"]
            assert sim.venue.engine.my_trades("mm", "BTCUSDT") == []
            store.close()

    asyncio.run(go())


def test_release_frees_a_members_part_without_stopping_the_pool(tmp_path):
    async def go():
        async with exchange_sim({"BTC": "0.02", "USDT": "1200"}, feed=None) as sim:
            quiet_book(sim, "59999", "60001")
            store = SqliteStore(tmp_path / "db.sqlite")
            ledger = ledger_for(store)
            fund_order(ledger, "a", "0.01", "600")
            fund_order(ledger, "b", "0.01", "600")
            async with connector_for(sim) as conn:
                # three levels a side lock most of the pool: 0.015 of 0.02 BTC, ~900 of 1200 USDT
                rt, pools, _ = runtime_for(store, ledger, conn, {"p": pmm(
                    order_amount=Decimal("0.005"), order_levels=3, order_level_spread=Decimal("0.001"),
                    bid_spread=Decimal("0.01"), ask_spread=Decimal("0.01"), order_refresh_time=Decimal("0.5"))})
                pid = pool_id("p")
                await rt.start()
                await until(lambda: rt.mid(pid) is not None, "a synced book")
                with store.transaction() as tx:
                    pools.mint(tx, "a", pid, rt.mid(pid), ledger.holdings_of(user_order("a"), tx=tx))
                    pools.mint(tx, "b", pid, rt.mid(pid), ledger.holdings_of(user_order("b"), tx=tx))
                await until(lambda: len([v for v in rt.live_orders(pid) if v.state == OrderState.OPEN]) == 6, "six quotes")
                before = {v.client_id for v in rt.live_orders(pid)}
                await until(lambda: rt.release is not None, "")
                done = False
                for _ in range(50):
                    if done := await rt.release("b"):
                        break
                    await asyncio.sleep(0.1)
                assert done and rt.stats["cancels_for_release"] > 0
                # b's part is out of the budget: whatever the pool quotes now fits in a's part alone
                base_locked, quote_locked = rt.locked(pid)
                usable_base, usable_quote = rt.engines[pid].budget.usable_units()
                assert usable_base <= ledger.owed(pool(pid), "BTC") // 2 + 1
                assert base_locked * 1000 <= usable_base and quote_locked * 10 <= usable_quote
                with store.transaction() as tx:
                    burned = pools.burn(tx, "b", rt.mid(pid))
                # what b is owed is free on the exchange account, and the pool trades on
                free_btc, _ = sim.balance("mm", "BTC")
                free_usdt, _ = sim.balance("mm", "USDT")
                assert free_btc * 10**8 >= burned.to_order["BTC"] and free_usdt * 10**8 >= burned.to_order["USDT"]
                await until(lambda: {v.client_id for v in rt.live_orders(pid) if v.state == OrderState.OPEN} - before,
                            "the pool to quote again with what is left")
                assert rt.engines[pid].executor.status.name == "RUNNING"
                assert await rt.stop()
            assert ledger.verify() == []
            store.close()

    asyncio.run(go())


def test_a_restart_cancels_the_previous_runs_orders_and_books_their_fills(tmp_path):
    async def go():
        async with exchange_sim({"BTC": "0.02", "USDT": "1200"}, feed=None) as sim:
            quiet_book(sim, "59999", "60001")
            store = SqliteStore(tmp_path / "db.sqlite")
            ledger = ledger_for(store)
            tranche = fund_order(ledger, "a", "0.02", "1200")
            pid = pool_id("p")
            async with connector_for(sim) as conn:
                rt, pools, fills = runtime_for(store, ledger, conn, {"p": pmm(bid_spread=Decimal("0.01"),
                                                                             ask_spread=Decimal("0.01"))})
                await rt.start()
                await until(lambda: rt.mid(pid) is not None, "a synced book")
                with store.transaction() as tx:
                    pools.mint(tx, "a", pid, rt.mid(pid), tranche)
                await until(lambda: len([v for v in rt.live_orders(pid) if v.state == OrderState.OPEN]) == 2, "two quotes")
                old = {v.client_id for v in rt.live_orders(pid)}
                rt.clock.stop()  # the process dies: nothing is cancelled
                for t in rt._tasks:
                    t.cancel()
            store.close()
            # while it is down, one of its orders fills
            sell = next(o for o in sim.open_orders("mm") if o.side == "SELL")
            sim.venue.market_trade("BTCUSDT", sell.price, 3 + sell.orig_qty, buyer_is_maker=False)  # through the book
            store = SqliteStore(tmp_path / "db.sqlite")
            ledger = ledger_for(store)
            async with connector_for(sim) as conn:
                rt, pools, fills = runtime_for(store, ledger, conn, {"p": pmm(bid_spread=Decimal("0.01"),
                                                                             ask_spread=Decimal("0.01"))})
                await rt.start()
                assert rt.stats["cancels_for_restart"] == 1  # the buy; the sell had filled
                assert not [o for o in sim.open_orders("mm") if o.client_order_id in old]
                assert [t.ref for t in ledger.transactions(ref=pid) if t.cause == "fill"] == [pid]
                assert await rt.stop()
            for asset in ("BTC", "USDT"):
                assert ledger.owed(exchange(ACCOUNT), asset) == sim_units(sim, asset)
            assert ledger.verify() == []
            store.close()

    asyncio.run(go())


def test_an_avellaneda_pool_hears_the_public_prints_and_quotes(tmp_path):
    from mixmaker.strategy import AvellanedaConfig

    async def go():
        async with exchange_sim({"BTC": "0.05", "USDT": "3000"}) as sim:
            store = SqliteStore(tmp_path / "db.sqlite")
            ledger = ledger_for(store)
            tranche = fund_order(ledger, "a", "0.05", "3000")
            pid = pool_id("as")
            cfg = AvellanedaConfig(order_amount=Decimal("0.001"), volatility_buffer_size=10,
                                   trading_intensity_buffer_size=10, order_refresh_time=Decimal("1"))
            async with connector_for(sim) as conn:
                rt, pools, _ = runtime_for(store, ledger, conn, {"as": cfg})
                await rt.start()
                await until(lambda: rt.mid(pid) is not None, "a synced book")
                with store.transaction() as tx:
                    pools.mint(tx, "a", pid, rt.mid(pid), tranche)
                await until(lambda: rt.engines[pid].executor.stats["created"] >= 2, "Avellaneda's quotes", timeout=60)
                assert rt._trade_streams[0].stats.trades > 0
                assert await rt.stop()
            store.close()

    asyncio.run(go())


def test_a_cancel_cut_by_a_kill_is_sent_again_at_the_restart(tmp_path):
    """A run journaled a cancel (PENDING_CANCEL) and died before the request left: the next run
    sends it again, or the order stays on the book and a leaving member waits for it forever."""

    async def go():
        async with exchange_sim({"BTC": "0.02", "USDT": "1200"}, feed=None) as sim:
            quiet_book(sim, "59999", "60001")
            store = SqliteStore(tmp_path / "db.sqlite")
            ledger = ledger_for(store)
            tranche = fund_order(ledger, "a", "0.02", "1200")
            pid = pool_id("p")
            spreads = {"p": pmm(bid_spread=Decimal("0.01"), ask_spread=Decimal("0.01"))}
            async with connector_for(sim) as conn:
                rt, pools, fills = runtime_for(store, ledger, conn, spreads)
                await rt.start()
                await until(lambda: rt.mid(pid) is not None, "a synced book")
                with store.transaction() as tx:
                    pools.mint(tx, "a", pid, rt.mid(pid), tranche)
                await until(lambda: len([v for v in rt.live_orders(pid) if v.state == OrderState.OPEN]) == 2,
                            "two quotes")
                rt.clock.stop()
                for t in rt._tasks:
                    t.cancel()
                cid = rt.live_orders(pid)[0].client_id
                never = asyncio.Event()

                async def cut(*_a, **_k):  # the process dies before the cancel leaves
                    await never.wait()

                rt.tracker.venue.cancel_order = cut
                pending = asyncio.create_task(rt.tracker.cancel(cid))
                await until(lambda: rt.tracker.get(cid).state == OrderState.PENDING_CANCEL, "the cancel journaled")
                pending.cancel()
            store.close()
            assert cid in {o.client_order_id for o in sim.open_orders("mm")}
            store = SqliteStore(tmp_path / "db.sqlite")
            ledger = ledger_for(store)
            async with connector_for(sim) as conn:
                rt, pools, fills = runtime_for(store, ledger, conn, spreads)
                await rt.start()
                assert cid not in {o.client_order_id for o in sim.open_orders("mm")}
                assert rt.tracker.get(cid).state == OrderState.CANCELED
                assert await rt.stop()
            store.close()

    asyncio.run(go())
