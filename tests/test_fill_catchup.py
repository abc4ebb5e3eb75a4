"""Fills are never lost to a page boundary: thousands of fills happen while the tracker is away
(a real process killed, a user stream down, a ccxt.pro stream failing, an order the venue will
not answer about), and every catch-up path reads the venue's trade history to its end. The
simulator's `myTrades` pages exactly as Binance's does, so one page holds at most 1000.
"""

from __future__ import annotations

import asyncio

import pytest

ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
ccxtpro = pytest.importorskip("ccxt.pro", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the simulator needs picows")

from connector_helpers import start_sim, until, venue_for  # noqa: E402
from fake_venue import FakeVenue  # noqa: E402
from worker_helpers import market_sells, spawn, venue_orders  # noqa: E402

from mixmaker._core import Side
from mixmaker.connectors import binance_limits as bl  # noqa: E402
from mixmaker.connectors.binance import BinanceEndpoints, BinanceSpotConnector  # noqa: E402
from mixmaker.connectors.ccxt_connector import CcxtConnector  # noqa: E402
from mixmaker.connectors.ccxt_account import CcxtVenue  # noqa: E402
from mixmaker.connectors.credentials import ApiCredentials  # noqa: E402
from mixmaker.orders import ClientOrderTracker, OrderNotFoundError, OrderReport  # noqa: E402
from mixmaker.orders.trade_pages import (  # noqa: E402
    TradeHistoryError,
    TradePage,
    trades_by_id,
    trades_by_time,
)
from mixmaker.orders.protocol import OrderRequest, TradeReport  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402
from mixmaker.orders import OrderState  # noqa: E402

LOT = "0.00001"  # one fill each: the market's smallest size
# Two bids of 1500 lots each: 2600 fills fill the first and most of the second, more than one
# page per order and several pages of the symbol's history.
ORDERS = [{"symbol": "BTCUSDT", "side": "buy", "price": "50000", "qty": "0.015"},
          {"symbol": "BTCUSDT", "side": "buy", "price": "50000", "qty": "0.015"}]
FILLS = 2600


def assert_equal_to_venue(t: ClientOrderTracker, sim, cids: list[str], m) -> None:
    """Every fill of the account journaled exactly once; each order filled as the venue says."""
    at_venue = venue_orders(sim, "mm")
    trades = sim.venue.engine.my_trades("mm", "BTCUSDT")
    keys = [f.key for f in t.journal.fills()]
    assert len(keys) == len(set(keys)), "a fill was journaled twice"
    assert sorted(int(k[2]) for k in keys) == [f.trade_id for f in trades], "fills are missing from the journal"
    for cid in cids:
        assert t.get(cid).filled == m.size(at_venue[cid].executed_qty), cid
    assert t.get(cids[0]).state == OrderState.FILLED and t.get(cids[1]).state == OrderState.PARTIALLY_FILLED


# ---------------------------------------------------------------------------------------------
# the simulator's trade history, page by page


def test_the_simulators_trade_history_pages_as_binances():
    async def go():
        async with start_sim() as sim:
            mm = await venue_for(sim, "mm-key", "mm-secret")
            try:
                m = mm.market("BTCUSDT")
                a = await mm.create_order(OrderRequest("a", "BTCUSDT", Side.BUY, m.price("50000"), m.size("0.007")))
                b = await mm.create_order(OrderRequest("b", "BTCUSDT", Side.BUY, m.price("50000"), m.size("0.007")))
                market_sells(sim, "BTCUSDT", "50000", LOT, 1200)  # 700 of a's, then 500 of b's
                ids = [f.trade_id for f in sim.venue.engine.my_trades("mm", "BTCUSDT")]
                times = [f.time_ms for f in sim.venue.engine.my_trades("mm", "BTCUSDT")]

                async def page(**params):
                    rows = await mm.exchange.privateGetMyTrades({"symbol": "BTCUSDT", **params})
                    return [r["id"] for r in rows]

                assert await page() == ids[-500:], "no cursor: the most recent 500, oldest first"
                assert await page(limit=1000) == ids[-1000:]
                assert await page(fromId=ids[0]) == ids[:500]
                assert await page(fromId=ids[300], limit=1000) == ids[300:1200][:1000]
                assert await page(fromId=ids[-1] + 1) == []
                assert await page(startTime=times[0], endTime=times[0] + 86_400_000 - 1, limit=1000) == ids[:1000]
                assert await page(orderId=a.exchange_id, fromId=0, limit=1000) == ids[:700]
                assert await page(orderId=b.exchange_id, fromId=ids[800]) == ids[800:1200]
                for bad, code in (({"limit": 1001}, "-1130"), ({"fromId": 1, "startTime": times[0]}, "-1128"),
                                  ({"startTime": times[0], "endTime": times[0] + 86_400_001}, "-1127"),
                                  ({"orderId": a.exchange_id, "startTime": times[0]}, "-1128")):
                    with pytest.raises(ccxt.BadRequest, match=code):
                        await page(**bad)
                # And the venue reads it all back, across pages.
                assert [int(t.trade_id) for t in await mm.fetch_my_trades("BTCUSDT", times[0] - 60_000)] == ids
                assert [int(t.trade_id) for t in await mm.fetch_order_trades("BTCUSDT", a.exchange_id)] == ids[:700]
                assert [int(t.trade_id) for t in await mm.fetch_my_trades("BTCUSDT")] == ids
            finally:
                await mm.exchange.close()

    asyncio.run(go())


# ---------------------------------------------------------------------------------------------
# the pager's own guarantees


def _trades(ids: list[int], time_ms: int = 0) -> list[TradeReport]:
    return [TradeReport(str(i), "X1", None, "BTCUSDT", "buy", 100, 1, 0, "USDT", True, time_ms) for i in ids]


def test_a_venue_that_ignores_the_cursor_is_an_error_not_a_short_history():
    async def same_page(q: TradePage) -> list[TradeReport]:
        return _trades(list(range(1, q.limit + 1)))

    with pytest.raises(TradeHistoryError, match="ignores fromId"):
        asyncio.run(trades_by_id(same_page, now_ms=lambda: 0, limit=10))

    async def endless(q: TradePage) -> list[TradeReport]:
        start = q.from_id or 1
        return _trades(list(range(start, start + q.limit)))

    with pytest.raises(TradeHistoryError, match="within 5 pages"):
        asyncio.run(trades_by_id(endless, now_ms=lambda: 0, limit=10, max_pages=5))

    async def same_time_page(q: TradePage) -> list[TradeReport]:
        return _trades(list(range(1, 11)), time_ms=7)

    with pytest.raises(TradeHistoryError, match="more than 10 trades at 7 ms"):
        asyncio.run(trades_by_time(same_time_page, since_ms=7, limit=10))


def test_paging_by_time_reads_past_a_venue_that_caps_its_pages():
    history = _trades(list(range(1, 51)))
    history = [TradeReport(t.trade_id, "X1", None, "BTCUSDT", "buy", 100, 1, 0, "USDT", True, int(t.trade_id) // 3)
               for t in history]

    async def capped(q: TradePage) -> list[TradeReport]:  # asks for 100, gets 7 at most
        return [t for t in history if t.time_ms >= q.start_ms][:7]

    got = asyncio.run(trades_by_time(capped, since_ms=0, limit=100))
    assert [t.trade_id for t in got] == [t.trade_id for t in history]


def test_paging_by_id_walks_time_windows_to_the_first_trade():
    """Binance answers at most 24 h per time query: a downtime of days is walked window by window
    until the first trade, then paged by id."""
    day = 86_400_000
    fake = FakeVenue()
    fake.frozen_ms = 10 * day
    cid = "mmx"
    asyncio.run(fake.create_order(OrderRequest(cid, "BTCUSDT", Side.BUY, 100, 10_000)))
    for _ in range(1200):
        fake.fill(cid, 1)
    fake.frozen_ms = 14 * day  # four days later
    got = asyncio.run(fake.fetch_my_trades("BTCUSDT", 7 * day))
    assert len(got) == 1200
    windows = [q for q in fake.pages if q.start_ms is not None]
    assert len(windows) == 4 and all(q.end_ms - q.start_ms < day for q in windows)
    assert [q.from_id for q in fake.pages if q.from_id is not None] == [1001]  # then one page by id


# ---------------------------------------------------------------------------------------------
# the catch-up paths, against the simulator


def test_fills_while_the_tracker_process_is_killed_are_all_journaled_at_startup(tmp_path):
    """A real process places the orders and is killed (SIGKILL); 2,600 fills happen while it is
    down; a new tracker on the same SQLite store reconciles at startup."""

    async def go():
        async with start_sim() as sim:
            db = tmp_path / "orders.db"
            worker = await spawn(db, sim.ccxt_config("mm-key", "mm-secret"), ORDERS)
            cids = await worker.placed()
            await worker.kill()
            market_sells(sim, "BTCUSDT", "50000", LOT, FILLS)
            venue = await venue_for(sim, "mm-key", "mm-secret")
            delivered = []
            t = ClientOrderTracker(venue, SqliteStore(db), prefix="mm", fill_sink=delivered.append)
            try:
                await t.start()
                assert_equal_to_venue(t, sim, cids, venue.market("BTCUSDT"))
                assert len(delivered) == FILLS
                assert t.journal.trades_scanned("BTCUSDT") is not None
            finally:
                await venue.exchange.close()

    asyncio.run(go())


def test_fills_lost_while_the_user_stream_was_down_are_caught_up_after_the_reconnect(tmp_path):
    async def go():
        async with start_sim(publish_interval=0.02) as sim:
            endpoints = BinanceEndpoints(sim.rest_url, sim.ws_url, f"{sim.ws_url}/ws-api/v3")
            store = SqliteStore(tmp_path / "orders.db")
            async with BinanceSpotConnector(ApiCredentials("mm-key", "mm-secret"), endpoints) as conn:
                await conn.start(["BTCUSDT"])
                m = conn.market("BTCUSDT")
                t = ClientOrderTracker(conn.venue, store, prefix="mm")
                user = conn.attach(t)
                await t.start()
                await until(user.subscribed.is_set, "the user stream")
                cids = [await t.create(o["symbol"], o["side"], m.price(o["price"]), m.size(o["qty"])) for o in ORDERS]
                sim.faults.set("event_loss", 1.0)  # the venue's events never reach us...
                market_sells(sim, "BTCUSDT", "50000", LOT, FILLS)
                sim.faults.set("event_loss", 0.0)
                assert t.stats["fills"] == 0
                user.drop_connection()  # ...and the socket drops
                await until(lambda: user.stats.subscriptions == 2 and t.stats["fills"] >= FILLS, "the catch-up", 60)
                assert_equal_to_venue(t, sim, cids, m)
                assert user.stats.catch_up_failures == 0
            store.close()

    asyncio.run(go())


def test_fills_missed_by_a_failing_ccxt_pro_stream_are_caught_up_by_rest(tmp_path):
    async def go():
        async with start_sim(publish_interval=0.02) as sim:
            cfg = sim.ccxt_config("mm-key", "mm-secret")
            conn = CcxtConnector(ccxt.binance(cfg), ccxtpro.binance(cfg), bl.spot_pools(), cost=bl.request_cost,
                                 usage=bl.usage_from_headers, retry_after=bl.retry_after_s, backoff_s=0.01, seed=1)
            store = SqliteStore(tmp_path / "orders.db")
            async with conn:
                await conn.start(["BTCUSDT"])
                m = conn.market("BTCUSDT")
                t = ClientOrderTracker(conn.venue, store, prefix="mm")
                await t.start()
                cids = [await t.create(o["symbol"], o["side"], m.price(o["price"]), m.size(o["qty"])) for o in ORDERS]
                fills_done, calls = asyncio.Event(), [0]

                async def stream(*_a, **_k):
                    calls[0] += 1
                    if calls[0] == 1:
                        await fills_done.wait()  # the stream saw none of them
                        raise ccxt.NetworkError("stream down")
                    await asyncio.Event().wait()

                conn.pro.watch_my_trades = stream
                conn.attach(t)
                market_sells(sim, "BTCUSDT", "50000", LOT, FILLS)
                fills_done.set()
                await until(lambda: t.stats["fills"] >= FILLS, "the REST catch-up", 60)
                assert_equal_to_venue(t, sim, cids, m)
                assert conn.catch_up_failures == 0 and conn.fills_errors == 1
            store.close()

    asyncio.run(go())


class ForgetfulVenue(CcxtVenue):
    """A venue whose order queries no longer know some orders (its trade history still does):
    the tracker cannot find them by id, only by their trades."""

    forgotten: set[str]

    async def fetch_order(self, symbol: str, client_id: str) -> OrderReport:
        if client_id in self.forgotten:
            raise OrderNotFoundError(f"{self.name}: order {client_id} does not exist")
        return await super().fetch_order(symbol, client_id)

    async def cancel_order(self, symbol: str, client_id: str, exchange_id: str | None) -> OrderReport:
        if client_id in self.forgotten:
            raise OrderNotFoundError(f"{self.name}: unknown order {client_id}")
        return await super().cancel_order(symbol, client_id, exchange_id)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        return [r for r in await super().fetch_open_orders(symbol) if r.client_id not in self.forgotten]


def test_a_lost_order_resolved_by_its_trades_gets_every_page_of_them(tmp_path):
    async def go():
        async with start_sim() as sim:
            base = await venue_for(sim, "mm-key", "mm-secret")
            venue = ForgetfulVenue(base.exchange, base.limiter, name="binance")
            venue.markets, venue.forgotten = base.markets, set()
            m = venue.market("BTCUSDT")
            t = ClientOrderTracker(venue, SqliteStore(tmp_path / "orders.db"), prefix="mm", inflight_timeout=0.0,
                                   lost_retry_s=0.01, lost_retry_max_s=0.01)
            try:
                await t.start()
                cid = await t.create("BTCUSDT", "buy", m.price("50000"), m.size("0.015"))
                venue.forgotten.add(cid)
                for _ in range(t.lost_after):
                    await t.poll()
                assert t.get(cid).state == OrderState.LOST and t.get(cid).exchange_id is not None
                market_sells(sim, "BTCUSDT", "50000", LOT, 1500)  # fills it, in two pages' worth
                await asyncio.sleep(0.02)
                await t.poll()  # the LOST check: cancel (unknown), ask, and read its trades
                v = t.get(cid)
                assert v.state == OrderState.FILLED and v.filled == m.size("0.015")
                keys = [f.key for f in t.journal.fills()]
                assert len(keys) == len(set(keys)) == 1500
            finally:
                await base.exchange.close()

    asyncio.run(go())


# ---------------------------------------------------------------------------------------------
# the fake venue pages too, so the tracker's own tests cross page boundaries


def test_a_restart_after_thousands_of_fake_fills_reads_every_page(tmp_path):
    venue = FakeVenue()

    async def go():
        t = ClientOrderTracker(venue, SqliteStore(tmp_path / "orders.db"))
        await t.start()
        a = await t.create("BTCUSDT", "buy", 100, 2000)
        b = await t.create("BTCUSDT", "sell", 120, 2000)
        for i in range(2500):  # while nobody listens
            venue.fill(a if i % 2 else b, 1)
        t2 = ClientOrderTracker(venue, SqliteStore(tmp_path / "orders.db"))
        await t2.start()
        return t2, a, b

    t2, a, b = asyncio.run(go())
    assert t2.get(a).filled == t2.get(b).filled == 1250
    assert len(t2.journal.fills()) == 2500
    assert sum(1 for q in venue.pages if q.from_id is not None) >= 3, "the fills were read in pages"
