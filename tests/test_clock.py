"""The Cython clock: tick order, exact backtest time, hooks, error isolation, realtime
alignment and missed ticks. Realtime tests use 20-50 ms ticks and stay well under 2 s."""

import asyncio
import logging
import time
from decimal import Decimal

import pytest

from mixmaker.clock import Clock, ClockError, ClockMode, IteratorFailure, TimeIterator, tick_size_to_ns

S = 1_000_000_000
MS = 1_000_000


class Recorder(TimeIterator):
    """Appends (name, hook, timestamp) to a shared log."""

    def __init__(self, name, log):
        self.name = name
        self.log = log

    def __repr__(self):
        return f"Recorder({self.name})"

    def start(self, clock, now_ns):
        self.log.append((self.name, "start", now_ns))

    def tick(self, now_ns):
        self.log.append((self.name, "tick", now_ns))

    def stop(self, clock):
        self.log.append((self.name, "stop", self.current_timestamp_ns))


class Raiser(TimeIterator):
    def __init__(self, hook="tick"):
        self.hook = hook

    def __repr__(self):
        return f"Raiser({self.hook})"

    def start(self, clock, now_ns):
        if self.hook == "start":
            raise RuntimeError("start failed")

    def tick(self, now_ns):
        raise RuntimeError(f"bad tick {now_ns}")

    def stop(self, clock):
        if self.hook == "stop":
            raise RuntimeError("stop failed")


def ticks_of(log, name=None):
    return [ts for n, hook, ts in log if hook == "tick" and (name is None or n == name)]


# ---- backtest ---------------------------------------------------------------------------


def test_iterators_tick_in_the_order_they_were_added():
    log = []
    clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=0, end_ns=3 * S)
    for name in ("data", "metrics", "strategy"):
        clock.add_iterator(Recorder(name, log))
    clock.backtest()
    tick_names = [n for n, hook, _ in log if hook == "tick"]
    assert tick_names == ["data", "metrics", "strategy"] * 3
    assert [it.name for it in clock.iterators] == ["data", "metrics", "strategy"]


def test_backtest_ticks_are_exact_multiples_of_the_tick_size():
    log = []
    start = 1_700_000_000 * S + 123  # not aligned: a backtest ticks from its start
    clock = Clock(ClockMode.BACKTEST, tick_size="0.25", start_ns=start, end_ns=start + 10 * 250 * MS + 1)
    it = Recorder("it", log)
    clock.add_iterator(it)
    clock.backtest()
    assert ticks_of(log) == [start + k * 250 * MS for k in range(1, 11)]
    assert clock.ticks == 10
    assert clock.missed_ticks == 0
    assert clock.current_timestamp_ns == start + 10 * 250 * MS
    assert it.current_timestamp_ns == start + 10 * 250 * MS


def test_backtest_til_continues_where_it_stopped():
    log = []
    clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=10 * S)
    clock.add_iterator(Recorder("it", log))
    clock.backtest_til(12 * S)
    clock.backtest_til(12 * S)  # nothing left to tick
    clock.backtest_til(15 * S + S // 2)
    assert ticks_of(log) == [11 * S, 12 * S, 13 * S, 14 * S, 15 * S]
    assert [hook for _, hook, _ in log].count("start") == 1
    assert clock.started
    clock.stop()
    assert log[-1] == ("it", "stop", 15 * S)


def test_boundaries_passed_count_as_ticks_without_calling_the_iterators():
    log = []
    clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=10 * S)
    it = Recorder("it", log)
    clock.add_iterator(it)
    clock.backtest_til(11 * S)
    assert clock.backtest_pass_til(14 * S + S // 2) == 3  # 12, 13 and 14 pass uncalled
    assert (clock.ticks, clock.current_timestamp_ns, it.current_timestamp_ns) == (4, 14 * S, 14 * S)
    assert clock.backtest_pass_til(14 * S) == 0  # nothing after the current time
    clock.backtest_til(16 * S)  # ticking goes on from the last boundary passed
    assert ticks_of(log) == [11 * S, 15 * S, 16 * S] and clock.ticks == 6
    realtime = Clock(ClockMode.REALTIME, tick_size=1)
    with pytest.raises(ClockError, match="BACKTEST"):
        realtime.backtest_pass_til(20 * S)


def test_float_and_decimal_tick_sizes_do_not_drift():
    log = []
    clock = Clock(ClockMode.BACKTEST, tick_size=0.1, start_ns=0)
    clock.add_iterator(Recorder("it", log))
    clock.backtest_til(1000 * S)
    assert clock.ticks == 10_000
    assert ticks_of(log)[-1] == 1000 * S
    assert Clock(tick_size=Decimal("0.1")).tick_size_ns == 100 * MS


def test_start_and_stop_hooks_run_once_in_order_and_stop_in_reverse():
    log = []
    clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=5 * S, end_ns=7 * S)
    a, b = Recorder("a", log), Recorder("b", log)
    clock.add_iterator(a)
    clock.add_iterator(b)
    assert a.current_timestamp_ns is None and a.clock is None
    clock.backtest()
    assert log[:2] == [("a", "start", 5 * S), ("b", "start", 5 * S)]
    # Strategies (added last) stop before the data they read.
    assert log[-2:] == [("b", "stop", 7 * S), ("a", "stop", 7 * S)]
    assert len(log) == 2 + 4 + 2
    assert a.clock is None and not clock.started
    clock.stop()  # already stopped: no second stop hook
    assert len(log) == 8


