"""ClientOrderTracker against the fake venue: uncertain outcomes, not-found runs, fills before
acks, duplicate cancels, restarts at every step of an order's life."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from fake_venue import FakeVenue

from mixmaker._core import Side
from mixmaker.orders import ClientOrderTracker, FillEvent, TrackerNotReadyError, TradeReport, UnknownOrderError
from mixmaker.store import SqliteStore
from mixmaker.orders import OrderState


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the tracker catches it."""


class Ledger:
    """The fill sink: keyed by the idempotency key, as the real ledger will be."""

    def __init__(self) -> None:
        self.fills: dict[tuple[str, str, str], FillEvent] = {}
        self.deliveries = Counter()
        self.refuse = 0

    def __call__(self, f: FillEvent) -> None:
        if self.refuse:
            self.refuse -= 1
            raise RuntimeError("ledger unavailable")
        self.deliveries[f.key] += 1
        assert self.fills.setdefault(f.key, f) == f, "same key delivered with different content"

    def filled_by_order(self) -> dict[str, int]:
        out: Counter = Counter()
        for f in self.fills.values():
            out[f.client_id] += f.qty
        return dict(out)


def run(coro):
    return asyncio.run(coro)


def tracker(venue, store, ledger=None, **kw) -> ClientOrderTracker:
    kw.setdefault("inflight_timeout", 0.0)
    kw.setdefault("retry_delay", 0.0)
    return ClientOrderTracker(venue, store, fill_sink=ledger, **kw)


@pytest.fixture
def venue():
    return FakeVenue()


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "orders.db")
    yield s
    s.close()


def test_nothing_trades_before_reconciliation(venue, store):
    t = tracker(venue, store)
    with pytest.raises(TrackerNotReadyError):
        run(t.create("BTCUSDT", "buy", 100, 10))
    assert venue.calls["create"] == 0


def test_lifecycle_fills_once_and_exposure(venue, store):
    ledger = Ledger()
    t = tracker(venue, store, ledger)

    async def go():
        await t.start()
        cid = await t.create("BTCUSDT", "buy", 100, 10)
        assert t.get(cid).state == OrderState.OPEN and t.get(cid).exchange_id == venue.orders[cid].exchange_id
        assert t.get(cid).client_id.startswith("mm") and len(cid) <= 36
        x = t.exposure("BTCUSDT")
        assert (x.buy_qty, x.buy_notional) == (10, 1000)
        tr = venue.fill(cid, 4)
        assert t.on_trade(tr) is True
        assert t.on_trade(tr) is False  # the stream repeats itself
        assert t.exposure("BTCUSDT").buy_qty == 6
        assert await t.cancel(cid) == OrderState.CANCELED
        assert t.exposure("BTCUSDT").buy_qty == 0
        return cid

    cid = run(go())
    assert t.stats["duplicate_fills"] == 1
    assert ledger.filled_by_order() == {cid: 4}
    assert list(ledger.deliveries.values()) == [1]
    assert ledger.fills[("fakex", "BTCUSDT", "1")].side == Side.BUY


def test_reject_fails_the_order_and_frees_exposure(venue, store):
    t = tracker(venue, store)
    venue.faults.reject_creates = 1

    async def go():
        await t.start()
        return await t.create("BTCUSDT", "sell", 100, 10)

    cid = run(go())
    assert t.get(cid).state == OrderState.FAILED
    assert t.exposure("BTCUSDT").sell_qty == 0


def test_create_that_acts_then_times_out_is_found_by_query(venue, store):
    t = tracker(venue, store)
    venue.faults.act_then_timeout["create"] = 1

    async def go():
        await t.start()
        return await t.create("BTCUSDT", "buy", 100, 10)

    cid = run(go())
    assert t.get(cid).state == OrderState.OPEN
    assert t.get(cid).exchange_id == venue.orders[cid].exchange_id
    assert t.stats["create_uncertain"] == 1 and venue.calls["fetch_order"] == 1
    assert venue.calls["create"] == 1, "an uncertain create is asked about, never re-sent"


