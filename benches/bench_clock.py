"""Per-tick cost of the Cython clock loop, next to a pure-Python floor, in one run.

    python benches/bench_clock.py [ticks]

Backtest mode, so nothing sleeps: each row is (best of 3) wall time / ticks. The floor is
the least a Python tick loop can do: `for it in its: it.tick(ts)` on plain Python objects.
"""

import sys
import time

from mixmaker.clock import Clock, ClockMode, TimeIterator

TICK_NS = 1_000_000_000
REPEATS = 3


class PyNoop(TimeIterator):
    """A Python subclass whose tick does nothing: the cost of calling into Python."""

    def tick(self, now_ns):
        pass


class Plain:
    """Not a TimeIterator at all: what the pure-Python floor ticks."""

    def tick(self, now_ns):
        pass


def clock_ns_per_tick(make_iterators, ticks):
    best = None
    for _ in range(REPEATS):
        clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=0)
        for it in make_iterators():
            clock.add_iterator(it)
        t0 = time.perf_counter_ns()
        clock.backtest_til(ticks * TICK_NS)
        elapsed = time.perf_counter_ns() - t0
        assert clock.ticks == ticks and clock.iterator_errors == 0
        best = elapsed if best is None else min(best, elapsed)
    return best / ticks


def python_floor_ns_per_tick(make_iterators, ticks):
    def loop(its, n):
        ts = 0
        for _ in range(n):
            ts += TICK_NS
            for it in its:
                it.tick(ts)

    best = None
    for _ in range(REPEATS):
        its = make_iterators()
        t0 = time.perf_counter_ns()
        loop(its, ticks)
        elapsed = time.perf_counter_ns() - t0
        best = elapsed if best is None else min(best, elapsed)
    return best / ticks


def main():
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rows = [
        ("clock, no iterators", 0, clock_ns_per_tick(lambda: [], ticks)),
        ("clock, 1 TimeIterator (base, no-op)", 1, clock_ns_per_tick(lambda: [TimeIterator()], ticks)),
        ("clock, 10 TimeIterator (base, no-op)", 10,
         clock_ns_per_tick(lambda: [TimeIterator() for _ in range(10)], ticks)),
        ("clock, 1 Python subclass (no-op tick)", 1, clock_ns_per_tick(lambda: [PyNoop()], ticks)),
        ("clock, 10 Python subclass (no-op tick)", 10,
         clock_ns_per_tick(lambda: [PyNoop() for _ in range(10)], ticks)),
        ("pure-Python floor, 1 plain object", 1, python_floor_ns_per_tick(lambda: [Plain()], ticks)),
        ("pure-Python floor, 10 plain objects", 10,
         python_floor_ns_per_tick(lambda: [Plain() for _ in range(10)], ticks)),
    ]
    print(f"backtest, {ticks:,} ticks, best of {REPEATS}, Python {sys.version.split()[0]}")
    print(f"{'case':<42} {'ns/tick':>9} {'ns/iterator':>12}")
    for name, n, ns in rows:
        per_it = f"{ns / n:12.1f}" if n else f"{'-':>12}"
        print(f"{name:<42} {ns:9.1f} {per_it}")


if __name__ == "__main__":
    main()
