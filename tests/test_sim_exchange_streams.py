"""Market streams through a picows client: combined streams, subscriptions, and the official
Binance spot sync procedure (buffer diffs, REST snapshot, `U <= L+1 <= u`, `U == prev u + 1`)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import aiohttp
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from mixmaker.sim.exchange.server import ExchangeSim
from sim_exchange_helpers import SYMBOL, run, started_sim, until


class Collector(WSListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.messages.append(json.loads(frame.get_payload_as_bytes()))

    def request(self, message: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, json.dumps(message).encode())

    def of(self, stream: str) -> list[dict[str, Any]]:
        return [m["data"] for m in self.messages if m.get("stream") == stream]

    def reply(self, rid: int) -> dict[str, Any] | None:
        return next((m for m in self.messages if m.get("id") == rid), None)


async def _connect(sim: ExchangeSim, path: str) -> tuple[WSTransport, Collector]:
    transport, listener = await ws_connect(Collector, f"{sim.ws_url}{path}")
    return transport, listener


def test_combined_streams_and_subscription_requests() -> None:
    async def scenario() -> None:
        async with started_sim(publish_interval=3600) as sim:
            sim.publish_now()  # the seeded book goes out before we connect
            transport, client = await _connect(sim, "/stream?streams=btcusdt@depth@100ms/btcusdt@trade")
            try:
                sim.venue.market_trade(SYMBOL, Decimal(60001), Decimal("0.2"), buyer_is_maker=False)
                sim.publish_now()
                await until(lambda: bool(client.of("btcusdt@trade")) and bool(client.of("btcusdt@depth@100ms")))
                (trade,) = client.of("btcusdt@trade")
                assert (trade["e"], trade["p"], trade["q"], trade["m"]) == ("trade", "60001.00000000", "0.20000000", False)
                (diff,) = client.of("btcusdt@depth@100ms")
                assert diff["a"] == [["60001.00000000", "0.30000000"]] and diff["u"] == sim.book(SYMBOL)[0]

                client.request({"method": "LIST_SUBSCRIPTIONS", "id": 1})
                client.request({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 2})
                client.request({"method": "NOPE", "id": 3})
                await until(lambda: client.reply(3) is not None)
                assert client.reply(1) == {"result": ["btcusdt@depth@100ms", "btcusdt@trade"], "id": 1}
                assert client.reply(2) == {"result": None, "id": 2}
                assert client.reply(3)["error"]["code"] == 2  # type: ignore[index]

                sim.venue.market_trade(SYMBOL, Decimal(60001), Decimal("0.1"), buyer_is_maker=False)
                sim.publish_now()
                await until(lambda: len(client.of("btcusdt@depth@100ms")) == 2)
                assert len(client.of("btcusdt@trade")) == 1  # unsubscribed: the second print is not sent
            finally:
                transport.disconnect()

    run(scenario())


def test_official_sync_procedure_matches_the_book_while_we_trade() -> None:
    async def scenario() -> None:
        async with started_sim(publish_interval=0.01, keep_books=20) as sim:
            stop = asyncio.Event()

            async def activity() -> None:  # other participants, our orders and prints, interleaved
                i = 0
                while not stop.is_set():
                    i += 1
                    sim.venue.set_market_level(SYMBOL, "BUY", Decimal(59990 - i % 30), Decimal(i % 9 + 1) / 10)
                    if i % 7 == 0:
                        sim.venue.new_order("alice", {"symbol": SYMBOL, "side": "SELL", "type": "LIMIT",
                                                      "timeInForce": "GTC", "quantity": "0.01", "price": "60001"})
                    if i % 11 == 0:
                        sim.venue.market_trade(SYMBOL, Decimal(60001), Decimal("0.2"), buyer_is_maker=False)
                    await asyncio.sleep(0.002)

            task = asyncio.create_task(activity())
            transport, client = await _connect(sim, "/ws/btcusdt@depth@100ms")
            try:
                await until(lambda: len(client.messages) >= 3)  # 1. buffer
                async with aiohttp.ClientSession() as http:  # 2. snapshot
                    async with http.get(f"{sim.rest_url}/api/v3/depth?symbol={SYMBOL}&limit=5000") as r:
                        snapshot = await r.json()
                L = snapshot["lastUpdateId"]
                assert client.messages[0]["U"] <= L + 1  # 3. the snapshot is not older than the buffer
                bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
                asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
                await asyncio.sleep(0.1)
                stop.set()
                await task
                sim.publish_now()
                await until(lambda: client.messages[-1]["u"] == sim.book(SYMBOL)[0])
                local, first, checked = L, True, 0
                assert sim.book_at(SYMBOL, L) == (sorted(bids.items(), reverse=True)[:20], sorted(asks.items())[:20])
                for d in client.messages:
                    if d["u"] <= local:  # 4. already in the snapshot
                        continue
                    if first:
                        assert d["U"] <= local + 1 <= d["u"]
                        first = False
                    else:
                        assert d["U"] == local + 1  # 6. the chain
                    for side, rows in ((bids, d["b"]), (asks, d["a"])):
                        for p, q in rows:
                            side[Decimal(p)] = Decimal(q)
                            if not side[Decimal(p)]:
                                del side[Decimal(p)]
                    local = d["u"]
                    # Synced at every step: the top of the book is what the venue had at `u`.
                    kept = sim.book_at(SYMBOL, local)
                    assert kept == (sorted(bids.items(), reverse=True)[:20], sorted(asks.items())[:20])
                    checked += 1
                assert not first and checked > 5  # diffs bridged the snapshot and kept coming
                last_id, sim_bids, sim_asks = sim.book(SYMBOL, 5000)
                assert local == last_id
                assert sorted(bids.items(), reverse=True) == sim_bids and sorted(asks.items()) == sim_asks
                assert sim.venue.engine.my_trades("alice", SYMBOL)  # our asks traded on the way
            finally:
                transport.disconnect()

    run(scenario())


def test_depth_at_1s_merges_the_fast_diffs_and_keeps_the_chain() -> None:
    async def scenario() -> None:
        async with started_sim(publish_interval=3600) as sim:
            sim.publish_now()
            fast_t, fast = await _connect(sim, "/ws/btcusdt@depth@100ms")
            slow_t, slow = await _connect(sim, "/ws/btcusdt@depth")
            sim.hub.slow_every = 3  # as if 3 fast intervals made one second
            try:
                for i in range(6):
                    sim.venue.set_market_level(SYMBOL, "BUY", Decimal(59000 + i % 2), Decimal(i + 1))
                    sim.hub.publish()
                await until(lambda: len(fast.messages) == 6 and len(slow.messages) == 2)
                for stream in (fast.messages, slow.messages):
                    assert all(b["U"] == a["u"] + 1 for a, b in zip(stream, stream[1:]))
                first, second = slow.messages
                assert (first["U"], first["u"]) == (fast.messages[0]["U"], fast.messages[2]["u"])
                assert (second["U"], second["u"]) == (fast.messages[3]["U"], fast.messages[5]["u"])
                # Merged: each level at its latest size within the second.
                assert first["b"] == [["59001.00000000", "2.00000000"], ["59000.00000000", "3.00000000"]]
            finally:
                fast_t.disconnect()
                slow_t.disconnect()

    run(scenario())
