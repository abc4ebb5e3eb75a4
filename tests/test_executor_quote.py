"""QuoteExecutor over the real ClientOrderTracker and the simulated venue: fewest requests,
tolerance, cancel-before-create when the budget needs it, partial and late fills, rejects with
backoff, and its states."""

from __future__ import annotations


import pytest

from mixmaker.orders import OrderState, Side
from mixmaker.orders.protocol import VenueStatus
from mixmaker.strategy import SCALE, Decision, ExecutorStateError, Proposal, Quote, RunnableStatus
from strategy_helpers import Rig, in_loop

TOL = SCALE // 1000  # 0.1 %


def quotes(buys=(), sells=(), size=1000):
    return Proposal(tuple(Quote(Side.BUY, i, p, size) for i, p in enumerate(buys)),
                    tuple(Quote(Side.SELL, i, p, size) for i, p in enumerate(sells)))


def decision(proposal, **kw):
    return Decision(proposal, refresh=True, create=True, tolerance=kw.pop("tolerance", TOL), **kw)



@in_loop
async def test_places_then_keeps_quotes_within_tolerance_and_replaces_only_the_rest():
    r = Rig()
    await r.start()
    rep = await r.ex.apply(decision(quotes([9900, 9800], [10100, 10200])), r.now)
    assert (rep.created, rep.cancelled) == (4, 0) and r.calls() == (4, 0)
    assert len(r.listener.placed) == 4 and len(r.ex.own_orders()) == 4
    # 9905 is within 0.1 % of 9900, 10190 of 10200: nothing to send
    rep = await r.ex.apply(decision(quotes([9905, 9800], [10100, 10190])), r.now)
    assert (rep.created, rep.cancelled, rep.kept) == (0, 0, 4) and r.calls() == (4, 0)
    # only the 9800 level moved out of tolerance: one create, one cancel
    rep = await r.ex.apply(decision(quotes([9900, 9700], [10100, 10200])), r.now)
    assert (rep.created, rep.cancelled, rep.kept) == (1, 1, 3) and r.calls() == (5, 1)
    assert sorted(o.price for o in r.ex.own_orders()) == [9700, 9900, 10100, 10200]
    assert not rep.cancel_first  # funds were free: the new order went out first


@in_loop
async def test_renewals_are_placed_even_without_a_refresh():
    r = Rig()
    await r.start()
    rep = await r.ex.apply(Decision(None, renew=(Quote(Side.SELL, -1, 10100, 400),)), r.now)
    assert rep.created == 1 and r.listener.placed[0][1] == Quote(Side.SELL, -1, 10100, 400)


@in_loop
async def test_negative_tolerance_always_replaces():
    r = Rig()
    await r.start()
    await r.ex.apply(decision(quotes([9900])), r.now)
    rep = await r.ex.apply(decision(quotes([9900]), tolerance=-1), r.now)
    assert (rep.created, rep.cancelled) == (1, 1)


@in_loop
async def test_cancels_first_when_the_budget_needs_the_locked_funds():
    r = Rig(quote="100")  # 100 USDT: room for one 99.00 x 1 buy only
    await r.start()
    await r.ex.apply(decision(quotes([9900])), r.now)
    rep = await r.ex.apply(decision(quotes([9800])), r.now)
    assert rep.cancel_first and (rep.created, rep.cancelled, rep.rejected) == (1, 1, 0)
    assert [o.price for o in r.ex.own_orders()] == [9800]
    assert r.venue.stats["rejected_balance"] == 0


@in_loop
async def test_with_latency_creates_wait_for_the_cancels_that_free_their_funds():
    r = Rig(quote="100", latency_ns=int(50e6))
    await r.start()
    await r.ex.apply(decision(quotes([9900])), r.now)
    r.venue.advance(r.now + int(50e6))
    rep = await r.ex.apply(decision(quotes([9800])), r.now + int(60e6))
    assert rep.cancel_first and (rep.created, rep.cancelled) == (0, 1)
    assert r.ex.stats["creates_deferred_for_cancels"] == 1 and r.venue.stats["rejected_balance"] == 0
    r.venue.advance(r.now + int(110e6))  # the cancel lands: the funds are free
    await r.deliver()
    rep = await r.ex.apply(decision(quotes([9800])), r.now + int(120e6))
    assert rep.created == 1 and [o.price for o in r.ex.own_orders()] == [9800]


@in_loop
async def test_refresh_without_a_proposal_cancels_and_hold_protects_hanging_orders():
    r = Rig()
    await r.start()
    await r.ex.apply(decision(quotes([9900], [10100])), r.now)
    sell = next(o.client_id for o in r.ex.own_orders() if o.side == Side.SELL)
    rep = await r.ex.apply(Decision(None, refresh=True, hold=frozenset({sell})), r.now)
    assert rep.cancelled == 1 and [o.client_id for o in r.ex.own_orders()] == [sell]
    rep = await r.ex.apply(Decision(None, cancel=((sell, "hanging too far"),)), r.now)
    assert rep.cancelled == 1 and r.ex.own_orders() == ()
    assert r.ex.stats["cancel: hanging too far"] == 1 and len(r.listener.closed) == 2


