"""Every fault switch of the simulator at once, for a sustained run, against the Binance spot
connector: the picows depth stream into BookSync, the user data stream into the tracker, the
tracker on the ccxt REST venue, one rate limiter for all of it.

Checked throughout: whenever the book says SYNCED at the venue's current update id it equals the
venue's book level for level, and quotes are placed only from a synced book. Checked at the end:
no order rests on the venue that the tracker does not know, every order's fills agree with the
venue, and the venue never had to ban us (418) at the simulator's default `ban_tolerance=0`:
the first request that lands inside a Retry-After would be banned.

The seed (simulator faults, market feed, quoting) is `MIXMAKER_SOAK_SEED`, 21 by default.
"""

from __future__ import annotations

import asyncio
import os
import random

import pytest

pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the connector and the simulator need picows")

from mixmaker.book import BookState  # noqa: E402
from mixmaker.connectors.binance import BinanceEndpoints, BinanceSpotConnector  # noqa: E402
from mixmaker.connectors.credentials import ApiCredentials  # noqa: E402
from mixmaker.orders import ClientOrderTracker  # noqa: E402
from mixmaker.orders.errors import VenueError  # noqa: E402
from mixmaker.sim.exchange.faults import FAULTS  # noqa: E402
from mixmaker.sim.exchange.feed import SyntheticFeed  # noqa: E402
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402

SYMBOL = "BTCUSDT"
ALL_FAULTS = ("diff_skip=0.05,diff_duplicate=0.05,diff_reorder=0.05,ws_drop=0.005,ack_delay=0.05@0.2,"
              "ack_loss=0.02,act_then_timeout=0.05@0.8,ack_5xx=0.03,reject_order=0.05,rate_limit=0.01,"
              "slow_snapshot=0.2@0.2,event_loss=0.05,event_delay=0.05@0.2")
RUN_S = 6.0  # at least; then until every goal below is met (each seed makes its own traffic)
MAX_RUN_S = 40.0
FELT_SWITCHES = 10
SEED = int(os.environ.get("MIXMAKER_SOAK_SEED", "21"))


def levels(rows, pd: int, sd: int) -> list[tuple[int, int]]:
    return [(int(p.scaleb(pd)), int(q.scaleb(sd))) for p, q in rows]


