"""The whole Binance spot connector against the simulator: books sync in the background and are
None until then, the tracker trades through it, and fills come back on the user stream."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the connector and the simulator need picows")

from connector_helpers import start_sim, until, venue_for  # noqa: E402

from mixmaker._core import Side
from mixmaker.connectors.binance import BinanceEndpoints, BinanceSpotConnector  # noqa: E402
from mixmaker.connectors.credentials import ApiCredentials  # noqa: E402
from mixmaker.connectors.interface import Connector  # noqa: E402
from mixmaker.orders import ClientOrderTracker  # noqa: E402
from mixmaker.orders.protocol import OrderRequest  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402
from mixmaker.orders import OrderState  # noqa: E402


def test_books_orders_and_fills_through_one_connector(tmp_path):
    async def go():
        async with start_sim(publish_interval=0.02) as sim:
            sim.venue.set_market_level("BTCUSDT", "BUY", Decimal("49990"), Decimal("1"))
            endpoints = BinanceEndpoints(sim.rest_url, sim.ws_url, f"{sim.ws_url}/ws-api/v3")
            taker = await venue_for(sim, "tk-key", "tk-secret")
            store = SqliteStore(tmp_path / "orders.db")
            fills = []
            async with BinanceSpotConnector(ApiCredentials("mm-key", "mm-secret"), endpoints) as conn:
                assert isinstance(conn, Connector)  # the same face as any other venue's
                assert conn.book("BTCUSDT") is None  # not started: nothing to quote on
                await conn.start(["BTCUSDT"])
                await until(lambda: conn.book("BTCUSDT") is not None, "the book to sync")
                m = conn.market("BTCUSDT")
                assert conn.book("BTCUSDT").best_bid_raw() == (m.price("49990"), m.size("1"))
                tracker = ClientOrderTracker(conn.venue, store, fill_sink=fills.append, prefix="mm")
                user = conn.attach(tracker)
                await tracker.start()
                await until(user.subscribed.is_set, "the user stream")
                cid = await tracker.create("BTCUSDT", "sell", m.price("50010"), m.size("0.02"))
                await until(lambda: conn.book("BTCUSDT") is not None
                            and conn.book("BTCUSDT").best_ask_raw() == (m.price("50010"), m.size("0.02")), "our ask in the book")
                await taker.create_order(OrderRequest("tk1", "BTCUSDT", Side.BUY, m.price("50010"), m.size("0.02")))
                await until(lambda: tracker.get(cid).state == OrderState.FILLED, "the fill on the user stream")
                assert [f.qty for f in fills] == [m.size("0.02")]
                assert "mm-secret" not in repr(conn.credentials)
                with pytest.raises(RuntimeError, match="already attached"):
                    conn.attach(tracker)
            store.close()
            await taker.exchange.close()

    asyncio.run(go())