@in_loop
async def test_partial_then_full_fill_reach_the_controller():
    r = Rig()
    await r.start()
    await r.ex.apply(decision(quotes([9900])), r.now)
    cid = r.ex.own_orders()[0].client_id
    r.venue.on_public_trade(9900, 400, buyer_is_maker=True)  # front of the queue: 0.4 of our 1.0
    await r.deliver()
    o = r.ex.own_orders()[0]
    assert (o.state, o.remaining) == (OrderState.PARTIALLY_FILLED, 600)
    rep = await r.ex.apply(decision(quotes([9900])), r.now)  # partial fills keep the order working
    assert (rep.created, rep.cancelled, rep.kept) == (0, 0, 1)
    r.venue.on_public_trade(9890, 5000, buyer_is_maker=True)  # prints through our price
    await r.deliver()
    assert r.listener.fills == [(cid, 400, False), (cid, 600, True)]
    assert r.ex.own_orders() == () and r.listener.closed == []  # filled, not "closed"
    assert r.venue.base == 11_000


@in_loop
async def test_queue_position_delays_fills():
    r = Rig(queue="risk_averse")  # 5.0 already rests at 99.90 ahead of us
    await r.start()
    await r.ex.apply(decision(quotes([9990])), r.now)
    r.venue.on_public_trade(9990, 4000, buyer_is_maker=True)
    assert r.venue.stats["fills"] == 0  # 4.0 of the 5.0 ahead
    r.venue.on_public_trade(9990, 1500, buyer_is_maker=True)
    await r.deliver()
    assert r.ex.own_orders()[0].remaining == 500  # 1.0 left ahead, then 0.5 for us


@in_loop
async def test_rejects_back_off_exponentially_and_success_resets():
    r = Rig()
    await r.start()
    r.venue.reject_next_creates = 2
    rep = await r.ex.apply(decision(quotes([9900])), r.now)
    assert rep.rejected == 1 and r.ex.backoff[(Side.BUY, 0)] == (r.now + int(1e9), 1)
    rep = await r.ex.apply(decision(quotes([9900])), r.now + int(0.5e9))  # inside the 1 s backoff
    assert rep.backed_off == 1 and r.calls() == (1, 0)
    rep = await r.ex.apply(decision(quotes([9900])), r.now + int(1e9))  # second reject: 2 s
    assert rep.rejected == 1 and r.ex.backoff[(Side.BUY, 0)] == (r.now + int(3e9), 2)
    rep = await r.ex.apply(decision(quotes([9900])), r.now + int(3e9))
    assert rep.created == 1 and (Side.BUY, 0) not in r.ex.backoff and r.ex.stats["rejected"] == 2


@in_loop
async def test_post_only_reject_from_the_venue_is_a_reject():
    r = Rig()
    await r.start()
    rep = await r.ex.apply(decision(quotes([10100])), r.now)  # would take the 100.10 ask
    assert rep.rejected == 1 and r.venue.stats["rejected_post_only"] == 1
    assert r.tracker.get(next(iter(r.tracker.orders.ids()))).state == OrderState.FAILED


@in_loop
async def test_late_fill_while_the_cancel_travels():
    r = Rig(latency_ns=int(50e6))
    await r.start()
    await r.ex.apply(decision(quotes([9900])), r.now)
    r.venue.advance(r.now + int(50e6))  # the order reaches the book
    cid = r.ex.own_orders()[0].client_id
    await r.ex.apply(Decision(None, cancel=((cid, "test"),)), r.now)
    assert r.tracker.get(cid).state == OrderState.PENDING_CANCEL and r.ex.cancels_in_flight == 1
    r.venue.on_public_trade(9890, 5000, buyer_is_maker=True)  # fills before the cancel lands
    r.venue.advance(r.now + int(200e6))
    await r.deliver()
    assert r.tracker.get(cid).state == OrderState.FILLED and r.tracker.get(cid).filled == 1000
    assert r.listener.fills == [(cid, 1000, True)]


@in_loop
async def test_states_and_stop_cancels_everything():
    r = Rig()
    await r.tracker.start()
    assert r.ex.status == RunnableStatus.NOT_STARTED and not r.ex.submit(decision(quotes([9900])), r.now)
    r.ex.start()
    with pytest.raises(ExecutorStateError):
        r.ex.start()
    assert r.ex.submit(decision(quotes([9900], [10100])), r.now) and r.ex.busy
    assert not r.ex.submit(decision(quotes([9900])), r.now)  # busy: skipped, not queued
    await r.ex.idle()
    assert len(r.ex.own_orders()) == 2 and r.ex.report()["decisions_skipped_busy"] == 1
    await r.ex.stop()
    assert r.ex.status == RunnableStatus.TERMINATED and r.venue._open == {}
    assert r.ex.report()["status"] == "TERMINATED"