def test_create_that_never_arrived_becomes_lost_after_three_not_found_and_stays_in_exposure(venue, store):
    t = tracker(venue, store)
    venue.faults.fail_before_acting["create"] = 1

    async def go():
        await t.start()
        cid = await t.create("BTCUSDT", "buy", 100, 10)
        assert t.get(cid).state == OrderState.PENDING_CREATE and t.get(cid).not_found == 1
        assert t.exposure("BTCUSDT").buy_qty == 10  # in flight counts
        await t.poll()
        assert t.get(cid).state == OrderState.PENDING_CREATE and t.get(cid).not_found == 2
        await t.poll()
        assert t.get(cid).state == OrderState.LOST
        assert t.exposure("BTCUSDT").buy_qty == 10, "not found is not proof of absence"
        cancels = venue.calls["cancel"]
        await t.poll()  # lost orders keep being cancelled
        assert venue.calls["cancel"] == cancels + 1
        assert t.get(cid).state == OrderState.LOST
        t.abandon(cid)
        assert t.get(cid).state == OrderState.FAILED and t.exposure("BTCUSDT").buy_qty == 0

    run(go())
    assert t.stats["lost"] == 1


def test_a_lost_order_is_cancelled_on_its_backoff_however_often_a_caller_asks(venue, store):
    """A pool releasing a member cancels its orders every round; a LOST order must not turn that
    into a venue request (cancel, fetch, open orders, trades) every round."""
    now = [1000.0]
    t = tracker(venue, store, clock=lambda: now[0], lost_retry_s=10.0, lost_retry_max_s=60.0)
    venue.faults.fail_before_acting["create"] = 1

    async def go():
        await t.start()
        cid = await t.create("BTCUSDT", "buy", 100, 10)
        await t.poll()
        await t.poll()
        assert t.get(cid).state == OrderState.LOST
        cancels = venue.calls["cancel"]
        await t.cancel(cid)  # the first ask after it went LOST goes out
        assert venue.calls["cancel"] == cancels + 1
        for _ in range(20):  # every round of a release, within the backoff: nothing goes out
            assert await t.cancel(cid) == OrderState.LOST
        await t.poll()
        assert venue.calls["cancel"] == cancels + 1
        now[0] += 10.0  # the backoff has run out: asked again, once
        await t.cancel(cid)
        await t.cancel(cid)
        assert venue.calls["cancel"] == cancels + 2

    run(go())
    assert t.stats["lost_cancel_deferred"] == 22


def test_the_poll_asks_open_orders_per_symbol_it_has_live_orders_in(venue, store):
    """Binance weighs openOrders for all symbols 80 and for one 6: the poll asks per symbol, and
    not at all with nothing live."""
    asked: list = []
    fetch = venue.fetch_open_orders

    async def recording(symbol=None):
        asked.append(symbol)
        return await fetch(symbol)

    venue.fetch_open_orders = recording
    t = tracker(venue, store)

    async def go():
        await t.start()
        asked.clear()
        await t.poll()
        assert asked == []
        await t.create("BTCUSDT", "buy", 100, 10)
        await t.poll()
        assert asked == ["BTCUSDT"]

    run(go())


def test_a_lost_order_that_traded_is_abandoned_as_canceled_not_rejected(venue, store):
    t = tracker(venue, store)
    venue.faults.fail_before_acting["create"] = 1

    async def go():
        await t.start()
        cid = await t.create("BTCUSDT", "buy", 100, 10)
        # A fill names the order by client id only: a sign of life, then silence again.
        assert t.on_trade(TradeReport("T1", "X1", cid, "BTCUSDT", "buy", 100, 4, 0, "USDT", True))
        assert t.get(cid).state == OrderState.PARTIALLY_FILLED
        for _ in range(3):
            await t.poll()
        assert t.get(cid).state == OrderState.LOST and t.get(cid).filled == 4
        assert t.exposure("BTCUSDT").buy_qty == 6
        t.abandon(cid)
        assert t.get(cid).state == OrderState.CANCELED and t.get(cid).filled == 4
        assert t.exposure("BTCUSDT").buy_qty == 0
        with pytest.raises(ValueError, match="only a LOST order"):
            t.abandon(cid)

    run(go())


