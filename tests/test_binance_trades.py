"""The public trade stream against the simulator: prints arrive as exact integers, in order,
and the stream comes back after a dropped connection."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

pytest.importorskip("picows", reason="the trade stream and the simulator need picows")

from mixmaker.connectors.binance_trades import PublicTradeStream  # noqa: E402

from connector_helpers import start_sim, until, venue_for  # noqa: E402


def test_prints_arrive_exact_and_the_stream_survives_a_drop():
    async def go():
        async with start_sim(publish_interval=0.01) as sim:
            mm = await venue_for(sim, "mm-key", "mm-secret")
            m = mm.market("BTCUSDT")
            await mm.exchange.close()
            sim.venue.set_market_level("BTCUSDT", "BUY", Decimal("49999.99"), Decimal("3"))
            got = []
            stream = PublicTradeStream(m, ws_url=sim.ws_url, on_trade=got.append, backoff_s=0.01, seed=1)
            task = asyncio.create_task(stream.run())
            try:
                await until(lambda: stream.stats.connects == 1 and sim.hub.connections, "the stream")
                sim.venue.market_trade("BTCUSDT", Decimal("49999.99"), Decimal("0.12345"), buyer_is_maker=True)
                await until(lambda: len(got) == 1, "the first print")
                assert (got[0].price, got[0].qty, got[0].buyer_is_maker) == (m.price("49999.99"), m.size("0.12345"), True)
                stream.drop_connection()
                await until(lambda: stream.stats.connects == 2, "the reconnect")
                await until(lambda: len(sim.hub.connections) >= 1, "the server side of it")
                sim.venue.market_trade("BTCUSDT", Decimal("49999.99"), Decimal("0.5"), buyer_is_maker=True)
                await until(lambda: len(got) == 2, "a print after the reconnect")
                assert got[1].qty == m.size("0.5") and got[1].trade_id > got[0].trade_id
                assert stream.stats.unparsed == 0
            finally:
                stream.close()
                await asyncio.wait_for(task, 5)

    asyncio.run(go())