def test_all_faults_at_once_the_book_the_orders_and_the_limits_hold(tmp_path):
    assert {item.split("=")[0] for item in ALL_FAULTS.split(",")} == set(FAULTS), "every switch is on"

    async def go():
        feed = SyntheticFeed(symbol=SYMBOL, seed=SEED + 1, interval=0.02)
        sim = ExchangeSim(SimConfig(seed=SEED, publish_interval=0.02, feed=feed))
        assert sim.config.ban_tolerance == 0
        async with sim:
            sim.add_account("mm", "mm-key", "mm-secret", {"USDT": "1000000", "BTC": "20"})
            endpoints = BinanceEndpoints(sim.rest_url, sim.ws_url, f"{sim.ws_url}/ws-api/v3")
            # act_then_timeout holds answers 0.8 s: the client gives up first (500 ms).
            conn = BinanceSpotConnector(ApiCredentials("mm-key", "mm-secret"), endpoints, timeout_ms=500)
            conn.venue.queue_timeout_s = 3.0  # below the tracker's request_timeout: "not sent" is certain
            await conn.start([SYMBOL])
            venue, lim, sync = conn.venue, conn.limiter, conn.syncs[SYMBOL]
            m = venue.market(SYMBOL)
            store = SqliteStore(tmp_path / "orders.db")
            tracker = ClientOrderTracker(venue, store, request_timeout=5.0, retry_delay=0.05, inflight_timeout=0.3)
            user = conn.attach(tracker)
            await tracker.start()
            sim.faults.configure(ALL_FAULTS)
            rng = random.Random(SEED + 2)
            checks = {"compared": 0, "quotes": 0, "not_synced": 0}

            async def check_book() -> None:
                while True:
                    await asyncio.sleep(0.003)
                    uid, bids, asks = sim.book(SYMBOL, 5000)
                    if sync.state == BookState.SYNCED and sync.last_update_id == uid:
                        assert sync.book.bids_raw() == levels(bids, m.price_decimals, m.size_decimals)
                        assert sync.book.asks_raw() == levels(asks, m.price_decimals, m.size_decimals)
                        checks["compared"] += 1

            stop_quoting = asyncio.Event()

            async def quote() -> None:
                while not stop_quoting.is_set():
                    await asyncio.sleep(0.05)
                    book = conn.book(SYMBOL)
                    if book is None:
                        checks["not_synced"] += 1  # never quote on a book we cannot trust
                        continue
                    bid, ask = book.best_bid_raw(), book.best_ask_raw()
                    if bid is None or ask is None:
                        continue
                    live = tracker.open_orders()
                    try:
                        if len(live) >= 3:
                            await tracker.cancel(rng.choice(sorted(live)))
                        elif rng.random() < 0.5:
                            await tracker.create(SYMBOL, "buy", bid[0] - rng.randint(0, 3) * m.tick, m.size("0.001"))
                        else:
                            await tracker.create(SYMBOL, "sell", ask[0] + rng.randint(0, 3) * m.tick, m.size("0.001"))
                        checks["quotes"] += 1
                    except VenueError:
                        pass  # unavailable right now: the tracker resolves the order on poll

            async def poll() -> None:
                while True:
                    await asyncio.sleep(0.5)
                    await tracker.poll()

            async def run_long_enough() -> None:
                """RUN_S, then until the goals are met (a bound, not a measurement). A seed whose
                first draws miss the 429 switch gets one 429 on the next request."""
                loop = asyncio.get_running_loop()
                start = loop.time()
                while loop.time() - start < MAX_RUN_S:
                    await asyncio.sleep(0.1)
                    if loop.time() - start > RUN_S / 2 and not sim.faults.hits["rate_limit"]:
                        sim.faults.set("rate_limit", 1.0)
                    elif sim.faults.specs["rate_limit"].rate == 1.0 and sim.faults.hits["rate_limit"]:
                        sim.faults.set("rate_limit", 0.01)
                    felt = sum(1 for n in sim.faults.hits.values() if n)
                    if (loop.time() - start >= RUN_S and felt >= FELT_SWITCHES and checks["compared"] >= 50
                            and checks["quotes"] >= 20 and lim.stats.rate_limited >= 1):
                        return

            quoting = asyncio.create_task(quote())
            workers = [asyncio.create_task(check_book()), quoting, asyncio.create_task(poll()),
                       asyncio.create_task(run_long_enough())]
            done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED)
            # The quoting stops between two orders: one cancelled while it waits for its turn
            # in the limiter would be journaled but never sent (the tracker resolves that case
            # on its own only once it knows the venue can no longer accept it).
            stop_quoting.set()
            await asyncio.wait([quoting], timeout=30)
            for w in workers:
                w.cancel()
            for w in done:
                w.result()  # a book mismatch fails the test here
            await asyncio.gather(*workers, return_exceptions=True)

            # Faults off: settle every order, then compare with the venue.
            sim.faults.configure(",".join(f"{name}=0" for name in sim.faults.specs))
            loop = asyncio.get_running_loop()
            settle_by = loop.time() + 90  # a bound; the limiter may hold requests up to a minute
            while tracker.orders.live_ids() and loop.time() < settle_by:
                for cid in tracker.orders.live_ids():
                    try:
                        await tracker.cancel(cid)
                    except VenueError:
                        pass
                await tracker.poll()
                await asyncio.sleep(0.5)  # every resolve costs ~30 weight: leave the budget to the cancels
            # The settling may have used up the weight budget: the limiter then holds requests
            # until a window after the last answers (a minute), so "not sent" is retried that long.
            fetch_by = loop.time() + 75
            while True:
                try:
                    trades = await venue.fetch_my_trades(SYMBOL)
                    break
                except VenueError:
                    assert loop.time() < fetch_by, "the venue stayed unreachable"
            tracker.apply_trades(trades)
            venue_open = {o.client_order_id for o in sim.open_orders("mm")}
            tracker_live = {c: tracker.get(c).state for c in tracker.orders.live_ids()}
            stream_trades = user.stats.trades
            await conn.close()
            store.close()
            filled_by_venue: dict[str, int] = {}
            for t in trades:
                cid = tracker.orders.client_id_of(t.exchange_id)
                filled_by_venue[cid] = filled_by_venue.get(cid, 0) + t.qty
            tracked = {cid: tracker.get(cid).filled for cid in tracker.orders.ids()}
            return (checks, venue_open, tracker_live, filled_by_venue, tracked, sim.limiter.bans, sync.stats, lim.stats,
                    stream_trades, dict(sim.faults.hits))

    (checks, venue_open, tracker_live, filled_by_venue, tracked, bans, sync_stats, lim_stats, stream_trades,
     hits) = asyncio.run(asyncio.wait_for(go(), 420))  # a failure, not a hang (a ban holds requests for minutes)
    assert checks["compared"] >= 50, checks
    assert checks["quotes"] >= 20, checks
    assert sync_stats.gaps > 0, "the diff faults were felt"
    # Nothing rests on the venue, and the tracker agrees (no order it still counts as live).
    assert venue_open == set() and tracker_live == {}, (venue_open, tracker_live)
    assert None not in filled_by_venue, "a trade of an order the tracker does not know"
    assert all(tracked[cid] == qty for cid, qty in filled_by_venue.items())
    assert all(filled == 0 for cid, filled in tracked.items() if cid not in filled_by_venue)
    assert bans == 0, "the venue banned us: a request went out during a Retry-After"
    assert lim_stats.rate_limited >= 1, "the rate_limit fault was met and waited out"
    assert stream_trades >= 1, "fills also arrived on the user stream"
    felt = {name for name, n in hits.items() if n}
    assert len(felt) >= FELT_SWITCHES, f"most switches fired in the run: {sorted(felt)}"
