"""The clock that drives the tick loop (Cython, `mixmaker._clock`).

    clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=t0, end_ns=t1)
    clock.add_iterator(feed)        # data first
    clock.add_iterator(strategy)    # strategies last
    clock.backtest()

Subclass `TimeIterator` and override `tick(now_ns)` (and optionally `start(clock, now_ns)`
and `stop(clock)`); times are int nanoseconds since the epoch.
"""

import mixmaker._core  # noqa: F401  registers the Cython modules, mixmaker._clock among them
from mixmaker._clock import (
    Clock,
    ClockError,
    ClockMode,
    IteratorFailure,
    TimeIterator,
    tick_size_to_ns,
)

__all__ = [
    "Clock",
    "ClockError",
    "ClockMode",
    "IteratorFailure",
    "TimeIterator",
    "tick_size_to_ns",
]
