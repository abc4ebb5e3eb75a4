"""Every fault switch, each seen from a client over 127.0.0.1; determinism under a seed."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt
import pytest

from mixmaker.sim.exchange.faults import FAULTS, Faults, UnknownFaultError
from mixmaker.sim.exchange.server import ExchangeSim
from sim_exchange_helpers import (
    MARKET,
    SYMBOL,
    as_floats,
    clear_of_interval_end,
    pro_client,
    rest_client,
    run,
    started_sim,
    synced_book,
    until,
    ws_api_signed,
)


async def _collect_diffs(sim: ExchangeSim, count: int) -> list[dict[str, Any]]:
    """Open a raw diff stream, move the market, return the first `count` depthUpdate events."""
    got: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms") as ws:
        step = 0
        while len(got) < count:
            step += 1
            sim.venue.set_market_level(SYMBOL, "BUY", Decimal(59900 + step % 50), Decimal(step % 7 + 1))
            sim.publish_now()
            try:
                msg = await asyncio.wait_for(ws.receive(), 0.01)
            except asyncio.TimeoutError:
                continue
            if msg.type == aiohttp.WSMsgType.TEXT:
                got.append(json.loads(msg.data))
    return got


def _breaks(diffs: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(previous u, this U) wherever the spot chain rule `U == previous u + 1` fails."""
    return [(a["u"], b["U"]) for a, b in zip(diffs, diffs[1:]) if b["U"] != a["u"] + 1]


def test_clean_stream_chains_then_each_diff_fault_breaks_it_its_own_way() -> None:
    async def scenario() -> None:
        async with started_sim(publish_interval=3600) as sim:
            clean = await _collect_diffs(sim, 30)
            assert _breaks(clean) == []

            sim.faults.set("diff_skip", 0.3)
            skipped = await _collect_diffs(sim, 30)
            assert sim.faults.hits["diff_skip"] > 0
            assert _breaks(skipped) and all(U > u + 1 for u, U in _breaks(skipped))  # forward gaps only

            sim.faults.clear()
            sim.faults.set("diff_duplicate", 0.3)
            duplicated = await _collect_diffs(sim, 30)
            pairs = [(d["U"], d["u"]) for d in duplicated]
            assert sim.faults.hits["diff_duplicate"] > 0
            assert any(a == b for a, b in zip(pairs, pairs[1:]))  # the same diff twice in a row

            sim.faults.clear()
            sim.faults.set("diff_reorder", 0.3)
            reordered = await _collect_diffs(sim, 30)
            assert sim.faults.hits["diff_reorder"] > 0
            assert any(b["u"] < a["U"] for a, b in zip(reordered, reordered[1:]))  # an older diff after a newer
            ids = sorted(d["U"] for d in reordered)
            assert len(ids) == len(set(ids))  # nothing lost or doubled, only out of order

    run(scenario())


def test_ccxt_pro_detects_a_skipped_diff_and_resyncs() -> None:
    async def scenario() -> None:
        async with started_sim(publish_interval=0.01) as sim, pro_client(sim) as pro:

            async def mover() -> None:
                for i in range(1000):
                    sim.venue.set_market_level(SYMBOL, "BUY", Decimal(59900 + i % 50), Decimal(i % 5 + 1))
                    await asyncio.sleep(0.005)

            task = asyncio.create_task(mover())
            await pro.watch_order_book(MARKET)
            sim.faults.set("diff_skip", 0.5)
            with pytest.raises(ccxt.ChecksumError):
                for _ in range(50):
                    await pro.watch_order_book(MARKET)
            sim.faults.clear()
            await pro.watch_order_book(MARKET)  # re-subscribes and re-snapshots
            task.cancel()
            book = await synced_book(pro, sim)
            _, bids, asks = sim.book(SYMBOL)
            assert book["bids"] == as_floats(bids) and book["asks"] == as_floats(asks)

    run(scenario())


def test_ws_drop_closes_stream_connections() -> None:
    async def scenario() -> None:
        async with started_sim(publish_interval=3600, faults="ws_drop=1") as sim:
            async with aiohttp.ClientSession() as http, http.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth") as ws:
                sim.venue.set_market_level(SYMBOL, "BUY", Decimal(59000), Decimal(1))
                sim.publish_now()
                msg = await asyncio.wait_for(ws.receive(), 5)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            assert sim.faults.hits["ws_drop"] == 1
            await until(lambda: not sim.hub.connections)

    run(scenario())


def test_reject_order() -> None:
    async def scenario() -> None:
        async with started_sim(faults="reject_order=1") as sim, rest_client(sim) as rest:
            with pytest.raises(ccxt.InvalidOrder, match="-2010"):
                await rest.create_order(MARKET, "limit", "buy", 0.01, 59000)
            assert sim.open_orders("alice") == [] and sim.faults.hits["reject_order"] == 1

    run(scenario())


