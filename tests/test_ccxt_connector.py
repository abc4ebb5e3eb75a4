"""A venue through the generic ccxt connector (REST + ccxt.pro streams) against the simulator:
the same Connector face as the native one, the book None until synced, fills from the stream."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
ccxtpro = pytest.importorskip("ccxt.pro", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the simulator needs picows")

from connector_helpers import start_sim, until, venue_for  # noqa: E402

from mixmaker._core import Side
from mixmaker.connectors import binance_limits as bl  # noqa: E402
from mixmaker.connectors.account import VenueAccount  # noqa: E402
from mixmaker.connectors.ccxt_connector import CcxtConnector  # noqa: E402
from mixmaker.connectors.interface import Connector  # noqa: E402
from mixmaker.orders import ClientOrderTracker  # noqa: E402
from mixmaker.orders.errors import VenueUnavailableError  # noqa: E402
from mixmaker.orders.protocol import OrderRequest  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402
from mixmaker.orders import OrderState  # noqa: E402


def test_a_ccxt_venue_through_the_generic_connector(tmp_path):
    async def go():
        async with start_sim(publish_interval=0.02) as sim:
            sim.venue.set_market_level("BTCUSDT", "SELL", Decimal("50020"), Decimal("0.7"))
            cfg = sim.ccxt_config("mm-key", "mm-secret")
            conn = CcxtConnector(ccxt.binance(cfg), ccxtpro.binance(cfg), bl.spot_pools(), cost=bl.request_cost,
                                 usage=bl.usage_from_headers, retry_after=bl.retry_after_s, name="binance-ccxt")
            assert isinstance(conn, Connector) and isinstance(conn.venue, VenueAccount)
            taker = await venue_for(sim, "tk-key", "tk-secret")
            store = SqliteStore(tmp_path / "orders.db")
            fills = []
            async with conn:
                await conn.start(["BTCUSDT"])
                await until(lambda: conn.book("BTCUSDT") is not None, "the book to sync")
                m = conn.market("BTCUSDT")
                assert conn.book("BTCUSDT").best_ask_raw() == (m.price("50020"), m.size("0.7"))
                tracker = ClientOrderTracker(conn.venue, store, fill_sink=fills.append, prefix="mm")
                await tracker.start()
                conn.attach(tracker)
                cid = await tracker.create("BTCUSDT", "buy", m.price("50000"), m.size("0.01"))
                await until(lambda: sim.venue.user_subscribers("mm") > 0, "ccxt.pro's private stream")
                queries = tracker.stats["queries"]
                await taker.create_order(OrderRequest("tk1", "BTCUSDT", Side.SELL, m.price("50000"), m.size("0.01")))
                await until(lambda: len(fills) == 1, "the fill from watch_my_trades")
                assert tracker.get(cid).state == OrderState.FILLED and fills[0].qty == m.size("0.01")
                assert tracker.stats["queries"] == queries
            store.close()
            await taker.exchange.close()

    asyncio.run(go())


def test_a_failed_catch_up_does_not_end_the_fills_stream(tmp_path):
    """The private stream errors and the REST catch-up fails too: the stream keeps going, and the
    next catch-up brings the fill."""

    async def go():
        async with start_sim(publish_interval=0.02) as sim:
            cfg = sim.ccxt_config("mm-key", "mm-secret")
            conn = CcxtConnector(ccxt.binance(cfg), ccxtpro.binance(cfg), bl.spot_pools(), cost=bl.request_cost,
                                 usage=bl.usage_from_headers, retry_after=bl.retry_after_s, backoff_s=0.01, seed=1)
            taker = await venue_for(sim, "tk-key", "tk-secret")
            store = SqliteStore(tmp_path / "orders.db")
            fills = []
            async with conn:
                await conn.start(["BTCUSDT"])
                m = conn.market("BTCUSDT")
                tracker = ClientOrderTracker(conn.venue, store, fill_sink=fills.append, prefix="mm")
                await tracker.start()
                cid = await tracker.create("BTCUSDT", "buy", m.price("50000"), m.size("0.01"))
                await taker.create_order(OrderRequest("tk1", "BTCUSDT", Side.SELL, m.price("50000"), m.size("0.01")))
                stream_calls, rest_calls = [0], [0]
                real_fetch = conn.venue.fetch_my_trades

                async def failing_stream(*_a, **_k):
                    stream_calls[0] += 1
                    if stream_calls[0] <= 2:
                        raise ccxt.NetworkError("stream down")
                    await asyncio.Event().wait()  # then quiet

                async def flaky_fetch(symbol, since_ms=None):
                    rest_calls[0] += 1
                    if rest_calls[0] == 1:
                        raise VenueUnavailableError("REST down too")
                    return await real_fetch(symbol, since_ms)

                conn.pro.watch_my_trades = failing_stream
                conn.venue.fetch_my_trades = flaky_fetch
                task = conn.attach(tracker)
                await until(lambda: len(fills) == 1, "the second catch-up")
                assert not task.done() and conn.catch_up_failures == 1 and conn.fills_errors == 2
                assert tracker.get(cid).state == OrderState.FILLED
            store.close()
            await taker.exchange.close()

    asyncio.run(go())