def test_context_manager_starts_and_stops():
    log = []
    clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=0)
    it = Recorder("it", log)
    clock.add_iterator(it)
    with clock:
        assert it.clock is clock
        clock.backtest_til(2 * S)
    assert log == [("it", "start", 0), ("it", "tick", S), ("it", "tick", 2 * S), ("it", "stop", 2 * S)]
    assert it.clock is None


def test_base_and_partial_subclasses_track_the_timestamp():
    class OnlyStart(TimeIterator):
        def start(self, clock, now_ns):
            self.started_at = now_ns

    base, partial = TimeIterator(), OnlyStart()
    clock = Clock(ClockMode.BACKTEST, tick_size=2, start_ns=0, end_ns=6 * S)
    clock.add_iterator(base)
    clock.add_iterator(partial)
    clock.backtest()
    assert partial.started_at == 0
    assert base.current_timestamp_ns == partial.current_timestamp_ns == 6 * S
    assert clock.ticks == 3


def test_tick_set_on_the_instance_is_used():
    seen = []
    it = TimeIterator.__new__(type("Dyn", (TimeIterator,), {}))
    it.tick = seen.append
    clock = Clock(ClockMode.BACKTEST, start_ns=0, end_ns=2 * S)
    clock.add_iterator(it)
    clock.backtest()
    assert seen == [S, 2 * S]


def test_an_iterator_raising_does_not_stop_the_others(caplog):
    log = []
    clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=0, end_ns=3 * S)
    bad = Raiser()
    clock.add_iterator(Recorder("before", log))
    clock.add_iterator(bad)
    clock.add_iterator(Recorder("after", log))
    with caplog.at_level(logging.ERROR, logger="mixmaker.clock"):
        clock.backtest()
    assert ticks_of(log, "before") == ticks_of(log, "after") == [S, 2 * S, 3 * S]
    assert clock.iterator_errors == 3
    assert clock.ticks == 3
    failure = clock.last_error
    assert isinstance(failure, IteratorFailure)
    assert failure.iterator is bad and failure.hook == "tick" and failure.timestamp_ns == 3 * S
    assert isinstance(failure.error, RuntimeError) and str(failure.error) == f"bad tick {3 * S}"
    records = [r for r in caplog.records if r.name == "mixmaker.clock"]
    assert len(records) == 3
    assert "Raiser(tick)" in records[0].getMessage() and str(S) in records[0].getMessage()
    assert records[0].exc_info[0] is RuntimeError


def test_errors_in_start_and_stop_hooks_are_counted_and_isolated():
    log = []
    clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=0, end_ns=S)
    clock.add_iterator(Raiser("start"))
    clock.add_iterator(Raiser("stop"))
    clock.add_iterator(Recorder("ok", log))
    clock.backtest()
    assert [hook for _, hook, _ in log] == ["start", "tick", "stop"]
    # one start failure, two tick failures, one stop failure
    assert clock.iterator_errors == 4
    assert clock.last_error.hook == "stop"


def test_stop_inside_a_tick_finishes_that_tick_then_stops():
    log = []

    class Stopper(TimeIterator):
        def tick(self, now_ns):
            if now_ns == 3 * S:
                self.clock.stop()

    clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=0, end_ns=100 * S)
    clock.add_iterator(Stopper())
    clock.add_iterator(Recorder("after", log))
    clock.backtest()
    assert ticks_of(log) == [S, 2 * S, 3 * S]
    assert log[-1] == ("after", "stop", 3 * S)
    assert not clock.running and not clock.started


