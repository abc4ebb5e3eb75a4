"""A venue through the generic ccxt connector (REST + ccxt.pro streams) against the simulator:
the same Connector face as the native one, the book None until synced, fills from the stream."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
ccxtpro = pytest.importorskip("ccxt.pro", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the simulator needs picows")

from mixmaker.connectors import binance_limits as bl  # noqa: E402
from mixmaker.connectors.ccxt_connector import CcxtConnector  # noqa: E402
from mixmaker.connectors.interface import Connector  # noqa: E402
from mixmaker.orders import ClientOrderTracker  # noqa: E402
from mixmaker.orders.venue import OrderRequest  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402

from connector_helpers import start_sim, until, venue_for  # noqa: E402


def test_a_ccxt_venue_through_the_generic_connector(tmp_path):
    async def go():
        async with start_sim(publish_interval=0.02) as sim:
            sim.venue.set_market_level("BTCUSDT", "SELL", Decimal("50020"), Decimal("0.7"))
            cfg = sim.ccxt_config("mm-key", "mm-secret")
            conn = CcxtConnector(ccxt.binance(cfg), ccxtpro.binance(cfg), bl.spot_pools(), cost=bl.request_cost,
                                 usage=bl.usage_from_headers, retry_after=bl.retry_after_s, name="binance-ccxt")
            assert isinstance(conn, Connector)
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
                await taker.create_order(OrderRequest("tk1", "BTCUSDT", "sell", m.price("50000"), m.size("0.01")))
                await until(lambda: len(fills) == 1, "the fill from watch_my_trades")
                assert tracker.get(cid).state == "FILLED" and fills[0].qty == m.size("0.01")
                assert tracker.stats["queries"] == queries
            store.close()
            await taker.exchange.close()

    asyncio.run(go())
