"""The user data stream over the WebSocket API, against the simulator: fills and order updates
reach the tracker as they happen, and what was lost while away is caught up by REST."""

from __future__ import annotations

import asyncio
import pickle

import pytest

ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the user stream and the simulator need picows")

from connector_helpers import start_sim, until, venue_for  # noqa: E402

from mixmaker._core import Side
from mixmaker.connectors.binance_user import UserStream, UserStreamError  # noqa: E402
from mixmaker.connectors.credentials import ApiCredentials  # noqa: E402
from mixmaker.orders import ClientOrderTracker  # noqa: E402
from mixmaker.orders.protocol import OrderRequest  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402
from mixmaker.orders import OrderState  # noqa: E402


def test_fills_arrive_on_the_stream_and_lost_events_are_caught_up_after_a_reconnect(tmp_path):
    async def go():
        async with start_sim() as sim:
            mm, taker = await venue_for(sim, "mm-key", "mm-secret"), await venue_for(sim, "tk-key", "tk-secret")
            store = SqliteStore(tmp_path / "orders.db")
            fills, balances = [], []
            t = ClientOrderTracker(mm, store, fill_sink=fills.append, prefix="mm")
            m = mm.market("BTCUSDT")

            async def catch_up() -> None:
                t.apply_trades(await mm.fetch_my_trades("BTCUSDT"))

            us = UserStream(ApiCredentials("mm-key", "mm-secret"), ws_api_url=f"{sim.ws_url}/ws-api/v3",
                            limiter=mm.limiter, markets=mm.markets, now_ms=mm.exchange.nonce,
                            on_trade=t.on_trade, on_order=t.on_order_update, on_balances=balances.append,
                            on_resubscribed=catch_up, backoff_s=0.05, seed=1)
            task = asyncio.create_task(us.run())
            try:
                await t.start()
                await until(us.subscribed.is_set, "the subscription")
                cid = await t.create("BTCUSDT", "buy", m.price("50000"), m.size("0.01"))
                queries = t.stats["queries"]
                await taker.create_order(OrderRequest("tk1", "BTCUSDT", Side.SELL, m.price("50000"), m.size("0.004")))
                await until(lambda: len(fills) == 1, "the first fill, from the stream")
                assert t.stats["queries"] == queries, "no REST query was needed"
                assert t.get(cid).state == OrderState.PARTIALLY_FILLED and t.get(cid).filled == m.size("0.004")
                assert balances and balances[-1]["BTC"].free > 2  # exact Decimal balances
                # The venue loses the next events; the socket drops; the catch-up finds the fill.
                sim.faults.set("event_loss", 1.0)
                await taker.create_order(OrderRequest("tk2", "BTCUSDT", Side.SELL, m.price("50000"), m.size("0.006")))
                assert len(fills) == 1
                sim.faults.set("event_loss", 0.0)
                us.drop_connection()
                await until(lambda: us.stats.subscriptions == 2 and len(fills) == 2, "the catch-up")
                assert t.get(cid).state == OrderState.FILLED and [f.qty for f in fills] == [m.size("0.004"), m.size("0.006")]
                assert us.stats.trades == 1, "the second fill came from the catch-up, not the stream"
                assert us.stats.disconnects == 1 and us.stats.unparsed == 0
            finally:
                us.close()
                await asyncio.wait_for(task, 5)
                store.close()
                for v in (mm, taker):
                    await v.exchange.close()

    asyncio.run(go())


def test_a_wrong_secret_is_refused_once_not_retried_forever():
    async def go():
        async with start_sim() as sim:
            mm = await venue_for(sim, "mm-key", "mm-secret")
            us = UserStream(ApiCredentials("mm-key", "not-the-secret"), ws_api_url=f"{sim.ws_url}/ws-api/v3",
                            limiter=mm.limiter, markets=mm.markets, now_ms=mm.exchange.nonce, on_trade=lambda _t: None)
            try:
                with pytest.raises(UserStreamError, match="refused"):
                    await asyncio.wait_for(us.run(), 10)
            finally:
                await mm.exchange.close()

    asyncio.run(go())


def test_credentials_never_show_the_secret():
    c = ApiCredentials("abcdefgh", "s3cr3t-value")
    for text in (repr(c), str(c), f"{c}", f"{c!r}"):
        assert "s3cr3t" not in text
    with pytest.raises(TypeError):
        pickle.dumps(c)
    with pytest.raises(ValueError):
        ApiCredentials("k", "")
