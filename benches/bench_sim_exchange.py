"""What the exchange simulator can sustain, so a connector benchmark knows it is not measuring us.

    python benches/bench_sim_exchange.py [FEED]

Rows (best of 3 where cheap): matching-engine submit+cancel pairs per second; a recorded feed
replayed into the engine (messages and level updates per second); depth diffs per second from
the engine to a picows client over 127.0.0.1, made one by one or prepared as a burst of recorded
diffs (`ExchangeSim.burst`); signed REST order round trips per second (aiohttp
client, HMAC included). FEED defaults to the shared spot recording.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from mixmaker.sim.exchange.feed import RecordedFeed
from mixmaker.sim.exchange.matching import MatchingEngine, SymbolRules
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig
from mixmaker.sim.exchange.operations import Venue

SPOT = Path(__file__).resolve().parents[2] / "shared/data/market/binance_spot_btcusdt_20240808_hftbacktest.gz"
RULES = (SymbolRules("BTCUSDT", "BTC", "USDT"),)
REPEATS = 3


def engine_pairs_per_s(pairs: int = 20_000) -> float:
    best = 0.0
    for _ in range(REPEATS):
        eng = MatchingEngine(RULES)
        eng.accounts.credit("a", "USDT", Decimal(10**12))
        t0 = time.perf_counter()
        for i in range(pairs):
            out = eng.submit("a", "BTCUSDT", "BUY", "LIMIT", Decimal("0.001"), Decimal(50000 + i % 100), "GTC")
            assert out.order is not None
            eng.cancel("a", "BTCUSDT", out.order.order_id)
        best = max(best, pairs / (time.perf_counter() - t0))
    return best


def feed_rates(path: Path) -> tuple[float, float]:
    venue = Venue(RULES)
    feed = RecordedFeed(path, "BTCUSDT", speed=0)
    t0 = time.perf_counter()
    asyncio.run(feed.run(venue))
    elapsed = time.perf_counter() - t0
    return feed.applied / elapsed, venue.engine.books["BTCUSDT"].update_id / elapsed


class _Counter(WSListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.count = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.count += 1


async def diffs_per_s(diffs: int = 20_000) -> float:
    async with ExchangeSim(SimConfig(publish_interval=3600, rules=RULES)) as sim:
        transport, counter = await ws_connect(_Counter, f"{sim.ws_url}/ws/btcusdt@depth@100ms")
        t0 = time.perf_counter()
        for i in range(diffs):
            sim.venue.set_market_level("BTCUSDT", "BUY", Decimal(50000 + i % 20), Decimal(i % 7 + 1))
            sim.publish_now()
            if i % 256 == 0:
                await asyncio.sleep(0)
        while counter.count < diffs:
            await asyncio.sleep(0.001)
        rate = diffs / (time.perf_counter() - t0)
        transport.disconnect()
        return rate


async def burst_per_s(path: Path, max_messages: int | None = None) -> tuple[int, float]:
    """Recorded diffs prepared with `ExchangeSim.burst`, then sent back to back to a picows client."""
    async with ExchangeSim(SimConfig(publish_interval=3600, rules=RULES)) as sim:
        transport, counter = await ws_connect(_Counter, f"{sim.ws_url}/ws/btcusdt@depth@100ms")
        payloads = sim.burst("BTCUSDT", RecordedFeed(path, "BTCUSDT", trades=False, max_messages=max_messages).steps(sim.venue))
        await asyncio.sleep(0.2)
        counter.count = 0
        t0 = time.perf_counter()
        await sim.send_burst("BTCUSDT", payloads)
        while counter.count < len(payloads):
            await asyncio.sleep(0.001)
        rate = len(payloads) / (time.perf_counter() - t0)
        transport.disconnect()
        return len(payloads), rate


async def rest_orders_per_s(orders: int = 2000) -> float:
    async with ExchangeSim(SimConfig(rules=RULES, weight_limit=10**9, order_limit=10**9)) as sim:
        sim.add_account("a", "k", "s", {"USDT": "1000000000"})
        url = f"{sim.rest_url}/api/v3/order"
        async with aiohttp.ClientSession() as http:
            t0 = time.perf_counter()
            for i in range(orders):
                query = urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                   "quantity": "0.001", "price": str(40000 + i % 100), "timestamp": sim.venue.clock()})
                body = f"{query}&signature={hmac.new(b's', query.encode(), hashlib.sha256).hexdigest()}"
                async with http.post(url, data=body, headers={"X-MBX-APIKEY": "k",
                                                              "Content-Type": "application/x-www-form-urlencoded"}) as r:
                    assert r.status == 200, await r.text()
            return orders / (time.perf_counter() - t0)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else SPOT
    print(f"engine submit+cancel pairs/s   {engine_pairs_per_s():>12,.0f}")
    messages, updates = feed_rates(path)
    print(f"feed replay messages/s         {messages:>12,.0f}   ({path.name})")
    print(f"feed replay book updates/s     {updates:>12,.0f}")
    print(f"depth diffs/s to a picows client {asyncio.run(diffs_per_s()):>10,.0f}   (engine change + publish each)")
    n, rate = asyncio.run(burst_per_s(path))
    print(f"burst diffs/s to a picows client {rate:>10,.0f}   ({n:,} recorded diffs, prepared then sent)")
    print(f"signed REST orders/s (aiohttp) {asyncio.run(rest_orders_per_s()):>12,.0f}")


if __name__ == "__main__":
    main()
