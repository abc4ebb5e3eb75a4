"""Per-tick cost of the Cython clock loop under pytest-benchmark, next to a pure-Python floor.

    pytest benches/bench_clock.py --benchmark-only

Backtest mode, so nothing sleeps. A round runs TICKS ticks on a fresh clock (set up untimed);
`extra_info["ns_per_tick"]` is the round's mean over the ticks. The floor is the least a Python
tick loop can do: `for it in its: it.tick(ts)` on plain Python objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mixmaker.clock import Clock, ClockMode, TimeIterator

TICK_NS = 1_000_000_000
TICKS = 200_000
ROUNDS = 5


class PyNoop(TimeIterator):
    """A Python subclass whose tick does nothing: the cost of calling into Python."""

    def tick(self, now_ns: int) -> None:
        pass


class Plain:
    """Not a TimeIterator at all: what the pure-Python floor ticks."""

    def tick(self, now_ns: int) -> None:
        pass


def python_floor(its: list[Plain], n: int) -> None:
    ts = 0
    for _ in range(n):
        ts += TICK_NS
        for it in its:
            it.tick(ts)


CLOCK_CASES: dict[str, Callable[[], list[Any]]] = {
    "no iterators": lambda: [],
    "1 TimeIterator (base, no-op)": lambda: [TimeIterator()],
    "10 TimeIterator (base, no-op)": lambda: [TimeIterator() for _ in range(10)],
    "1 Python subclass (no-op tick)": lambda: [PyNoop()],
    "10 Python subclass (no-op tick)": lambda: [PyNoop() for _ in range(10)],
}


@pytest.mark.benchmark(group=f"clock: {TICKS:,} backtest ticks per round")
@pytest.mark.parametrize("case", list(CLOCK_CASES))
def test_clock(benchmark: Any, case: str) -> None:
    clocks: list[Clock] = []

    def setup() -> tuple[tuple[int], dict[str, Any]]:
        clock = Clock(ClockMode.BACKTEST, tick_size=1, start_ns=0)
        for it in CLOCK_CASES[case]():
            clock.add_iterator(it)
        clocks[:] = [clock]
        return (TICKS * TICK_NS,), {}

    benchmark.pedantic(lambda end_ns: clocks[0].backtest_til(end_ns), setup=setup, rounds=ROUNDS, iterations=1)
    assert clocks[0].ticks == TICKS and clocks[0].iterator_errors == 0
    benchmark.extra_info["ns_per_tick"] = benchmark.stats.stats.mean * 1e9 / TICKS


@pytest.mark.benchmark(group=f"clock: {TICKS:,} backtest ticks per round")
@pytest.mark.parametrize("n", [1, 10])
def test_python_floor(benchmark: Any, n: int) -> None:
    its = [Plain() for _ in range(n)]
    benchmark.pedantic(python_floor, args=(its, TICKS), rounds=ROUNDS, iterations=1)
    benchmark.extra_info["ns_per_tick"] = benchmark.stats.stats.mean * 1e9 / TICKS
