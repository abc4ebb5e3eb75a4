"""The central rate limiter: the scheduler with explicit time (exact), then on the event loop."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixmaker.connectors.limiter import (
    CostError,
    LimiterClosedError,
    LimiterCore,
    Pool,
    Priority,
    RateLimiter,
    RateLimitError,
    RequestNotSentError,
)

WEIGHT = Pool("weight", 10, 60.0)
ORDERS = Pool("orders", 2, 10.0)


def core(**kw) -> LimiterCore:
    return LimiterCore([WEIGHT, ORDERS], seed=1, **kw)


def seqs(tickets) -> list[int]:
    return [t.seq for t in tickets]


def test_requests_within_the_limit_go_at_once_and_the_next_waits_for_the_window():
    c = core()
    a = c.submit({"weight": 6}, Priority.QUERY, 0.0)
    assert seqs(c.admit(0.0)[0]) == [a.seq]
    b = c.submit({"weight": 4}, Priority.QUERY, 1.0)
    assert seqs(c.admit(1.0)[0]) == [b.seq]
    late = c.submit({"weight": 5}, Priority.QUERY, 2.0)
    admitted, wake = c.admit(2.0)
    # 10 used; 5 more fit once the 6 taken at t=0 leave the window.
    assert admitted == [] and wake == 60.0
    assert c.admit(59.999)[0] == []
    assert seqs(c.admit(60.0)[0]) == [late.seq]
    assert c.stats.waited_s_max == pytest.approx(58.0)


def test_a_request_drawing_on_two_pools_needs_room_in_both():
    c = core()
    for _ in range(2):
        c.submit({"weight": 1, "orders": 1}, Priority.CREATE, 0.0)
    assert len(c.admit(0.0)[0]) == 2
    third = c.submit({"weight": 1, "orders": 1}, Priority.CREATE, 0.0)
    admitted, wake = c.admit(0.0)
    assert admitted == [] and wake == 10.0  # the orders pool, though weight has room
    assert c.stats.used == {"weight": 2, "orders": 2}
    assert seqs(c.admit(10.0)[0]) == [third.seq]


def test_cancels_go_before_creates_before_queries_and_fifo_within_one():
    c = core()
    c.submit({"weight": 10}, Priority.QUERY, 0.0)
    assert len(c.admit(0.0)[0]) == 1  # the pool is full now
    q1 = c.submit({"weight": 1}, Priority.QUERY, 1.0)
    cr = c.submit({"weight": 1}, Priority.CREATE, 2.0)
    q2 = c.submit({"weight": 1}, Priority.QUERY, 3.0)
    ca = c.submit({"weight": 1}, Priority.CANCEL, 4.0)
    assert c.stats.queued == 4
    got = []
    for t in (60.0, 60.0):
        got += seqs(c.admit(t)[0])
    # At t=60 the whole window frees: all four fit, in priority order.
    assert got == [ca.seq, cr.seq, q1.seq, q2.seq]


def test_a_waiter_blocks_lower_priorities_only_on_the_pools_it_waits_for():
    c = core()
    c.submit({"weight": 1, "orders": 2}, Priority.CREATE, 0.0)
    c.admit(0.0)
    create = c.submit({"weight": 1, "orders": 1}, Priority.CREATE, 1.0)  # orders pool is full
    query = c.submit({"weight": 1}, Priority.QUERY, 1.0)  # needs only weight: goes
    big = c.submit({"weight": 1, "orders": 1}, Priority.QUERY, 1.0)  # behind the create on orders
    assert seqs(c.admit(1.0)[0]) == [query.seq]
    assert seqs(c.admit(10.0)[0]) == [create.seq, big.seq]


def test_a_big_request_at_the_head_is_not_starved_by_small_ones_behind_it():
    c = core()
    c.submit({"weight": 9}, Priority.QUERY, 0.0)
    c.admit(0.0)
    big = c.submit({"weight": 5}, Priority.QUERY, 1.0)
    small = c.submit({"weight": 1}, Priority.QUERY, 1.0)
    # `small` would fit now, but `big` is ahead of it on the same pool and priority.
    assert c.admit(1.0)[0] == []
    assert seqs(c.admit(60.0)[0]) == [big.seq, small.seq]


def test_429_closes_every_pool_until_retry_after_then_backoff_grows_without_it():
    c = core(backoff_s=1.0, backoff_max_s=8.0)
    t = c.submit({"weight": 1}, Priority.CANCEL, 0.0)
    assert c.rate_limited(0.0, 3.0) == 3.0
    assert c.admit(2.9) == ([], 3.0)
    assert seqs(c.admit(3.0)[0]) == [t.seq]
    c.succeeded()
    # No Retry-After: 1, 2, 4, 8, 8 s steps, each with 50-100 % jitter, growing while they repeat.
    steps = []
    now = 10.0
    for _ in range(5):
        until = c.rate_limited(now, None)
        steps.append(until - now)
        now = until
    for step, base in zip(steps, [1, 2, 4, 8, 8]):
        assert base / 2 <= step <= base
    c.succeeded()
    assert c.rate_limited(100.0, None) - 100.0 <= 1.0  # a success resets the backoff
    assert (c.stats.rate_limited, c.stats.banned) == (7, 0)
    c.rate_limited(200.0, 120.0, banned=True)
    assert c.stats.banned == 1 and c.stats.blocked_until == 320.0


def test_the_venue_count_raises_ours_and_expires_a_window_later():
    c = core()
    c.observe_used("weight", 9, 5.0)  # another process used 9 on the same IP
    t = c.submit({"weight": 2}, Priority.QUERY, 6.0)
    assert c.admit(6.0) == ([], 65.0)
    assert seqs(c.admit(65.0)[0]) == [t.seq]
    c.observe_used("weight", 1, 66.0)  # lower than ours: ours stands
    assert c.stats.used["weight"] == 2
    c.observe_used("unknown-pool", 5, 66.0)  # a header for a pool we do not model: ignored


def test_the_fast_path_never_jumps_the_queue_or_a_block():
    c = core()
    assert c.pass_now({"weight": 10}, 0.0)
    assert not c.pass_now({"weight": 1}, 1.0)  # no room: the caller must queue
    waiter = c.submit({"weight": 1}, Priority.QUERY, 1.0)
    assert not c.pass_now({"weight": 0, "orders": 1}, 2.0), "someone waits: go behind them"
    assert seqs(c.admit(60.0)[0]) == [waiter.seq]
    c.rate_limited(61.0, 5.0)
    assert not c.pass_now({"weight": 1}, 62.0)
    assert c.pass_now({"weight": 1}, 66.0)
    with pytest.raises(CostError):
        c.pass_now({"weight": 11}, 70.0)


def test_withdrawn_requests_use_nothing_and_free_the_queue():
    c = core()
    c.submit({"weight": 10}, Priority.QUERY, 0.0)
    c.admit(0.0)
    blocked = c.submit({"weight": 5}, Priority.CANCEL, 1.0)
    behind = c.submit({"weight": 5}, Priority.CANCEL, 1.0)
    c.withdraw(blocked)
    c.withdraw(blocked)  # twice is harmless
    assert seqs(c.admit(60.0)[0]) == [behind.seq]
    assert c.stats.used["weight"] == 5


@pytest.mark.parametrize(
    "cost, match",
    [({"nope": 1}, "unknown pool"), ({"weight": -1}, "non-negative"), ({"weight": 1.5}, "non-negative int"),
     ({"orders": 3}, "can never fit")],
)
def test_bad_costs_are_refused_at_submit(cost, match):
    c = core()
    with pytest.raises(CostError, match=match):
        c.submit(cost, Priority.QUERY, 0.0)
    assert c.stats.queued == 0


def test_bad_pools_are_refused():
    with pytest.raises(ValueError, match="positive"):
        Pool("w", 0, 1.0)
    with pytest.raises(ValueError, match="repeat"):
        LimiterCore([WEIGHT, WEIGHT])
    with pytest.raises(ValueError, match="at least one"):
        LimiterCore([])


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2), st.sampled_from(list(Priority)), st.integers(0, 30)), max_size=60))
def test_no_window_ever_holds_more_than_its_limit(requests):
    """Whatever arrives, at whatever times, every admitted request's weight fits in any
    window-long interval: the property the venue enforces."""
    c = core()
    now = 0.0
    log: list[tuple[float, dict]] = []
    costs = {}
    for weight, orders, prio, gap in requests:
        now += gap / 10
        cost = {"weight": weight, "orders": orders}
        if c.pass_now(cost, now):  # the fast path RateLimiter.acquire tries first
            log.append((now, cost))
            continue
        t = c.submit(cost, prio, now)
        costs[t.seq] = cost
        admitted, wake = c.admit(now)
        log += [(now, costs[a.seq]) for a in admitted]
    while True:
        admitted, wake = c.admit(now)
        log += [(now, costs[a.seq]) for a in admitted]
        if wake is None:
            break
        assert wake > now
        now = wake
    assert len(log) == len(requests), "every request is admitted in the end"
    for pool in (WEIGHT, ORDERS):
        for start, _ in log:
            inside = sum(cost[pool.name] for t, cost in log if start <= t < start + pool.window_s)
            assert inside <= pool.limit


# ------------------------------------------------------------------ on the event loop
def run(coro):
    return asyncio.run(coro)


def test_async_waiters_are_released_in_priority_order():
    async def go():
        lim = RateLimiter([Pool("weight", 2, 0.05)])
        order: list[str] = []

        async def req(name: str, prio: Priority) -> None:
            await lim.acquire({"weight": 1}, prio)
            order.append(name)

        await req("first", Priority.QUERY)
        await req("second", Priority.QUERY)  # the window is full now
        tasks = [asyncio.create_task(req(n, p)) for n, p in
                 [("q", Priority.QUERY), ("create", Priority.CREATE), ("cancel", Priority.CANCEL)]]
        await asyncio.sleep(0)
        assert lim.stats.queued == 3
        await asyncio.gather(*tasks)
        return order, lim.stats

    order, stats = run(go())
    assert order == ["first", "second", "cancel", "create", "q"]
    assert stats.admitted == 5 and stats.queued == 0 and stats.max_queued == 3


def test_a_cancelled_waiter_leaves_the_queue_and_lets_the_next_one_go():
    async def go():
        lim = RateLimiter([Pool("weight", 3, 0.05)])
        await lim.acquire({"weight": 2})
        big = asyncio.create_task(lim.acquire({"weight": 3}, Priority.CANCEL))
        small = asyncio.create_task(lim.acquire({"weight": 1}))
        await asyncio.sleep(0)
        assert lim.stats.queued == 2  # small waits behind big on the same pool
        big.cancel()
        waited = await small
        assert big.cancelled() and lim.stats.queued == 0
        return waited

    assert run(go()) >= 0.0


def test_a_429_holds_everyone_back_and_close_fails_the_waiters():
    async def go():
        lim = RateLimiter([Pool("weight", 100, 60.0)], seed=3)
        await lim.acquire({"weight": 1})
        lim.rate_limited(0.02)
        waited = await lim.acquire({"weight": 1}, Priority.CANCEL)
        assert waited >= 0.019  # held until Retry-After (0.02 s), not sent at once
        lim.rate_limited(60.0, banned=True)
        pending = asyncio.create_task(lim.acquire({"weight": 1}))
        await asyncio.sleep(0)
        lim.close()
        with pytest.raises(LimiterClosedError):
            await pending
        with pytest.raises(LimiterClosedError):
            await lim.acquire({"weight": 1})
        return lim.stats

    stats = run(go())
    assert (stats.rate_limited, stats.banned, stats.queued) == (1, 1, 0)


# ------------------------------------------------------------------ in flight, against the venue's clock
def test_a_request_counts_from_admission_until_a_window_after_its_answer():
    """The venue counts a request when it arrives, somewhere between our admission and its
    answer: so it leaves our window a full window after the answer, not after the admission."""
    c = core()
    assert c.pass_now({"weight": 10}, 0.0, tracked=True)
    late = c.submit({"weight": 1}, Priority.QUERY, 1.0)
    assert c.admit(30.0) == ([], None)  # still on the wire: no time can be promised yet
    c.finish({"weight": 10}, 5.0)  # answered at t=5
    assert c.admit(5.0) == ([], 65.0)
    assert c.admit(64.999)[0] == []
    assert seqs(c.admit(65.0)[0]) == [late.seq]


def test_an_unanswered_request_may_still_arrive_later_and_one_never_sent_costs_nothing():
    c = LimiterCore([WEIGHT], unanswered_s=2.0)
    assert c.pass_now({"weight": 6}, 0.0, tracked=True)
    assert c.pass_now({"weight": 4}, 0.0, tracked=True)
    c.finish({"weight": 6}, 5.0, answered=False)  # timed out at 5: it may arrive up to 7
    c.finish({"weight": 4}, 5.0, sent=False)  # never left: its weight is free at once
    assert c.stats.used["weight"] == 6 and c.stats.unanswered == 1
    waiter = c.submit({"weight": 5}, Priority.QUERY, 5.0)
    assert c.admit(5.0) == ([], 67.0)
    assert seqs(c.admit(67.0)[0]) == [waiter.seq]


def test_a_request_given_up_on_keeps_its_slot_while_it_may_still_land():
    """A timeout frees nothing on the wire: the request may still reach the venue, and one sent
    beside it would land inside the Retry-After of a 429 given to the first. Its slot is free
    `unanswered_s` after we gave up; an answered or never-sent request frees it at once."""
    c = LimiterCore([Pool("weight", 100, 60.0)], max_in_flight=1, unanswered_s=2.0)
    assert c.pass_now({"weight": 1}, 0.0, tracked=True)
    c.finish({"weight": 1}, 0.5, answered=False)  # gave up at 0.5: it may land until 2.5
    assert c.in_flight == 0 and not c.pass_now({"weight": 1}, 1.0, tracked=True)
    assert "1 given up on that may still land" in c.holding_back({"weight": 1}, 1.0, tracked=True)
    assert c.pass_now({"weight": 1}, 1.0), "work that holds no slot is not held back"
    waiter = c.submit({"weight": 1}, Priority.CANCEL, 1.0, tracked=True)
    assert c.admit(1.0) == ([], 2.5)  # a time to look again, though no answer is awaited
    assert seqs(c.admit(2.5)[0]) == [waiter.seq]
    c.finish({"weight": 1}, 2.6)  # answered: the slot is free at once
    assert c.pass_now({"weight": 1}, 2.6, tracked=True)
    c.finish({"weight": 1}, 2.7, sent=False)  # never left: free at once too
    assert c.pass_now({"weight": 1}, 2.7, tracked=True)
    # without a cap nothing is held for it
    free = LimiterCore([Pool("weight", 100, 60.0)], unanswered_s=2.0)
    assert free.pass_now({"weight": 1}, 0.0, tracked=True)
    free.finish({"weight": 1}, 0.1, answered=False)
    assert free.pass_now({"weight": 1}, 0.2, tracked=True)


def test_at_most_max_in_flight_on_the_wire_and_a_free_slot_goes_by_priority():
    c = LimiterCore([Pool("weight", 100, 60.0)], max_in_flight=2)
    assert c.pass_now({"weight": 1}, 0.0, tracked=True)
    assert c.pass_now({"weight": 1}, 0.0, tracked=True)
    assert not c.pass_now({"weight": 1}, 0.0, tracked=True), "both slots are taken"
    q = c.submit({"weight": 1}, Priority.QUERY, 0.0, tracked=True)
    cancel = c.submit({"weight": 1}, Priority.CANCEL, 0.1, tracked=True)
    untracked = c.submit({"weight": 1}, Priority.QUERY, 0.2)
    assert seqs(c.admit(0.2)[0]) == [untracked.seq], "work that holds no slot is not held back"
    c.finish({"weight": 1}, 0.3)
    assert seqs(c.admit(0.3)[0]) == [cancel.seq]
    c.finish({"weight": 1}, 0.4)
    assert seqs(c.admit(0.4)[0]) == [q.seq]
    assert c.stats.max_in_flight == 2 and c.in_flight == 2
    with pytest.raises(ValueError, match="max_in_flight"):
        LimiterCore([WEIGHT], max_in_flight=0)


def test_after_a_429_nothing_goes_until_retry_after_then_one_at_a_time_until_a_success():
    c = LimiterCore([Pool("weight", 100, 60.0)], max_in_flight=4)
    c.rate_limited(0.0, 1.0)
    assert not c.pass_now({"weight": 1}, 0.5, tracked=True)
    assert c.pass_now({"weight": 1}, 1.0, tracked=True)
    assert not c.pass_now({"weight": 1}, 1.0, tracked=True), "probing: one at a time"
    c.finish({"weight": 1}, 1.1)
    c.succeeded()
    assert all(c.pass_now({"weight": 1}, 1.2, tracked=True) for _ in range(4))


def test_headroom_keeps_a_fraction_of_every_limit_unused():
    c = LimiterCore([Pool("weight", 6000, 60.0), Pool("orders", 10, 10.0)], headroom=0.05)
    assert c.stats.limits == {"weight": 5700, "orders": 10}
    assert c.pass_now({"weight": 5700}, 0.0)
    assert not c.pass_now({"weight": 1}, 0.0)
    with pytest.raises(CostError, match="usable limit 5700"):
        c.submit({"weight": 5701}, Priority.QUERY, 0.0)
    with pytest.raises(ValueError, match="headroom"):
        LimiterCore([WEIGHT], headroom=1.0)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(list(Priority)), st.integers(0, 30),
                          st.integers(0, 40), st.integers(0, 40), st.booleans()), min_size=1, max_size=60),
       st.integers(1, 4))
def test_the_venue_never_counts_more_than_the_limit_whatever_the_latency(requests, cap):
    """Requests arrive at the venue some time after admission and are answered some time after
    that (or never: a timeout). Whatever those delays, no interval of the window's length at the
    venue, sliding or aligned on its clock at any offset, holds more than the limit: the venue
    never sees a reason for a 429."""
    pool = Pool("weight", 10, 6.0)
    c = LimiterCore([pool], max_in_flight=cap, unanswered_s=3.0, headroom=0.0)
    now = 0.0
    arrivals: list[tuple[float, int]] = []
    answers: list[tuple[float, dict, bool]] = []  # (when, cost, answered)
    pending: dict[int, tuple[dict, float, float, bool]] = {}  # seq -> (cost, to arrival, to answer, answered)

    def went(cost: dict, at: float, to_arrival: float, to_answer: float, answered: bool) -> None:
        arrivals.append((at + to_arrival, cost["weight"]))
        # A timeout is given up on before the (unseen) arrival may even have happened.
        answers.append((at + to_arrival + to_answer if answered else at + to_answer / 2, cost, answered))

    def step(until: float) -> float:
        nonlocal now
        while True:
            admitted, wake = c.admit(now)
            for t in admitted:
                went(t.cost, now, *pending.pop(t.seq)[1:])
            answers.sort(key=lambda a: a[0])
            nxt = min([a[0] for a in answers[:1]] + ([wake] if wake is not None else []) + [until])
            if nxt >= until and not (answers and answers[0][0] <= until):
                now = until
                return now
            now = max(now, nxt)
            while answers and answers[0][0] <= now:
                _, cost, answered = answers.pop(0)
                c.finish(cost, now, answered=answered)

    for weight, prio, gap, d1, d2, answered in requests:
        step(now + gap / 10)
        cost = {"weight": weight}
        spec = (d1 / 10, d2 / 10, answered)
        if c.pass_now(cost, now, tracked=True):
            went(cost, now, *spec)
        else:
            t = c.submit(cost, prio, now, tracked=True)
            pending[t.seq] = (cost, *spec)
    step(now + 1000.0)
    assert not pending and c.in_flight == 0, "every request went out in the end"
    arrivals.sort()
    times = [t for t, _ in arrivals]
    for start in times:  # sliding intervals starting at each arrival
        assert sum(w for t, w in arrivals if start <= t < start + pool.window_s) <= pool.limit
    for offset in (0.0, 1.3, 2.9, 4.4):  # fixed intervals of several alignments
        counts: dict[int, int] = {}
        for t, w in arrivals:
            k = int((t - offset) // pool.window_s)
            counts[k] = counts.get(k, 0) + w
        assert max(counts.values()) <= pool.limit


def test_tracked_requests_on_the_event_loop_hold_a_slot_until_they_finish():
    async def go():
        lim = RateLimiter([Pool("weight", 100, 60.0)], max_in_flight=1)
        order: list[str] = []

        async def req(name: str, prio: Priority) -> None:
            async with lim.request({"weight": 1}, prio):
                order.append(f"{name} out")
                await asyncio.sleep(0.01)
                order.append(f"{name} back")

        await asyncio.gather(req("a", Priority.QUERY), req("b", Priority.QUERY), req("c", Priority.CANCEL))
        # Never two on the wire; the cancel takes the first free slot.
        assert order == ["a out", "a back", "c out", "c back", "b out", "b back"]
        assert lim.stats.max_in_flight == 1 and lim.stats.in_flight == 0

        # A request given up in the queue raises RequestNotSentError and uses nothing.
        await lim.start({"weight": 1})
        with pytest.raises(RequestNotSentError, match="1 in flight, the cap.*not sent"):
            await lim.start({"weight": 1}, timeout=0.01)
        assert lim.stats.queued == 0
        lim.finish({"weight": 1})
        # ... and says what held it back: here a full weight pool.
        full = RateLimiter([Pool("weight", 10, 60.0)])
        await full.acquire({"weight": 8})
        with pytest.raises(RequestNotSentError, match=r"weight 8\+5 over 10 "):
            await full.acquire({"weight": 5}, timeout=0.01)

        # A request given up on holds its slot `unanswered_s` more; the waiter goes then, woken
        # by the limiter's own timer (no answer comes to wake it).
        late = RateLimiter([Pool("weight", 100, 60.0)], max_in_flight=1, unanswered_s=0.05)
        await late.start({"weight": 1})
        late.finish({"weight": 1}, answered=False)
        waiter = asyncio.create_task(late.start({"weight": 1}))
        await asyncio.sleep(0)
        assert not waiter.done() and late.stats.queued == 1  # held back: the slot is not free yet
        await asyncio.wait_for(waiter, 2.0)
        late.finish({"weight": 1})

        # Cancelled between admission and sending: the slot comes back.
        await lim.start({"weight": 1})
        waiter = asyncio.create_task(lim.start({"weight": 1}))
        await asyncio.sleep(0)
        lim.finish({"weight": 1})  # admits the waiter...
        waiter.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert lim.stats.in_flight == 0
        await asyncio.wait_for(lim.start({"weight": 1}), 1.0)  # the slot is free
        lim.finish({"weight": 1})
        with pytest.raises(RateLimitError, match="without a tracked request"):
            lim.finish({"weight": 1})

    run(go())