def test_not_found_for_a_while_is_not_lost(venue, store):
    t = tracker(venue, store)
    venue.faults.act_then_timeout["create"] = 1

    async def go():
        await t.start()
        cid_box = {}

        # The venue lags: the next two queries for the order answer "not found".
        orig = venue.create_order

        async def create(req):
            venue.faults.hidden[req.client_id] = 2
            cid_box["cid"] = req.client_id
            return await orig(req)

        venue.create_order = create
        cid = await t.create("BTCUSDT", "buy", 100, 10)
        assert t.get(cid).not_found == 1
        await t.poll()
        assert t.get(cid).state == OrderState.OPEN and t.get(cid).not_found == 0
        return cid

    run(go())


def test_a_network_error_is_not_a_not_found(venue, store):
    t = tracker(venue, store)
    venue.faults.fail_before_acting["create"] = 1

    async def go():
        await t.start()
        venue.faults.down = False
        cid = await t.create("BTCUSDT", "buy", 100, 10)
        assert t.get(cid).not_found == 1
        venue.faults.down = True
        for _ in range(5):
            await t.poll()
        assert t.get(cid).state == OrderState.PENDING_CREATE and t.get(cid).not_found == 1
        assert t.stats["query_failed"] >= 5

    run(go())


def test_fill_before_the_create_ack(venue, store):
    ledger = Ledger()
    t = tracker(venue, store, ledger)
    venue.faults.fill_on_create = 3

    async def go():
        await t.start()
        orig = venue.create_order

        async def create(req):
            rep = await orig(req)
            # The user stream delivers the fill before the REST ack comes back.
            t.on_trade(venue.stream[-1])
            return rep

        venue.create_order = create
        return await t.create("BTCUSDT", "sell", 100, 10)

    cid = run(go())
    v = t.get(cid)
    assert (v.state, v.filled, v.fill_count) == (OrderState.PARTIALLY_FILLED, 3, 1)
    assert v.exchange_id == venue.orders[cid].exchange_id
    assert ledger.filled_by_order() == {cid: 3}


def test_duplicate_cancels_send_one_request(venue, store):
    t = tracker(venue, store)

    async def go():
        await t.start()
        cid = await t.create("BTCUSDT", "buy", 100, 10)
        orig = venue.cancel_order

        async def slow_cancel(*a):
            await asyncio.sleep(0.01)
            return await orig(*a)

        venue.cancel_order = slow_cancel
        states = await asyncio.gather(*(t.cancel(cid) for _ in range(5)))
        assert states == [OrderState.CANCELED] * 5
        assert await t.cancel(cid) == OrderState.CANCELED  # closed: nothing sent

    run(go())
    assert venue.calls["cancel"] == 1
    assert t.stats["cancel_deduplicated"] == 4


def test_cancel_of_a_filled_order_resolves_by_query_not_retries(venue, store):
    ledger = Ledger()
    t = tracker(venue, store, ledger)

    async def go():
        await t.start()
        cid = await t.create("BTCUSDT", "buy", 100, 10)
        venue.fill(cid, 10)  # the stream missed it
        return cid, await t.cancel(cid)

    cid, state = run(go())
    assert state == OrderState.FILLED
    assert venue.calls["cancel"] == 1
    assert t.stats["cancel_unknown_order"] == 1
    assert ledger.filled_by_order() == {cid: 10}


def test_late_fill_after_cancel(venue, store):
    ledger = Ledger()
    t = tracker(venue, store, ledger)

    async def go():
        await t.start()
        cid = await t.create("BTCUSDT", "buy", 100, 10)
        assert await t.cancel(cid) == OrderState.CANCELED
        # A trade that matched just before the cancel, reported after its confirmation.
        eid = venue.orders[cid].exchange_id
        late = TradeReport("LATE1", eid, None, "BTCUSDT", "buy", 100, 2, 0, "USDT", True)
        assert t.on_trade(late) is True
        assert t.on_trade(late) is False
        return cid

    cid = run(go())
    v = t.get(cid)
    assert (v.state, v.filled, v.late_fills, v.remaining) == (OrderState.CANCELED, 2, 1, 0)
    assert t.orders.late_fills() == 1  # the sum over every order, as a backtest report reads it
    assert ledger.filled_by_order() == {cid: 2}


