# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""The clock: drives `TimeIterator`s, in the order they were added, one tick at a time.

Time is exact int64 nanoseconds since the epoch. A REALTIME clock ticks on wall-clock
boundaries (multiples of the tick size) and skips, and counts, boundaries it could not make;
a BACKTEST clock ticks as fast as its iterators allow. An exception in one iterator is logged,
counted and kept as `last_error`; the other iterators still get the tick.

(The declarations live here rather than in a `clock.pxd`: build.rs compiles this file as
`mixmaker._clock`, and Cython only pairs a pxd with that name when it sits at
`<include dir>/mixmaker/_clock.pxd`; a sibling `clock.pxd` would be silently ignored.)
"""

import asyncio
import enum
import logging
import operator
import time
from collections import namedtuple
from decimal import Decimal, InvalidOperation

from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t

# `mixmaker._core` initialises this module after it has registered its errors, while it is
# itself in sys.modules (multi-phase init): the one error root is importable from here.
from mixmaker._core import MixmakerError

_log = logging.getLogger("mixmaker.clock")

# Marks "no time yet" in the int64 timestamp fields (timestamps are >= 0).
cdef int64_t NO_TIME = INT64_MIN
cdef object _NS_PER_S = Decimal(1_000_000_000)
cdef long _HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: classes defined in Python


class ClockMode(enum.IntEnum):
    REALTIME = 1
    BACKTEST = 2


class ClockError(MixmakerError, RuntimeError):
    """The clock was used in a way its mode or state does not allow (e.g. `backtest_til` on a
    REALTIME clock, or starting a second loop while one runs)."""


IteratorFailure = namedtuple("IteratorFailure", "iterator hook timestamp_ns error")
IteratorFailure.__doc__ = (
    "The last exception an iterator raised: which iterator, in which hook "
    "('start', 'tick' or 'stop'), at which timestamp, and the exception itself.")


def tick_size_to_ns(tick_size):
    """Seconds (int, float, Decimal or str) as exact integer nanoseconds.

    A float is read as its shortest repr (0.1 -> 100_000_000 ns, not 100_000_000.0000000055).
    Raises ValueError for zero, negative, non-finite or sub-nanosecond values."""
    if isinstance(tick_size, bool) or not isinstance(tick_size, (int, float, Decimal, str)):
        raise TypeError(
            f"tick_size must be seconds as int, float, Decimal or str, got {type(tick_size).__name__}")
    try:
        seconds = Decimal(repr(tick_size) if isinstance(tick_size, float) else tick_size)
    except InvalidOperation:
        raise ValueError(f"tick_size {tick_size!r} is not a number of seconds") from None
    if not seconds.is_finite() or seconds <= 0:
        raise ValueError(f"tick_size must be a positive number of seconds, got {tick_size!r}")
    ns = seconds * _NS_PER_S
    if ns != ns.to_integral_value():
        raise ValueError(f"tick_size {tick_size!r} is finer than one nanosecond")
    if ns > INT64_MAX:
        raise ValueError(f"tick_size {tick_size!r} does not fit in int64 nanoseconds")
    return int(ns)


cdef inline int64_t _floor_to(int64_t t, int64_t step):
    return (t // step) * step


cdef class TimeIterator:
    """Something the clock ticks. Override `tick` (in Python or Cython); `start` and `stop`
    are optional. The clock sets `current_timestamp_ns` (and `clock`) before calling a hook,
    so overrides need not call the base. A Python `tick` is looked up once, when the iterator
    is added to a clock: replace it afterwards and the clock keeps calling the old one."""

    cdef int64_t _now_ns
    cdef Clock _clock

    def __cinit__(self):
        self._now_ns = NO_TIME

    @property
    def current_timestamp_ns(self):
        """The timestamp of the last start or tick, in ns; None before the first start."""
        return None if self._now_ns == NO_TIME else self._now_ns

    @property
    def clock(self):
        """The clock this iterator runs on; None when it is not started."""
        return self._clock

    cpdef start(self, Clock clock, int64_t now_ns):
        """Called once when the clock starts (or when added to a started clock)."""

    cpdef tick(self, int64_t now_ns):
        """Called on every tick with the tick's timestamp in ns."""

    cpdef stop(self, Clock clock):
        """Called once when the clock stops (or when removed from a started clock)."""


