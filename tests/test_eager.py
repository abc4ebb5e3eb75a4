"""Eager coroutines, the flight that uses them, and the tick's fast paths: a coroutine that never
waits runs to the end in the caller; one that waits carries on as a task, exactly as before."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses

import pytest

from mixmaker import eager
from mixmaker.strategy.single_flight import SingleFlight
from mixmaker.strategy.decision import Decision, Proposal, Quote
from mixmaker.frozen import quick_init
from mixmaker.orders import Side
from mixmaker.strategy.market import Balances, MarketSnapshot
from strategy_helpers import in_loop


async def _now(x):
    return x * 2


async def _fails():
    raise ValueError("no")


async def _waits(ev: asyncio.Event, log: list):
    log.append("before")
    await ev.wait()
    log.append("after")
    return "done"


def test_a_coroutine_that_never_waits_finishes_in_the_caller_without_a_loop():
    s = eager.start(_now(21))
    assert s.done and s.value() == 42 and s.task is None
    f = eager.start(_fails())
    assert f.done and isinstance(f.error, ValueError)
    with pytest.raises(ValueError):
        f.value()


@in_loop
async def test_a_coroutine_that_waits_carries_on_as_a_task():
    ev, log = asyncio.Event(), []
    s = eager.start(_waits(ev, log))
    assert not s.done and log == ["before"]  # ran up to its first wait, in the caller
    ev.set()
    assert await s.wait() == "done" and log == ["before", "after"]


OWNER: contextvars.ContextVar[str | None] = contextvars.ContextVar("test_eager_owner", default=None)


async def _owned(ev: asyncio.Event, seen: list):
    token = OWNER.set("pool-a")
    try:
        await ev.wait()
        seen.append(OWNER.get())
    finally:
        OWNER.reset(token)  # after a wait: must find its token in the same context
    return "done"


@in_loop
async def test_a_context_variable_set_across_a_wait_stays_the_coroutines_own():
    ev, seen = asyncio.Event(), []
    s = eager.start(_owned(ev, seen))
    assert OWNER.get() is None  # nothing leaks into the caller, as with a task
    ev.set()
    assert await s.wait() == "done" and seen == ["pool-a"] and OWNER.get() is None


@in_loop
async def test_cancelling_the_task_reaches_the_coroutine():
    ev, log = asyncio.Event(), []
    s = eager.start(_waits(ev, log))
    s.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await s.task
    assert log == ["before"]


@in_loop
async def test_gather_keeps_order_and_raises_the_first_error():
    assert await eager.gather(_now(1), _now(2)) == [2, 4]
    ev = asyncio.Event()
    ev.set()
    assert await eager.gather(_now(1), _waits(ev, [])) == [2, "done"]
    with pytest.raises(ValueError):
        await eager.gather(_now(1), _fails())


@in_loop
async def test_the_flight_is_busy_only_while_its_action_waits():
    flight = SingleFlight("test")
    assert flight.start(lambda: _now(1)) and not flight.busy  # finished at once
    assert flight.start(lambda: _fails()) and flight.errors == 1 and "ValueError" in flight.last_error
    ev, log = asyncio.Event(), []
    assert flight.start(lambda: _waits(ev, log)) and flight.busy
    assert not flight.start(lambda: _now(1)) and flight.skipped == 1
    ev.set()
    await flight.idle()
    assert not flight.busy and log == ["before", "after"]


def test_quick_init_keeps_frozen_dataclasses_frozen_and_equal():
    b = Balances(1, 2, 3, 4)
    assert b == Balances(base_total=1, quote_total=2, base_free=3, quote_free=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.base_free = 0
    snap = MarketSnapshot(5, None, None, b)
    assert snap.own_orders == () and snap.cancels_in_flight == 0 and snap.trades == ()
    d = Decision(reason="x")
    assert d.hold == frozenset() and d.proposal is None and d == Decision.idle("x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.reason = "y"

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    with pytest.raises(TypeError, match="slots"):
        quick_init(NoSlots)


def test_proposal_from_lists_builds_quotes():
    p = Proposal.from_lists([10, 9], [1, 2], [11], [3])
    assert p.buys == (Quote(Side.BUY, 0, 10, 1), Quote(Side.BUY, 1, 9, 2)) and p.sells == (Quote(Side.SELL, 0, 11, 3),)
    assert isinstance(p.buys[0], Quote) and p.buys[0].price == 10 and len(p) == 3


def test_a_reason_is_a_category_and_a_detail_that_reads_as_before():
    import pickle

    from mixmaker.strategy import IdleKind, Reason
    from mixmaker.strategy.reason import reason_category

    r = Reason(IdleKind.BOOK_DESYNCED, "pu 7 != previous u 5")
    assert r == "book DESYNCED: pu 7 != previous u 5" and r.kind is IdleKind.BOOK_DESYNCED
    assert reason_category(r) == "book DESYNCED" and reason_category("a: b: c") == "a"
    assert Reason(IdleKind.WARMING_UP) == "warming up" and f"{Reason(IdleKind.WARMING_UP)}" == "warming up"
    back = pickle.loads(pickle.dumps(r))
    assert back == r and back.kind is r.kind and back.detail == r.detail