def test_unknown_order_and_bad_input(venue, store):
    t = tracker(venue, store)

    async def go():
        await t.start()
        with pytest.raises(UnknownOrderError):
            await t.cancel("nope")
        with pytest.raises(ValueError):
            await t.create("BTCUSDT", "buy", 0, 10)
        with pytest.raises(ValueError):
            await t.create("BTCUSDT", "hold", 100, 10)

    run(go())
    assert venue.calls["create"] == 0
    with pytest.raises(ValueError):
        tracker(venue, store, unknown_orders="ignore")


def test_fill_sink_failure_is_redelivered(venue, store):
    ledger = Ledger()
    ledger.refuse = 1
    t = tracker(venue, store, ledger)

    async def go():
        await t.start()
        cid = await t.create("BTCUSDT", "buy", 100, 10)
        t.on_trade(venue.fill(cid, 5))
        assert ledger.fills == {}
        await t.poll()
        return cid

    cid = run(go())
    assert ledger.filled_by_order() == {cid: 5}
    assert t.stats["delivery_failed"] == 1


# ---------------------------------------------------------------------- startup reconciliation
def test_startup_cancels_or_adopts_our_unknown_orders_and_ignores_foreign_ones(venue, tmp_path):
    from mixmaker.orders import OrderRequest

    for policy, expect in (("cancel", "canceled"), ("adopt", "open")):
        v = FakeVenue()
        s = SqliteStore(tmp_path / f"{policy}.db")
        t = tracker(v, s, unknown_orders=policy)
        ours = t._ids.next()

        async def go():
            await v.create_order(OrderRequest(ours, "BTCUSDT", Side.BUY, 100, 10))
            await v.create_order(OrderRequest("someone-else-1", "BTCUSDT", Side.SELL, 200, 1))
            await t.start()

        run(go())
        assert v.orders[ours].status == expect
        assert v.orders["someone-else-1"].status == "open"
        assert (ours in t.orders) == (policy == "adopt")
        if policy == "adopt":
            assert t.get(ours).state == OrderState.OPEN and t.exposure("BTCUSDT").buy_qty == 10
        s.close()


def test_startup_waits_for_the_venue_and_says_so(venue, store):
    venue.faults.down = True
    t = tracker(venue, store, startup_attempts=3)
    with pytest.raises(Exception, match="after 3 attempts"):
        run(t.start())
    assert not t.ready and venue.calls["fetch_open_orders"] == 3


# ---------------------------------------------------------------------- restarts
STEPS = ["recorded", "submitted", "acked", "fill_recorded", "cancel_requested", "cancel_acked"]


def _life(t: ClientOrderTracker, venue: FakeVenue):
    """Three orders: one filled in part and cancelled, one left resting with a fill, one
    cancelled untouched."""

    async def go():
        a = await t.create("BTCUSDT", "buy", 100, 10)
        t.on_trade(venue.fill(a, 3))
        b = await t.create("BTCUSDT", "sell", 120, 5)
        t.on_trade(venue.fill(b, 1))
        await t.cancel(a)
        c = await t.create("BTCUSDT", "buy", 90, 4)
        await t.cancel(c)

    return go()


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("nth", [1, 2])
def test_a_restart_at_any_step_ends_equal_to_the_venue(venue, tmp_path, step, nth):
    path = tmp_path / "orders.db"
    ledger = Ledger()
    seen = Counter()

    def crash(s, _cid):
        seen[s] += 1
        if s == step and seen[s] == nth:
            raise Crash(s)

    first = tracker(venue, SqliteStore(path), ledger, crash_hook=crash)
    run(first.start())
    with pytest.raises(Crash):
        run(_life(first, venue))
    # The market moves while we are down: the resting orders trade.
    for cid in sorted(venue.open_ids()):
        venue.fill(cid, 1)

    second = tracker(venue, SqliteStore(path), ledger)
    run(second.start())
    for _ in range(3):  # orders that never reached the venue need lost_after answers
        run(second.poll())

    assert set(second.open_orders()) == venue.open_ids()
    assert ledger.filled_by_order() == venue.filled_by_order()
    assert all(n == 1 for n in ledger.deliveries.values()), ledger.deliveries
    journal_fills = second.journal.fills()
    assert len(journal_fills) == len({f.key for f in journal_fills}) == len(venue.trades)
    for cid, filled in venue.filled_by_order().items():
        assert second.get(cid).filled == filled
    for cid in second.orders.ids():
        v = second.get(cid)
        at_venue = venue.orders.get(cid)
        if at_venue is None:
            # Never reached the venue: failed (provably unsent) or lost (unprovable), never open.
            assert v.state in (OrderState.FAILED, OrderState.LOST), (cid, v.state)
        else:
            assert v.exchange_id == at_venue.exchange_id
    x = second.exposure("BTCUSDT")
    truth_buy = sum(o.quantity - o.filled for o in venue.orders.values() if o.side == Side.BUY and o.status in ("open", "partially_filled"))
    truth_sell = sum(o.quantity - o.filled for o in venue.orders.values() if o.side == Side.SELL and o.status in ("open", "partially_filled"))
    assert x.buy_qty >= truth_buy and x.sell_qty >= truth_sell