def test_ack_delay_answers_after_the_order_is_live() -> None:
    async def scenario() -> None:
        async with started_sim(faults="ack_delay=1@0.5") as sim, rest_client(sim) as rest:
            create = asyncio.ensure_future(rest.create_order(MARKET, "limit", "buy", 0.01, 59000))
            await until(lambda: bool(sim.open_orders("alice")))
            assert not create.done()  # live at the venue, not yet acknowledged
            order = await create
            assert order["id"] == str(sim.open_orders("alice")[0].order_id)

    run(scenario())


@pytest.mark.parametrize(
    "fault, error",
    [
        ("ack_loss=1", ccxt.NetworkError),
        ("act_then_timeout=1@30", ccxt.RequestTimeout),
        ("ack_5xx=1", ccxt.RequestTimeout),  # 503 -1007: execution status unknown
    ],
)
def test_order_acted_on_but_client_gets_no_answer(fault: str, error: type[Exception]) -> None:
    async def scenario() -> None:
        async with started_sim(faults=fault) as sim, rest_client(sim, timeout=300) as rest:
            with pytest.raises(error):
                await rest.create_order(MARKET, "limit", "buy", 0.01, 59000, {"clientOrderId": "lost-1"})
            sim.faults.clear()
            # The order IS placed: the client resolves the uncertainty by asking, by client id.
            found = await rest.fetch_order(None, MARKET, {"origClientOrderId": "lost-1"})
            assert found["status"] == "open" and found["clientOrderId"] == "lost-1"

    run(scenario())


def test_weight_limit_429_then_418_when_ignored() -> None:
    async def scenario() -> None:
        async with started_sim(weight_limit=12) as sim, aiohttp.ClientSession() as http:
            await clear_of_interval_end(sim)
            url = f"{sim.rest_url}/api/v3/depth?symbol={SYMBOL}&limit=100"  # weight 5
            used = []
            for _ in range(2):
                async with http.get(url) as r:
                    assert r.status == 200
                    used.append(int(r.headers["X-MBX-USED-WEIGHT-1M"]))
            assert used == [5, 10]
            async with http.get(url) as r:
                assert r.status == 429 and int(r.headers["Retry-After"]) > 0
                assert (await r.json())["code"] == -1003
            async with http.get(url) as r:  # asked again before Retry-After: banned
                assert r.status == 418 and int(r.headers["Retry-After"]) >= 120
                assert "IP banned until" in (await r.json())["msg"]
            with pytest.raises(ccxt.DDoSProtection, match="418"):  # ccxt's view of the ban
                async with rest_client(sim):  # load_markets is refused too
                    pass

    run(scenario())


def test_rate_limit_fault_answers_429_whatever_the_weight() -> None:
    async def scenario() -> None:
        async with started_sim() as sim, rest_client(sim) as rest:
            sim.faults.set("rate_limit", 1.0)
            with pytest.raises(ccxt.DDoSProtection, match="429"):
                await rest.fetch_balance()
            assert sim.faults.hits["rate_limit"] == 1

    run(scenario())


def test_slow_snapshot_arrives_stale_and_ccxt_still_syncs() -> None:
    async def scenario() -> None:
        async with started_sim(publish_interval=0.01, faults="slow_snapshot=1@0.3") as sim:
            stop = asyncio.Event()

            async def mover() -> None:
                i = 0
                while not stop.is_set():
                    i += 1
                    sim.venue.set_market_level(SYMBOL, "SELL", Decimal(60100 + i % 40), Decimal(i % 3 + 1))
                    await asyncio.sleep(0.005)

            task = asyncio.create_task(mover())
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{sim.rest_url}/api/v3/depth?symbol={SYMBOL}") as r:
                    snapshot = await r.json()
            assert snapshot["lastUpdateId"] < sim.book(SYMBOL)[0]  # the book moved on meanwhile
            async with pro_client(sim) as pro:
                await pro.watch_order_book(MARKET)
                stop.set()
                await task
                book = await synced_book(pro, sim)
                assert book["asks"] == as_floats(sim.book(SYMBOL)[2])
            assert sim.faults.hits["slow_snapshot"] >= 2

    run(scenario())


def test_faults_are_deterministic_per_switch() -> None:
    a, b = Faults(seed=11), Faults(seed=11)
    a.set("diff_skip", 0.4)
    b.set("diff_skip", 0.4)
    b.set("ws_drop", 0.9)  # another switch on must not shift diff_skip's draws
    seq_a = [a.hit("diff_skip") for _ in range(200)]
    seq_b = []
    for _ in range(200):
        b.hit("ws_drop")
        seq_b.append(b.hit("diff_skip"))
    assert seq_a == seq_b and 40 < sum(seq_a) < 120
    c = Faults(seed=12)
    c.set("diff_skip", 0.4)
    assert [c.hit("diff_skip") for _ in range(200)] != seq_a


def test_fault_spec_parsing() -> None:
    f = Faults()
    f.configure("diff_skip=0.25, ack_delay=0.5@1.5,ws_drop")
    assert f.specs["diff_skip"].rate == 0.25
    assert (f.specs["ack_delay"].rate, f.specs["ack_delay"].delay) == (0.5, 1.5)
    assert f.specs["ws_drop"].rate == 1.0
    with pytest.raises(UnknownFaultError):
        f.configure("nope=1")
    with pytest.raises(ValueError):
        f.configure("diff_skip=2")
    assert set(FAULTS) == {
        "ws_drop", "diff_skip", "diff_duplicate", "diff_reorder", "ack_delay", "ack_loss",
        "act_then_timeout", "ack_5xx", "reject_order", "rate_limit", "slow_snapshot", "event_loss", "event_delay",
    }