@in_loop
async def test_the_same_loop_runs_on_a_realtime_clock():
    """StrategyLoop + PureMarketMaking + QuoteExecutor on a REALTIME clock inside asyncio, as
    live: the first tick quotes, later ticks keep the quotes (nothing moved)."""
    import time
    from decimal import Decimal

    from mixmaker.book import BookState
    from mixmaker.clock import Clock, ClockMode
    from mixmaker.strategy import MarketView, PureMarketMaking, StrategyLoop
    from strategy_helpers import RULES, pmm

    r = Rig()
    await r.start()
    sync = type("Synced", (), {"state": BookState.SYNCED, "book": r.venue.book, "desync_reason": None})()
    ctl = PureMarketMaking(pmm(order_refresh_time=Decimal("0.05"), order_refresh_tolerance_pct=Decimal("0.1")), RULES)
    r.ex = r.ex.__class__(r.tracker, RULES, r.venue, ctl, time.time_ns)  # a fresh, not started executor
    loop = StrategyLoop(ctl, r.ex, MarketView(RULES, sync, r.venue))
    clock = Clock(ClockMode.REALTIME, tick_size="0.05")
    clock.add_iterator(loop)
    await clock.run_til(time.time_ns() + 300_000_000)
    await r.ex.idle()
    clock.stop()
    assert clock.ticks >= 3 and clock.iterator_errors == 0
    assert sorted(o.price for o in r.ex.own_orders()) == [9900, 10100] and r.venue.stats["create"] == 2
    assert r.ex.status == RunnableStatus.RUNNING
    assert loop.decisions + r.ex.stats["ticks_skipped_busy"] == clock.ticks


@in_loop
async def test_a_repeated_decision_is_answered_again_only_while_nothing_changed():
    """The executor answers the same decision on the same orders without redoing it, and redoes
    it as soon as an order changed (here: the venue cancelled one on its own)."""
    r = Rig()
    await r.start()
    d = decision(quotes([9900], [10100]))
    await r.ex.apply(d, r.now)
    kept_before = r.ex.stats["kept"]
    for _ in range(3):
        rep = await r.ex.apply(d, r.now)
        assert (rep.created, rep.cancelled, rep.kept) == (0, 0, 2)
    assert r.ex.stats["kept"] == kept_before + 6 and r.calls() == (2, 0)
    buy = next(o.client_id for o in r.ex.own_orders() if o.side == Side.BUY)
    r.venue._close(r.venue.orders[buy], VenueStatus.CANCELED)  # the venue drops it (e.g. expiry)
    await r.deliver()
    rep = await r.ex.apply(d, r.now)
    assert (rep.created, rep.kept) == (1, 1) and r.calls() == (3, 0)  # the buy is placed again
    assert r.listener.closed == [buy]


@in_loop
async def test_a_loop_says_when_a_tick_would_change_nothing_and_counts_the_ticks_passed():
    """`StrategyLoop.held` vouches for the next ticks only once the decision stands and the
    executor would keep its orders; `pass_ticks` counts what those ticks would have counted; a
    change to our orders ends it."""
    from decimal import Decimal

    from mixmaker.book import BookState
    from mixmaker.strategy import MarketView, PureMarketMaking, StrategyLoop
    from strategy_helpers import RULES, pmm

    r = Rig()
    await r.start()
    sync = type("Synced", (), {"state": BookState.SYNCED, "book": r.venue.book, "desync_reason": None})()
    # refreshed every 1 ms: each tick compares the quotes (and keeps both)
    ctl = PureMarketMaking(pmm(order_refresh_time=Decimal("0.001"), order_optimization_enabled=False), RULES)
    r.ex = r.ex.__class__(r.tracker, RULES, r.venue, ctl, lambda: r.now)
    loop = StrategyLoop(ctl, r.ex, MarketView(RULES, sync, r.venue))
    loop.start(None, r.now)  # type: ignore[arg-type]
    with pytest.raises(ExecutorStateError):
        loop.pass_ticks(1)
    assert loop.held() is None  # nothing decided yet

    async def tick(s: int) -> None:
        r.now += s * 10**9
        loop.tick(r.now)
        await r.ex.idle()

    await tick(1)  # places both quotes
    assert loop.held() is None  # the executor has not seen the decision change nothing yet
    await tick(1)
    held = loop.held()
    assert held is not None and held[1:] == (9990, 10010, None)
    before = (loop.decisions, r.ex.stats["kept"], loop.idle_ticks)
    for _ in range(3):
        await tick(1)  # ticked for real
    ticked = (loop.decisions, r.ex.stats["kept"], loop.idle_ticks)
    assert loop.held() is not None
    loop.pass_ticks(3)  # the same three ticks, passed
    passed = (loop.decisions, r.ex.stats["kept"], loop.idle_ticks)
    assert ticked[1] - before[1] == 6 and r.calls() == (2, 0)
    assert [p - t for p, t in zip(passed, ticked)] == [t - b for t, b in zip(ticked, before)]
    buy = next(o.client_id for o in r.ex.own_orders() if o.side == Side.BUY)
    r.venue._close(r.venue.orders[buy], VenueStatus.CANCELED)  # the venue drops one: the next tick acts
    await r.deliver()
    assert loop.held() is None
