"""Every fault switch but one on at once while a careful ccxt client trades and watches the book.

The client does what a connector must: record each order's client id before sending it,
resolve every unanswered create or cancel by asking the venue, back off on 429, resubscribe on
a gap or a dropped socket. At the end the simulator must agree with the client: the same open
orders, balances conserved, and a resynced book equal to the simulator's.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

import ccxt

from mixmaker.sim.exchange.feed import SyntheticFeed
from mixmaker.sim.exchange.server import ExchangeSim
from sim_exchange_helpers import MARKET, START, SYMBOL, as_floats, pro_client, rest_client, run, started_sim, synced_book

# rate_limit is left out: ccxt.pro retries a refused snapshot at once, ignoring Retry-After, and
# earns a 418 (that is what a connector's own limiter must prevent; see test_sim_exchange_faults).
ALL_FAULTS = (
    "ws_drop=0.01,diff_skip=0.05,diff_duplicate=0.05,diff_reorder=0.05,ack_delay=0.1@0.05,"
    "ack_loss=0.1,act_then_timeout=0.1@2,ack_5xx=0.1,reject_order=0.1,slow_snapshot=0.3@0.1"
)


async def _call(rest: Any, method: str, *args: Any) -> Any:
    """One request, retried only where retrying is safe (a query, or after a 429 back-off)."""
    while True:
        try:
            return await getattr(rest, method)(*args)
        except ccxt.DDoSProtection:
            await asyncio.sleep(1.1)  # Retry-After is 1 s for the rate_limit fault
        except ccxt.NetworkError:
            if method.startswith("fetch"):
                continue
            raise


async def _resolve(rest: Any, client_id: str) -> dict[str, Any] | None:
    """What the venue knows of an order whose request went unanswered."""
    try:
        return await _call(rest, "fetch_order", None, MARKET, {"origClientOrderId": client_id})
    except ccxt.OrderNotFound:
        return None


async def _trade(sim: ExchangeSim, rest: Any) -> dict[str, str]:
    """Place and cancel orders under faults; returns the client's view: client id -> status."""
    known: dict[str, str] = {}
    for i in range(30):
        _, bids, _ = sim.book(SYMBOL, 1)
        cid = f"chaos-{i}"
        price = float(bids[0][0]) - 0.05 * (i % 4)
        known[cid] = "sending"  # recorded before it is sent
        try:
            order = await _call(rest, "create_order", MARKET, "limit", "buy", 0.001, price, {"clientOrderId": cid})
            known[cid] = order["status"]
        except ccxt.InvalidOrder:
            known[cid] = "rejected"
        except ccxt.NetworkError:
            found = await _resolve(rest, cid)
            known[cid] = found["status"] if found else "rejected"
        if i % 3 == 2:  # cancel an older one that is still open
            target = next((c for c, s in known.items() if s == "open"), None)
            if target is not None:
                with contextlib.suppress(ccxt.OrderNotFound, ccxt.NetworkError):
                    await _call(rest, "cancel_order", None, MARKET, {"origClientOrderId": target})
                found = await _resolve(rest, target)
                known[target] = found["status"] if found else "rejected"
    return known


async def _refresh(rest: Any, known: dict[str, str]) -> None:
    """The market filled some orders meanwhile: ask again about every one believed open."""
    for cid, status in known.items():
        if status == "open":
            found = await _resolve(rest, cid)
            known[cid] = found["status"] if found else "rejected"


async def _watch(pro: Any, stop: asyncio.Event) -> int:
    """Keep a book; a gap or a dropped socket means resubscribe. Returns how many resyncs."""
    resyncs = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(pro.watch_order_book(MARKET), 1.0)
        except (ccxt.ChecksumError, ccxt.NetworkError, ccxt.ExchangeError, asyncio.TimeoutError):
            resyncs += 1
    return resyncs


def test_all_faults_at_once_client_and_simulator_agree() -> None:
    async def scenario() -> None:
        feed = SyntheticFeed(SYMBOL, seed=9, interval=0.01)
        async with started_sim(publish_interval=0.01, seed=9, feed=feed) as sim:
            async with rest_client(sim, timeout=400) as rest, pro_client(sim) as pro:
                sim.faults.configure(ALL_FAULTS)
                stop = asyncio.Event()
                watcher = asyncio.create_task(_watch(pro, stop))
                known = await _trade(sim, rest)
                stop.set()
                resyncs = await watcher
                assert sim.feed_task is not None
                sim.feed_task.cancel()  # the market stands still from here
                with contextlib.suppress(asyncio.CancelledError):
                    await sim.feed_task
                await _refresh(rest, known)
                sim.faults.clear()
                ours_open = {o.client_order_id for o in sim.open_orders("alice", SYMBOL)}
                assert {c for c, s in known.items() if s == "open"} == ours_open
                watch = asyncio.ensure_future(pro.watch_order_book(MARKET))  # resubscribe if it was dropped
                for i in range(500):  # the market stands still: nudge it until the watch resolves
                    if watch.done():
                        break
                    sim.venue.set_market_level(SYMBOL, "BUY", Decimal(50000), Decimal(i + 1))
                    await asyncio.sleep(0.01)
                await watch
                book = await synced_book(pro, sim)
                _, bids, asks = sim.book(SYMBOL)
                assert book["bids"] == as_floats(bids) and book["asks"] == as_floats(asks)
            fired = {name for name, n in sim.faults.hits.items() if n}
            assert {"diff_skip", "ack_loss", "act_then_timeout", "reject_order", "slow_snapshot"} <= fired
            assert resyncs > 0
            for asset in ("BTC", "USDT"):
                assert sim.venue.engine.accounts.total(asset) == START[asset]
            assert sim.limiter.bans == 0  # the client's back-off kept it from a 418

    run(scenario(), timeout=60)