cdef class Clock:
    """Ticks its iterators in the order they were added: add data sources first and the
    strategies that read them last.

        clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=t0, end_ns=t1)
        clock.add_iterator(feed); clock.add_iterator(strategy)
        clock.backtest()                  # start, tick t0+1s .. t1, stop

        clock = Clock(ClockMode.REALTIME, tick_size="0.5")
        await clock.run()                 # until clock.stop() (or end_ns)

    `backtest_til(t)` / `await run_til(t)` start the clock if needed, tick every boundary up to
    and including t, and leave it started so a later call continues; `stop()` (or leaving a
    `with clock:` block) ends it. Ticks never go backwards.
    """

    cdef readonly int64_t tick_size_ns
    cdef readonly int64_t ticks
    cdef readonly int64_t missed_ticks
    cdef readonly int64_t iterator_errors
    cdef readonly bint running
    cdef readonly object mode
    cdef readonly object tick_size
    cdef readonly object end_ns
    cdef readonly object last_error
    cdef int64_t _now_ns
    cdef bint _backtest
    cdef bint _started
    cdef bint _stop_requested
    # Replaced, never mutated, on add/remove: a tick in progress keeps iterating the lists it
    # started with, so an iterator added inside a tick first ticks on the next one (one
    # removed inside a tick is skipped at once: it is stopped, and stays so).
    cdef list _iterators
    # Parallel to _iterators: None where `tick` is implemented in Cython (called through the
    # vtable), else the bound Python `tick`, looked up once here instead of on every call.
    cdef list _py_ticks
    cdef object _time_fn

    def __init__(self, mode=ClockMode.BACKTEST, tick_size=1, start_ns=None, end_ns=None,
                 time_fn=time.time_ns):
        try:
            mode = ClockMode(mode)
        except ValueError:
            raise ValueError(f"mode must be a ClockMode, got {mode!r}") from None
        if not callable(time_fn):
            raise TypeError("time_fn must be a callable returning int nanoseconds since the epoch")
        self.mode = mode
        self._backtest = mode == ClockMode.BACKTEST
        self.tick_size_ns = tick_size_to_ns(tick_size)
        self.tick_size = Decimal(self.tick_size_ns) / _NS_PER_S
        if start_ns is not None and not self._backtest:
            raise ValueError("start_ns applies to BACKTEST clocks; a REALTIME clock starts now")
        self._now_ns = _check_ns("start_ns", start_ns) if start_ns is not None else (
            0 if self._backtest else NO_TIME)
        if end_ns is not None:
            end_ns = _check_ns("end_ns", end_ns)
            if self._backtest and end_ns < self._now_ns:
                raise ValueError(f"end_ns {end_ns} is before start_ns {self._now_ns}")
        self.end_ns = end_ns
        self._time_fn = time_fn
        self._set_iterators([])

    def __repr__(self):
        return (f"Clock({self.mode.name}, tick_size={self.tick_size}s, "
                f"now={self.current_timestamp_ns}, iterators={len(self._iterators)}, "
                f"ticks={self.ticks})")

    @property
    def current_timestamp_ns(self):
        """The last tick (or the start) in ns; None for a REALTIME clock that never started."""
        return None if self._now_ns == NO_TIME else self._now_ns

    @property
    def started(self):
        """True between start() (or the first loop) and stop()."""
        return self._started

    @property
    def iterators(self):
        """The iterators in tick order (a copy)."""
        return tuple(self._iterators)

    # ---- membership -------------------------------------------------------------------

    def add_iterator(self, TimeIterator iterator not None):
        """Append `iterator` to the tick order; a started clock starts it right away."""
        if any(it is iterator for it in self._iterators):
            raise ValueError(f"{iterator!r} is already on this clock")
        if iterator._clock is not None:
            raise ValueError(f"{iterator!r} is running on another clock")
        self._set_iterators(self._iterators + [iterator])
        if self._started:
            self._call_start(iterator)

    def remove_iterator(self, TimeIterator iterator not None):
        """Take `iterator` out of the tick order; a started clock stops it first."""
        if not any(it is iterator for it in self._iterators):
            raise ValueError(f"{iterator!r} is not on this clock")
        self._set_iterators([it for it in self._iterators if it is not iterator])
        if self._started:
            self._call_stop(iterator)

    # ---- lifecycle --------------------------------------------------------------------

    def start(self):
        """Start every iterator (in order) at the current time: `start_ns` for a backtest,
        the last passed tick boundary in realtime. Does nothing if already started."""
        if self._started:
            return
        if not self._backtest:
            now = _floor_to(self._read_time(), self.tick_size_ns)
            # Never move backwards, even if the wall clock did since the last run.
            if self._now_ns == NO_TIME or now > self._now_ns:
                self._now_ns = now
        self._started = True
        for it in self._iterators:
            self._call_start(it)

    def stop(self):
        """End the clock. A loop that is running returns after its current tick; then every
        iterator's stop hook runs once, last added first (strategies before their data)."""
        if self.running:
            self._stop_requested = True
        else:
            self._stop_all()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- backtest ---------------------------------------------------------------------

    def backtest_til(self, end_ns):
        """Tick every `tick_size` after the current time up to and including `end_ns`, as fast
        as the iterators allow. Starts the clock if needed; leaves it started."""
        cdef int64_t end = _check_ns("end_ns", end_ns)
        cdef int64_t step = self.tick_size_ns
        self._enter_loop(True)
        try:
            # end - now cannot overflow: both are in [0, INT64_MAX].
            while not self._stop_requested and end - self._now_ns >= step:
                self._tick_all(self._now_ns + step)
        except BaseException:
            self._leave_loop(True)
            raise
        self._leave_loop(False)

    def backtest_pass_til(self, end_ns):
        """Let every boundary after the current time up to and including `end_ns` pass as
        ticked, without calling the iterators: for a driver that has shown each of them would
        do exactly what it did on the last tick and has accounted for them (the backtest's
        replay, `StrategyLoop.held`). They count in `ticks`; the time, and each iterator's, is
        the last boundary's. Returns how many passed."""
        cdef int64_t end = _check_ns("end_ns", end_ns)
        cdef int64_t step = self.tick_size_ns
        cdef int64_t n
        cdef TimeIterator it
        self._check_can_run(True)
        self.start()
        if end - self._now_ns < step:
            return 0
        n = (end - self._now_ns) // step
        self._now_ns += n * step
        self.ticks += n
        for it in self._iterators:
            if it._clock is self:
                it._now_ns = self._now_ns
        return n

    def backtest(self):
        """Run the whole backtest: start, tick up to `end_ns`, stop."""
        if self.end_ns is None:
            raise ValueError("backtest() needs the clock's end_ns; or call backtest_til(end_ns)")
        self._check_can_run(True)
        try:
            self.backtest_til(self.end_ns)
        finally:
            self.stop()

    # ---- realtime ---------------------------------------------------------------------

    async def run_til(self, end_ns):
        """Tick on each wall-clock boundary up to and including `end_ns`. Boundaries that
        pass while the loop is blocked are skipped and counted in `missed_ticks`, never
        replayed. Starts the clock if needed; leaves it started. Cancelling the task stops it."""
        await self._run(_check_ns("end_ns", end_ns))

    async def run(self):
        """Start, tick until `stop()` (or the clock's `end_ns`), then stop."""
        self._check_can_run(False)
        try:
            await self._run(self.end_ns)
        finally:
            self.stop()

    async def _run(self, end_ns):
        cdef int64_t step = self.tick_size_ns
        cdef int64_t end = INT64_MAX if end_ns is None else end_ns
        cdef int64_t now, due, last
        self._enter_loop(False)
        try:
            # Missed ticks count from here: boundaries between two runs were not due.
            last = max(self._now_ns, _floor_to(self._read_time(), step))
            while not self._stop_requested:
                # The next boundary after now, so boundaries that passed while the iterators
                # ran are skipped rather than burst through.
                now = self._read_time()
                due = max(_floor_to(now, step), last) + step
                if due > end:
                    break
                # asyncio sleeps on the monotonic clock; the wall clock decides. A sleep can
                # end early (clock slew) or late (blocked loop): never tick early, and tick the
                # latest boundary passed. Capping each sleep at one tick keeps stop() prompt
                # even if the wall clock stepped back.
                while now < due:
                    await asyncio.sleep(min(due - now, step) / 1e9)
                    if self._stop_requested:
                        break
                    now = self._read_time()
                if self._stop_requested:
                    break
                due = min(_floor_to(now, step), _floor_to(end, step))
                self.missed_ticks += (due - last) // step - 1
                self._tick_all(due)
                last = due
        except BaseException:
            self._leave_loop(True)
            raise
        self._leave_loop(False)

    # ---- internals --------------------------------------------------------------------

    cdef int64_t _read_time(self) except? -1:
        cdef int64_t now = self._time_fn()
        if now < 0:
            raise ValueError(f"time_fn returned {now}, expected ns since the epoch")
        return now

    cdef _check_can_run(self, bint backtest):
        if backtest != self._backtest:
            raise ClockError(
                f"{'backtest_til' if backtest else 'run/run_til'} needs a "
                f"{'BACKTEST' if backtest else 'REALTIME'} clock; this one is {self.mode.name}")
        if self.running:
            raise ClockError("the clock is already running")

    cdef _enter_loop(self, bint backtest):
        self._check_can_run(backtest)
        self.start()
        self._stop_requested = False
        self.running = True

    cdef _leave_loop(self, bint failed):
        # A loop that dies (cancelled, interrupted, broken time_fn) ends the clock too.
        self.running = False
        if failed or self._stop_requested:
            self._stop_requested = False
            self._stop_all()

    cdef _set_iterators(self, list iterators):
        self._py_ticks = [_python_tick(it) for it in iterators]
        self._iterators = iterators

    cdef int _tick_all(self, int64_t now_ns) except -1:
        # The hot path. One try block per tick, not per iterator: after a failure the outer
        # loop resumes at the next iterator.
        cdef list its = self._iterators
        cdef list py_ticks = self._py_ticks
        cdef Py_ssize_t i = 0, n = len(its)
        cdef TimeIterator it = None
        cdef object py_tick
        cdef object py_now = None  # one int object per tick, shared by the Python ticks
        self._now_ns = now_ns
        self.ticks += 1
        while i < n:
            try:
                while i < n:
                    it = <TimeIterator>its[i]
                    py_tick = py_ticks[i]
                    i += 1
                    if it._clock is not self:
                        continue  # removed (and stopped) earlier in this tick
                    it._now_ns = now_ns
                    if py_tick is None:
                        it.tick(now_ns)
                    else:
                        if py_now is None:
                            py_now = now_ns
                        py_tick(py_now)
            except Exception as exc:
                self._failed(it, "tick", now_ns, exc)
        return 0

    cdef _call_start(self, TimeIterator it):
        it._clock = self
        it._now_ns = self._now_ns
        try:
            it.start(self, self._now_ns)
        except Exception as exc:
            self._failed(it, "start", self._now_ns, exc)

    cdef _call_stop(self, TimeIterator it):
        try:
            it.stop(self)
        except Exception as exc:
            self._failed(it, "stop", self._now_ns, exc)
        it._clock = None

    cdef _stop_all(self):
        if not self._started:
            return
        self._started = False
        for it in reversed(self._iterators):
            self._call_stop(it)

    cdef _failed(self, TimeIterator it, str hook, int64_t now_ns, exc):
        self.iterator_errors += 1
        self.last_error = IteratorFailure(it, hook, now_ns, exc)
        _log.error("%r raised in %s at %d ns", it, hook, now_ns, exc_info=exc)


cdef object _python_tick(TimeIterator it):
    """`it.tick` bound, if Python code defines it (a Python subclass or an instance
    attribute); None if it is Cython's, which the vtable reaches faster."""
    cdef dict inst = getattr(it, "__dict__", None)
    if inst is not None and "tick" in inst:
        return it.tick
    for cls in type(it).__mro__:
        if "tick" in cls.__dict__:
            return it.tick if cls.__flags__ & _HEAPTYPE else None
    return None


cdef int64_t _check_ns(str name, value) except? -1:
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be int nanoseconds since the epoch, got {value!r}") from None
    if not 0 <= value <= INT64_MAX:
        raise ValueError(f"{name} must be in [0, 2**63), got {value}")
    return value