def test_the_startup_trade_scan_starts_at_the_last_completed_scan_not_the_oldest_order(venue, store):
    lookback = 60_000

    async def start() -> ClientOrderTracker:
        t = tracker(venue, store, trade_lookback_ms=lookback)
        await t.start()
        return t

    async def go():
        t = await start()  # an empty journal: nothing to scan
        assert venue.trade_queries == []
        cid = await t.create("BTCUSDT", "buy", 100, 10)
        created_ms = t._meta[cid].since_ms  # venue clock
        before = time.time_ns() // 1_000_000
        await start()  # first restart: no scan yet, so from the order's creation
        after = time.time_ns() // 1_000_000
        assert venue.trade_queries == [("BTCUSDT", created_ms - lookback)]
        # The order is a day old now; the next restart still scans only from the previous scan.
        with store.transaction() as tx:
            tx.execute("UPDATE orders SET created_ns = created_ns - ?", (86_400 * 10**9,))
        await start()
        (_, since), = venue.trade_queries[1:]
        assert before - lookback <= since <= after - lookback

    run(go())


def test_through_a_pool_venue_an_order_journaled_by_a_killed_process_ends_failed_not_lost(venue, tmp_path):
    """The engine's tracker talks to the exchange through `PoolVenue`. It must pass the exchange's
    clock and recvWindow through: without them the create's window is not journaled, "never sent"
    can never be proven, and the order stays LOST (its pool member never leaves)."""
    from mixmaker.orders.protocol import OrderTradesVenue, RequestWindowVenue, recv_window_of, venue_clock_ms
    from mixmaker.users.pool_runtime import PoolVenue

    class Fills:  # the pool's fill book: remembers who placed what
        def record_order(self, venue_name, req, pool_id):
            self.last = (req.client_id, pool_id)

    class Guard:
        def check(self, pool_id, req):
            pass

    pv = PoolVenue(venue, Fills(), Guard())
    assert isinstance(pv, RequestWindowVenue) and isinstance(pv, OrderTradesVenue)
    assert recv_window_of(pv) == venue.recv_window_ms
    venue.frozen_ms = 1_700_000_000_000
    assert venue_clock_ms(pv) == venue.clock_ms()
    venue.frozen_ms = None
    path = tmp_path / "orders.db"

    def crash(step, _cid):
        if step == "submitted":
            raise Crash(step)  # killed after the journal, before the request left

    first = tracker(pv, SqliteStore(path), crash_hook=crash)
    run(first.start())
    with pytest.raises(Crash):
        run(first.create("BTCUSDT", Side.BUY, 100, 10, owner="binance:BTC/USDT:tight"))
    ((o, _events),) = first.journal.orders()
    assert o.recv_window_ms == venue.recv_window_ms and o.request_ms is not None
    assert o.client_id not in venue.orders

    second = tracker(pv, SqliteStore(path), unsent_margin_ms=0, lost_retry_s=0.01, lost_retry_max_s=0.01)
    venue.clock_offset_ms = venue.recv_window_ms + 1000  # the venue's clock is past the create's window

    async def settle():
        await second.start()
        for _ in range(10):
            if second.get(o.client_id).state is OrderState.FAILED:
                return
            await second.poll()
            await asyncio.sleep(0.02)

    run(settle())
    assert second.get(o.client_id).state is OrderState.FAILED and second.stats["unsent_failed"] == 1
