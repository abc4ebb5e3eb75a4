"""An order journaled but never sent (a crash between journal and send) ends FAILED, not LOST
forever, once the venue does not know it and its create's signed timestamp is past the venue's
recvWindow; an order that was sent is still found. LOST orders are checked on a backoff, so
many of them over many polls cost a bounded number of requests."""

from __future__ import annotations

import asyncio
import math

import pytest

ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the simulator needs picows")

from connector_helpers import start_sim  # noqa: E402
from fake_venue import FakeVenue  # noqa: E402
from worker_helpers import spawn, venue_orders  # noqa: E402

from mixmaker._core import Side
from mixmaker.connectors import RateLimiter  # noqa: E402
from mixmaker.connectors import binance_limits as bl  # noqa: E402
from mixmaker.connectors.ccxt_routing import route_through  # noqa: E402
from mixmaker.connectors.ccxt_account import CcxtVenue  # noqa: E402
from mixmaker.orders import ClientOrderTracker, OrderRejectedError  # noqa: E402
from mixmaker.orders.protocol import OrderRequest, VenueStatus  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402
from mixmaker.orders import OrderState  # noqa: E402

RECV_WINDOW_MS = 3000
MARGIN_MS = 500


async def sim_venue(cfg: dict) -> CcxtVenue:
    ex = ccxt.binance(cfg)
    lim = RateLimiter(bl.spot_pools())
    route_through(ex, lim, cost=bl.request_cost, usage=bl.usage_from_headers, retry_after=bl.retry_after_s)
    v = CcxtVenue(ex, lim, name="binance")
    await v.load_markets()
    return v


def test_a_process_killed_between_journal_and_send_leaves_a_failed_order_not_a_lost_one(tmp_path):
    """Two real processes on one journal: the first is killed after the venue acted on its create
    (the answer never came back), the second after journaling its create but before sending it.
    The restarted tracker finds the first and fails the second once its recvWindow has passed."""

    async def go():
        async with start_sim() as sim:
            cfg = sim.ccxt_config("mm-key", "mm-secret", recvWindow=RECV_WINDOW_MS)
            db = tmp_path / "orders.db"
            sent = {"symbol": "BTCUSDT", "side": "buy", "price": "50000", "qty": "0.01"}
            unsent = {"symbol": "BTCUSDT", "side": "buy", "price": "49000", "qty": "0.02"}
            for order, step in ((sent, "venue_acted"), (unsent, "submitted")):
                worker = await spawn(db, cfg, [order], step)
                assert await worker.died() == 137, await worker.stderr()
            venue = await sim_venue(cfg)
            m = venue.market("BTCUSDT")
            store = SqliteStore(db)
            t = ClientOrderTracker(venue, store, prefix="mm", inflight_timeout=0.0, unsent_margin_ms=MARGIN_MS,
                                   lost_retry_s=0.05, lost_retry_max_s=0.2)
            try:
                (a, _), (b, _) = sorted(t.journal.orders(), key=lambda oe: oe[0].price, reverse=True)
                assert a.request_ms and a.recv_window_ms == RECV_WINDOW_MS and b.recv_window_ms == RECV_WINDOW_MS
                assert a.client_id in venue_orders(sim, "mm") and b.client_id not in venue_orders(sim, "mm")
                await t.start()
                deadline = b.request_ms + b.recv_window_ms + MARGIN_MS
                if venue.clock_ms() <= deadline:  # every question so far was asked inside the window
                    assert t.get(b.client_id).state in (OrderState.PENDING_CREATE, OrderState.LOST)
                loop = asyncio.get_running_loop()
                give_up = loop.time() + 30
                while t.get(b.client_id).state != OrderState.FAILED:
                    assert loop.time() < give_up, f"order {b.client_id} is still {t.get(b.client_id).state}"
                    await t.poll()
                    await asyncio.sleep(0.05)
                assert venue.clock_ms() > deadline
                found = t.get(a.client_id)
                assert found.state == OrderState.OPEN and found.exchange_id is not None, "the order that was sent is found"
                x = t.exposure("BTCUSDT")
                assert x.buy_qty == m.size("0.01") and x.orders == 1, "the unsent order no longer counts"
                assert t.stats["unsent_failed"] == 1
                for _ in range(3):  # and the sent one stays, well past its window
                    await t.poll()
                assert t.get(a.client_id).state == OrderState.OPEN
                assert b.client_id not in venue_orders(sim, "mm"), "nothing ever placed it"
            finally:
                store.close()
                await venue.exchange.close()

    asyncio.run(go())