def test_added_in_a_tick_ticks_next_tick_removed_stops_at_once():
    log = []
    late = Recorder("late", log)
    first = Recorder("first", log)

    class Changer(TimeIterator):
        def tick(self, now_ns):
            if now_ns == 2 * S:
                self.clock.add_iterator(late)
                self.clock.remove_iterator(first)

    clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=0, end_ns=4 * S)
    clock.add_iterator(Changer())
    clock.add_iterator(first)
    clock.backtest()
    # first is stopped on removal and never ticks again, not even later in the tick in progress;
    # late starts at 2 s and first ticks on the next tick.
    assert ticks_of(log, "first") == [S]
    assert ticks_of(log, "late") == [3 * S, 4 * S]
    assert log.index(("first", "stop", S)) < log.index(("late", "tick", 3 * S))
    assert ("late", "start", 2 * S) in log
    assert first.clock is None


def test_membership_errors():
    clock = Clock()
    it = TimeIterator()
    clock.add_iterator(it)
    with pytest.raises(ValueError, match="already on this clock"):
        clock.add_iterator(it)
    with pytest.raises(ValueError, match="not on this clock"):
        clock.remove_iterator(TimeIterator())
    with pytest.raises(TypeError):
        clock.add_iterator(object())
    with pytest.raises(TypeError):
        clock.add_iterator(None)
    with Clock() as other:
        busy = TimeIterator()
        other.add_iterator(busy)
        with pytest.raises(ValueError, match="another clock"):
            clock.add_iterator(busy)
    clock.remove_iterator(it)
    assert clock.iterators == ()


# ---- configuration errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    "tick_size, ns",
    [(1, S), (0.1, 100 * MS), (0.02, 20 * MS), ("0.001", MS), (Decimal("1e-9"), 1), ("60", 60 * S)],
)
def test_tick_size_converts_exactly(tick_size, ns):
    assert tick_size_to_ns(tick_size) == ns
    assert Clock(tick_size=tick_size).tick_size_ns == ns


@pytest.mark.parametrize(
    "tick_size, match",
    [
        (0, "positive"),
        (-1, "positive"),
        ("0", "positive"),
        (Decimal("-0.5"), "positive"),
        (float("nan"), "positive"),
        (float("inf"), "positive"),
        ("abc", "not a number"),
        ("1e-10", "finer than one nanosecond"),
        (10**10, "does not fit"),
    ],
)
def test_bad_tick_size_is_a_value_error(tick_size, match):
    with pytest.raises(ValueError, match=match):
        Clock(tick_size=tick_size)


@pytest.mark.parametrize("tick_size", [None, True, [1], b"1"])
def test_tick_size_of_the_wrong_type_is_a_type_error(tick_size):
    with pytest.raises(TypeError, match="tick_size"):
        Clock(tick_size=tick_size)


def test_mode_and_time_errors():
    with pytest.raises(ValueError, match="ClockMode"):
        Clock(mode=7)
    with pytest.raises(ValueError, match="start_ns applies to BACKTEST"):
        Clock(ClockMode.REALTIME, start_ns=0)
    with pytest.raises(ValueError, match="before start_ns"):
        Clock(ClockMode.BACKTEST, start_ns=10, end_ns=5)
    with pytest.raises(ValueError, match="start_ns"):
        Clock(ClockMode.BACKTEST, start_ns=-1)
    with pytest.raises(TypeError, match="end_ns"):
        Clock(ClockMode.BACKTEST, end_ns=1.5)
    with pytest.raises(ValueError, match="end_ns"):
        Clock(ClockMode.BACKTEST).backtest()
    with pytest.raises(ClockError, match="BACKTEST"):
        Clock(ClockMode.REALTIME).backtest_til(S)
    with pytest.raises(ClockError, match="REALTIME"):
        asyncio.run(Clock(ClockMode.BACKTEST).run())


def test_a_running_clock_cannot_be_run_again():
    errors = []

    class Reenter(TimeIterator):
        def tick(self, now_ns):
            try:
                self.clock.backtest_til(now_ns + 10 * S)
            except ClockError as exc:
                errors.append(exc)

    clock = Clock(ClockMode.BACKTEST, start_ns=0, end_ns=S)
    clock.add_iterator(Reenter())
    clock.backtest()
    assert len(errors) == 1 and "already running" in str(errors[0])
    assert clock.ticks == 1


# ---- realtime ---------------------------------------------------------------------------


def test_realtime_ticks_align_to_the_wall_clock_and_never_fire_early():
    step = 20 * MS
    seen = []  # (tick timestamp, wall time when ticked)

    class Wall(TimeIterator):
        def tick(self, now_ns):
            seen.append((now_ns, time.time_ns()))

    clock = Clock(ClockMode.REALTIME, tick_size="0.02")
    it = Wall()
    clock.add_iterator(it)
    assert clock.current_timestamp_ns is None and it.current_timestamp_ns is None
    end = time.time_ns() + 8 * step
    asyncio.run(clock.run_til(end))
    stamps = [ts for ts, _ in seen]
    assert len(stamps) >= 3
    assert all(ts % step == 0 for ts in stamps)
    assert all(wall >= ts for ts, wall in seen)
    assert all(ts <= end for ts in stamps)
    assert stamps == sorted(set(stamps))
    # Every boundary between the first and the last tick was ticked or counted as missed.
    assert (stamps[-1] - stamps[0]) // step + 1 == clock.ticks + clock.missed_ticks
    assert clock.started and not clock.running  # run_til leaves the clock started
    clock.stop()
    assert it.clock is None