def test_order_rate_limit_per_account_rest_and_ws_api() -> None:
    async def scenario() -> None:
        async with started_sim(order_limit=2) as sim, pro_client(sim) as pro:
            await clear_of_interval_end(sim, 10_000)
            await pro.create_order(MARKET, "limit", "buy", 0.01, 59000)
            assert pro.last_response_headers["X-MBX-ORDER-COUNT-10S"] == "1"
            await pro.create_order_ws(MARKET, "limit", "buy", 0.01, 59001)  # the same account's budget
            with pytest.raises(ccxt.DDoSProtection, match="-1015"):
                await pro.create_order(MARKET, "limit", "buy", 0.01, 59002)
            with pytest.raises(ccxt.RateLimitExceeded):
                await pro.create_order_ws(MARKET, "limit", "buy", 0.01, 59003)
            assert len(sim.open_orders("alice")) == 2
            assert sim.limiter.bans == 0  # the order limit never bans

    run(scenario())


def test_ws_api_pays_the_same_weight_and_is_told_when_to_retry() -> None:
    async def scenario() -> None:
        async with started_sim(weight_limit=3) as sim, aiohttp.ClientSession() as http:
            await clear_of_interval_end(sim)
            async with http.ws_connect(f"{sim.ws_url}/ws-api/v3") as ws:
                replies = []
                for rid in range(4):
                    await ws.send_json({"id": rid, "method": "time"})
                    replies.append(await ws.receive_json(timeout=5))
            assert [r["status"] for r in replies] == [200, 200, 200, 429]
            assert replies[2]["rateLimits"][0]["count"] == 3
            assert replies[3]["error"]["code"] == -1003
            assert replies[3]["error"]["data"]["retryAfter"] > replies[3]["error"]["data"]["serverTime"]
            async with http.get(f"{sim.rest_url}/api/v3/ping") as r:  # REST ignores the same 429: banned
                assert r.status == 418

    run(scenario())


def test_ban_tolerance_lets_in_flight_requests_through_but_bans_a_client_that_keeps_sending() -> None:
    async def scenario() -> None:
        async with started_sim(weight_limit=5, ban_tolerance=2) as sim, aiohttp.ClientSession() as http:
            await clear_of_interval_end(sim)
            url = f"{sim.rest_url}/api/v3/depth?symbol={SYMBOL}&limit=100"  # weight 5
            statuses = []
            for _ in range(5):
                async with http.get(url) as r:
                    statuses.append(r.status)
            # The limit, the 429, two tolerated requests inside Retry-After (429 again), the ban.
            assert statuses == [200, 429, 429, 429, 418]
            assert sim.limiter.bans == 1

    run(scenario())


def test_clock_skew_refused_until_the_client_syncs_its_clock() -> None:
    async def scenario() -> None:
        async with started_sim(clock_offset_ms=30_000) as sim, rest_client(sim) as rest:
            with pytest.raises(ccxt.InvalidNonce):
                await rest.fetch_balance()
            assert 29_000 <= -await rest.load_time_difference() <= 31_000
            assert (await rest.fetch_balance())["BTC"]["free"] == 2.0

    run(scenario())


async def _user_stream(sim: ExchangeSim, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(f"{sim.ws_url}/ws-api/v3")
    await ws.send_json({"id": "s", "method": "userDataStream.subscribe.signature", "params": ws_api_signed({})})
    assert (await ws.receive_json(timeout=5))["result"] == {"subscriptionId": 0}
    return ws


def test_event_loss_and_event_delay_on_the_user_data_stream() -> None:
    async def scenario() -> None:
        async with started_sim() as sim, rest_client(sim) as rest, aiohttp.ClientSession() as http:
            ws = await _user_stream(sim, http)
            sim.faults.set("event_loss", 1.0)
            lost = await rest.create_order(MARKET, "limit", "buy", 0.01, 59000)
            sim.faults.clear()
            sim.faults.set("event_delay", 1.0, 1.0)
            late = await rest.create_order(MARKET, "limit", "buy", 0.01, 58000)
            assert sim.faults.hits["event_loss"] == 2 and sim.faults.hits["event_delay"] == 2
            with pytest.raises(asyncio.TimeoutError):  # acknowledged over REST, nothing on the stream yet
                await ws.receive_json(timeout=0.05)
            first = await ws.receive_json(timeout=5)  # then the delayed events arrive
            assert first["event"]["e"] == "executionReport" and first["event"]["i"] == int(late["id"])
            assert (await ws.receive_json(timeout=5))["event"]["e"] == "outboundAccountPosition"
            assert int(lost["id"]) in {o.order_id for o in sim.open_orders("alice")}  # lost events, live order
            await ws.close()

    run(scenario())