def test_a_stale_create_is_refused_by_its_signed_timestamp_and_never_re_sent():
    """The venue signs a create with exactly the journaled timestamp: one that arrives past the
    recvWindow is refused (-1021) and not sent again with a fresh timestamp."""

    async def go():
        async with start_sim() as sim:
            venue = await sim_venue(sim.ccxt_config("mm-key", "mm-secret", recvWindow=RECV_WINDOW_MS))
            try:
                assert venue.recv_window_ms == RECV_WINDOW_MS
                m = venue.market("BTCUSDT")
                posts = lambda: sum(1 for r in sim.rest.requests if r == ("POST", "/api/v3/order"))
                before = posts()
                stale = OrderRequest("mmstale", "BTCUSDT", Side.BUY, m.price("50000"), m.size("0.01"),
                                     venue.clock_ms() - RECV_WINDOW_MS - 1000)
                with pytest.raises(OrderRejectedError, match="-1021"):
                    await venue.create_order(stale)
                assert posts() == before + 1 and "mmstale" not in venue_orders(sim, "mm")
                fresh = OrderRequest("mmfresh", "BTCUSDT", Side.BUY, m.price("50000"), m.size("0.01"), venue.clock_ms())
                assert (await venue.create_order(fresh)).status is VenueStatus.OPEN
            finally:
                await venue.exchange.close()

    asyncio.run(go())


class Killed(BaseException):
    """The process dies here (not an Exception: nothing catches it)."""


def test_unsent_fails_only_past_the_window_and_a_sent_order_never_does(tmp_path):
    venue = FakeVenue()
    t0 = venue.frozen_ms = 1_700_000_000_000
    now = [0.0]
    window, margin = venue.recv_window_ms, 2000

    def die_at_submitted(step: str, _cid: str) -> None:
        if step == "submitted":
            raise Killed

    async def go():
        db = tmp_path / "orders.db"
        first = ClientOrderTracker(venue, SqliteStore(db), crash_hook=die_at_submitted)
        await first.start()
        with pytest.raises(Killed):
            await first.create("BTCUSDT", "buy", 100, 10)
        (unsent, _), = first.journal.orders()
        t = ClientOrderTracker(venue, SqliteStore(db), inflight_timeout=0.0, unsent_margin_ms=margin,
                               clock=lambda: now[0])
        await t.start()
        venue.faults.act_then_timeout["create"] = 1  # this one reaches the venue; its answer does not
        sent = await t.create("BTCUSDT", "buy", 100, 5)
        assert t.get(sent).state == OrderState.OPEN
        for _ in range(5):
            await t.poll()
            now[0] += 1
        assert t.get(unsent.client_id).state == OrderState.LOST, "unknown, but its window is not over: not proof"
        assert t.exposure("BTCUSDT").buy_qty == 15
        venue.frozen_ms = t0 + window + margin  # the deadline itself is not past it
        for _ in range(5):
            await t.poll()
            now[0] += 100
        assert t.get(unsent.client_id).state == OrderState.LOST
        venue.frozen_ms += 1
        now[0] += 1000
        await t.poll()
        assert t.get(unsent.client_id).state == OrderState.FAILED
        assert t.get(sent).state == OrderState.OPEN
        assert t.exposure("BTCUSDT").buy_qty == 5
        # A restart replays FAILED from the journal.
        again = ClientOrderTracker(venue, SqliteStore(db))
        await again.start()
        assert again.get(unsent.client_id).state == OrderState.FAILED and again.get(sent).state == OrderState.OPEN

    asyncio.run(go())


def test_many_lost_orders_over_many_polls_cost_a_bounded_number_of_requests(tmp_path):
    venue = FakeVenue()
    venue.frozen_ms = 1_700_000_000_000  # never past any window: they stay LOST
    now = [0.0]
    n, polls, base, cap = 20, 600, 1.0, 60.0

    async def go():
        t = ClientOrderTracker(venue, SqliteStore(tmp_path / "orders.db"), inflight_timeout=0.0,
                               lost_retry_s=base, lost_retry_max_s=cap, clock=lambda: now[0])
        await t.start()
        cids = []
        for _ in range(n):
            venue.faults.act_then_timeout["create"] = 1
            venue.faults.fail_before_acting["fetch_order"] = 1
            cid = await t.create("BTCUSDT", "buy", 100, 1)
            venue.faults.forgotten.add(cid)  # the venue never answers about it again
            cids.append(cid)
        for _ in range(t.lost_after):
            await t.poll()
        assert all(t.get(c).state == OrderState.LOST for c in cids)
        calls_before, events_before = sum(venue.calls.values()), _events(t)
        for _ in range(polls):
            now[0] += 1.0
            await t.poll()
        assert all(t.get(c).state == OrderState.LOST for c in cids)
        spent = sum(venue.calls.values()) - calls_before
        # Per order: the doubling checks up to the cap, then one per `cap`; each check is a cancel,
        # a query, the open orders and one page of trades. Plus the poll's own open-orders call.
        checks = math.log2(cap / base) + 2 + polls / cap + 1
        assert spent <= n * 4 * checks + polls, spent
        assert spent < n * polls * 4 / 20, "without the backoff it would be ~4 requests per order per poll"
        assert _events(t) - events_before <= n * 2 * checks

    asyncio.run(go())


def _events(t: ClientOrderTracker) -> int:
    return t.journal.store.query("SELECT count(*) FROM order_events")[0][0]