def test_realtime_start_is_the_last_passed_boundary():
    fake_now = 1_700_000_000 * S + 37 * MS
    log = []
    clock = Clock(ClockMode.REALTIME, tick_size="0.05", time_fn=lambda: fake_now)
    clock.add_iterator(Recorder("it", log))
    clock.start()
    assert log == [("it", "start", 1_700_000_000 * S)]
    assert clock.current_timestamp_ns == 1_700_000_000 * S


def test_a_stalled_loop_skips_and_counts_missed_ticks():
    # The wall clock jumps 3 ticks forward inside the second tick (a simulated stall):
    # the next tick lands on the next boundary after the stall, with no burst in between.
    step = 20 * MS
    offset = 0
    stamps = []

    def fake_time():
        return time.time_ns() + offset

    class Staller(TimeIterator):
        def tick(self, now_ns):
            nonlocal offset
            stamps.append(now_ns)
            if len(stamps) == 2:
                offset += 3 * step
            if len(stamps) == 4:
                self.clock.stop()

    clock = Clock(ClockMode.REALTIME, tick_size=0.02, time_fn=fake_time)
    clock.add_iterator(Staller())
    asyncio.run(clock.run())
    t1, t2, t3, t4 = stamps
    assert t2 - t1 == step
    assert t3 - t2 == 4 * step  # t2+1..t2+3 were skipped
    assert t4 - t3 == step
    assert clock.missed_ticks == 3
    assert clock.ticks == 4
    assert not clock.started


def test_a_slow_iterator_causes_skipped_not_burst_ticks():
    step = 50 * MS
    stamps = []

    class Slow(TimeIterator):
        def tick(self, now_ns):
            stamps.append(now_ns)
            if len(stamps) == 1:
                time.sleep(2.5 * step / S)  # blocks the event loop for 2.5 ticks
            if len(stamps) == 3:
                self.clock.stop()

    clock = Clock(ClockMode.REALTIME, tick_size=0.05)
    clock.add_iterator(Slow())
    asyncio.run(clock.run())
    gaps = [(b - a) // step for a, b in zip(stamps, stamps[1:])]
    assert gaps[0] >= 3  # nothing ticked for the boundaries that passed during the stall
    assert clock.missed_ticks == sum(g - 1 for g in gaps) >= 2


def test_the_wall_clock_stepping_back_never_moves_ticks_back():
    step = 20 * MS
    offset = 0
    stamps = []

    class Stepper(TimeIterator):
        def tick(self, now_ns):
            nonlocal offset
            stamps.append(now_ns)
            if len(stamps) == 2:
                offset -= 3 * step
            if len(stamps) == 4:
                self.clock.stop()

    clock = Clock(ClockMode.REALTIME, tick_size=0.02, time_fn=lambda: time.time_ns() + offset)
    clock.add_iterator(Stepper())
    asyncio.run(clock.run())
    assert all(b > a for a, b in zip(stamps, stamps[1:]))


def test_realtime_errors_are_isolated():
    log = []
    clock = Clock(ClockMode.REALTIME, tick_size=0.02)
    clock.add_iterator(Raiser())
    clock.add_iterator(Recorder("ok", log))

    async def main():
        await clock.run_til(time.time_ns() + 3 * 20 * MS)

    asyncio.run(main())
    assert clock.ticks >= 1
    assert len(ticks_of(log)) == clock.ticks == clock.iterator_errors


def test_cancelling_the_run_task_stops_the_iterators():
    log = []
    clock = Clock(ClockMode.REALTIME, tick_size=0.02)
    clock.add_iterator(Recorder("it", log))

    async def main():
        task = asyncio.create_task(clock.run())
        while not ticks_of(log):
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert log[-1][1] == "stop"
    assert not clock.running and not clock.started


def test_realtime_run_stops_at_end_ns():
    step = 20 * MS
    now = time.time_ns()
    end = (now // step + 3) * step
    clock = Clock(ClockMode.REALTIME, tick_size=0.02, end_ns=end)
    log = []
    clock.add_iterator(Recorder("it", log))
    asyncio.run(clock.run())
    assert ticks_of(log)[-1] <= end
    assert log[-1] == ("it", "stop", ticks_of(log)[-1])
    assert not clock.started
