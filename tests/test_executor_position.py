"""The position executor (triple barrier) and the TWAP executor over the real tracker and a
simulated venue that lets crossing orders take (fees 0, so PnL figures are round)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from mixmaker.strategy import CloseType, ExecutorStateError, RunnableStatus
from mixmaker.strategy.position_executor import PositionConfig, PositionExecutor, TripleBarrier
from mixmaker.strategy.twap_executor import TwapConfig, TwapExecutor
from mixmaker.orders import OrderState, Side
from strategy_helpers import RULES, V, Rig, in_loop

S = 1_000_000_000



def position(rig, barrier, entry=10000, side=Side.BUY, amount=1000):
    return PositionExecutor(PositionConfig("TESTUSDT", side, amount, entry, barrier), rig.tracker, RULES)


async def rig_for_takers() -> Rig:
    """A started tracker over a venue that lets crossing orders take."""
    rig = Rig(post_only=False)
    await rig.tracker.start()
    return rig


async def opened_position(barrier: TripleBarrier) -> tuple[Rig, PositionExecutor]:
    """A long of 1.0 entered at 100.00 (filled by a sell printing through it)."""
    rig = await rig_for_takers()
    ex = position(rig, barrier)
    await opened(rig, ex)
    return rig, ex


async def opened(rig, ex):
    """Tick once (the entry limit 100.00 rests), then a sell prints through it: filled."""
    await ex.tick(rig.market("99.90", "100.10", 1000))
    rig.venue.on_public_trade(9990, 5000, buyer_is_maker=True)
    await rig.deliver()
    assert ex.open_filled == 1000 and ex.status == RunnableStatus.RUNNING


@in_loop
async def test_take_profit():
    rig, ex = await opened_position(TripleBarrier(stop_loss=Fraction("0.01"), take_profit=Fraction("0.015")))
    await ex.tick(rig.market("101.40", "101.50", 1001))  # +1.4 %: below the 1.5 % barrier
    assert ex.status == RunnableStatus.RUNNING
    await ex.tick(rig.market("102.00", "102.10", 1002))  # +2 %: close into the 102.00 bid
    assert (ex.status, ex.close_type) == (RunnableStatus.TERMINATED, CloseType.TAKE_PROFIT)
    rep = ex.report()
    assert rep["closed"] == 1000 and rep["exit_value"] == 10200 * 1000 and rep["realised_pnl"] == 2 * V


@in_loop
async def test_stop_loss_and_a_rejected_close_is_retried():
    rig, ex = await opened_position(TripleBarrier(stop_loss=Fraction("0.01")))
    rig.venue.reject_next_creates = 1
    await ex.tick(rig.market("98.90", "99.00", 1001))  # -1.1 %
    assert (ex.status, ex.close_type) == (RunnableStatus.SHUTTING_DOWN, CloseType.STOP_LOSS)
    await ex.tick(rig.market("98.90", "99.00", 1002))
    assert ex.status == RunnableStatus.TERMINATED and ex.report()["realised_pnl"] == -Fraction(110 * 1000)
    assert len(ex.close_ids) == 2 and ex.retries == 2


@in_loop
async def test_trailing_stop_ratchets_then_fires():
    rig, ex = await opened_position(TripleBarrier(trailing_activation=Fraction("0.01"), trailing_delta=Fraction("0.005")))
    await ex.tick(rig.market("101.50", "101.60", 1001))  # +1.5 %: armed at 1.0 %
    assert ex.trailing_trigger == Fraction("0.01")
    await ex.tick(rig.market("102.00", "102.10", 1002))  # +2 %: trigger 1.5 %
    assert ex.trailing_trigger == Fraction("0.015") and ex.status == RunnableStatus.RUNNING
    await ex.tick(rig.market("101.40", "101.50", 1003))  # +1.4 % < 1.5 %
    assert ex.close_type == CloseType.TRAILING_STOP and ex.status == RunnableStatus.TERMINATED


@in_loop
async def test_time_limit_with_and_without_a_position():
    rig, ex = await opened_position(TripleBarrier(time_limit_ns=10 * S))
    await ex.tick(rig.market("100.00", "100.10", 1005))
    assert ex.status == RunnableStatus.RUNNING
    await ex.tick(rig.market("100.00", "100.10", 1010))
    assert ex.close_type == CloseType.TIME_LIMIT and ex.status == RunnableStatus.TERMINATED
    assert ex.report()["realised_pnl"] == 0
    idle = position(rig, TripleBarrier(time_limit_ns=10 * S), entry=9000)  # never fills
    await idle.tick(rig.market("100.00", "100.10", 2000))
    await idle.tick(rig.market("100.00", "100.10", 2010))
    assert idle.close_type == CloseType.TIME_LIMIT and idle.status == RunnableStatus.TERMINATED
    assert rig.tracker.get(idle.open_id).state == OrderState.CANCELED and idle.close_ids == []


@in_loop
async def test_failed_entry_early_stop_and_bad_amount():
    rig = await rig_for_takers()
    rig.venue.reject_next_creates = 1
    ex = position(rig, TripleBarrier())
    await ex.tick(rig.market("99.90", "100.10", 1000))
    assert (ex.status, ex.close_type) == (RunnableStatus.TERMINATED, CloseType.FAILED)
    held = position(rig, TripleBarrier())
    await opened(rig, held)
    await held.stop(rig.market("99.90", "100.10", 1001), keep_position=True)
    assert held.close_type == CloseType.POSITION_HOLD and held.close_ids == []
    with pytest.raises(ExecutorStateError):
        position(rig, TripleBarrier(), amount=0)


@in_loop
async def test_short_position_take_profit():
    rig = await rig_for_takers()
    ex = position(rig, TripleBarrier(take_profit=Fraction("0.01")), entry=None, side=Side.SELL)
    await ex.tick(rig.market("100.00", "100.10", 1000))  # marketable: sells into the 100.00 bid
    assert ex.open_filled == 1000
    await ex.tick(rig.market("98.80", "98.90", 1001))  # buy back at 98.90: +1.1 %
    assert ex.close_type == CloseType.TAKE_PROFIT and ex.report()["realised_pnl"] == 110 * 1000


# ---------------------------------------------------------------- TWAP
@in_loop
async def test_twap_taker_slices_add_up_exactly():
    rig = await rig_for_takers()
    ex = TwapExecutor(TwapConfig("TESTUSDT", Side.BUY, 1000, 2 * S, 1 * S), rig.tracker, RULES)
    assert ex.slices == [333, 333, 334]
    for t in (1000, 1000.5, 1001, 1002):
        await ex.tick(rig.market("99.90", "100.10", t))
    assert ex.filled == 1000 and len(ex.orders) == 3 and ex.status == RunnableStatus.RUNNING
    await ex.tick(rig.market("99.90", "100.10", 1003))
    assert (ex.status, ex.close_type) == (RunnableStatus.TERMINATED, CloseType.COMPLETED)
    assert ex.report()["average_price"] == 10010


@in_loop
async def test_twap_maker_resubmits_old_orders_at_the_new_best():
    rig = Rig()
    await rig.tracker.start()
    cfg = TwapConfig("TESTUSDT", Side.BUY, 1000, 0, 1 * S, mode="maker", resubmission_ns=5 * S)
    ex = TwapExecutor(cfg, rig.tracker, RULES)
    await ex.tick(rig.market("99.90", "100.10", 1000))
    assert rig.tracker.get(ex.orders[0][1]).price == 9990
    await ex.tick(rig.market("100.20", "100.40", 1006))  # older than 5 s: replaced at 100.20
    assert [rig.tracker.get(c).price for _, c, _ in ex.orders] == [9990, 10020]
    assert rig.tracker.get(ex.orders[0][1]).state == OrderState.CANCELED
    await ex.stop()
    assert (ex.status, ex.close_type) == (RunnableStatus.TERMINATED, CloseType.EARLY_STOP)


@in_loop
async def test_twap_gives_up_after_repeated_rejects():
    rig = await rig_for_takers()
    rig.venue.reject_next_creates = 100
    ex = TwapExecutor(TwapConfig("TESTUSDT", Side.BUY, 1000, 0, 1 * S, max_retries=3), rig.tracker, RULES)
    for t in range(1000, 1005):
        await ex.tick(rig.market("99.90", "100.10", t))
    assert (ex.status, ex.close_type, ex.failures) == (RunnableStatus.TERMINATED, CloseType.FAILED, 3)


@in_loop
async def test_a_backtest_clock_drives_the_twap_through_executor_loop():
    from mixmaker.clock import Clock, ClockMode
    from mixmaker.strategy import MarketView
    from mixmaker.strategy.loop import ExecutorLoop

    rig = await rig_for_takers()
    rig.market("99.90", "100.10", 1000)
    sync = type("Synced", (), {})()  # a BookSync stand-in that is always synced
    from mixmaker.book import BookState

    sync.state, sync.book, sync.desync_reason = BookState.SYNCED, rig.venue.book, None
    ex = TwapExecutor(TwapConfig("TESTUSDT", Side.SELL, 900, 2 * S, 1 * S), rig.tracker, RULES)
    loop = ExecutorLoop(ex, MarketView(RULES, sync, rig.venue))
    clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=1000 * S)
    clock.add_iterator(loop)
    for t in range(1001, 1005):
        clock.backtest_til(t * S)
        await loop.idle()
    clock.stop()
    assert ex.filled == 900 and [q for q, _, _ in ex.orders] == [0, 1, 2]
    assert (ex.status, ex.close_type) == (RunnableStatus.TERMINATED, CloseType.COMPLETED)
    assert clock.iterator_errors == 0 and loop.flight.errors == 0
