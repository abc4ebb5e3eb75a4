"""Rate limiter overhead per request under pytest-benchmark, when nothing has to wait: what every
REST call pays.

    pytest benches/bench_limiter.py --benchmark-only              # group "limiter", side by side
    pytest benches/bench_limiter.py --benchmark-only --benchmark-json out.json

Contenders, each a round of REQUESTS sequential requests from one coroutine on one event loop:
  - `acquire`: mixmaker `RateLimiter.acquire`, Binance spot pools (a query draws on 2 pools, a
    create on 4), limits raised out of reach so only the overhead is timed;
  - `start_finish`: `RateLimiter.start` + `finish`, what a routed REST request pays (it holds an
    in-flight slot and its weight counts from its answer), one in flight;
  - `ccxt_throttler`: ccxt's async `Throttler` (its default leaky bucket), refilled so nothing
    waits: the same free pass;
  - `floor`: an `await` of a finished future, the least any awaitable gate costs.
A fresh limiter (or throttler) is built untimed before each round; `extra_info["ns_per_request"]`
is the round's mean over the requests. After the rounds every mixmaker limiter must have admitted
every request without waiting (and released every in-flight slot).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from mixmaker.connectors import Pool, Priority, RateLimiter
from mixmaker.connectors import binance_limits as bl

REQUESTS = 100_000
ROUNDS = 5
GROUP = f"limiter: {REQUESTS:,} requests per round, nothing waits"

_, QUERY_COST = bl.request_cost("private", "GET", "order", 0.8)
_, CREATE_COST = bl.request_cost("private", "POST", "order", 0.2)
COSTS = {"query (2 pools)": (Priority.QUERY, QUERY_COST), "create (4 pools)": (Priority.CREATE, CREATE_COST)}


def big_pools() -> list[Pool]:
    # Binance's pool names and shapes, limits raised so the run never waits: overhead only.
    return [Pool(p.name, 10**12, p.window_s) for p in bl.spot_pools()]


async def acquire_n(lim: RateLimiter, priority: Priority, cost: dict[str, int]) -> None:
    acquire = lim.acquire
    for _ in range(REQUESTS):
        await acquire(cost, priority)


async def start_finish_n(lim: RateLimiter, priority: Priority, cost: dict[str, int]) -> None:
    start, finish = lim.start, lim.finish
    for _ in range(REQUESTS):
        await start(cost, priority)
        finish(cost)


async def ccxt_n(throttle: Callable[[int], Awaitable[Any]]) -> None:
    for _ in range(REQUESTS):
        await throttle(1)


async def floor_n(loop: asyncio.AbstractEventLoop) -> None:
    for _ in range(REQUESTS):
        f = loop.create_future()
        f.set_result(None)
        await f


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def _per_request(benchmark: Any) -> None:
    benchmark.extra_info["ns_per_request"] = benchmark.stats.stats.mean * 1e9 / REQUESTS


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("kind", list(COSTS))
def test_acquire(benchmark: Any, loop: asyncio.AbstractEventLoop, kind: str) -> None:
    priority, cost = COSTS[kind]
    limiters: list[RateLimiter] = []

    def setup() -> tuple[tuple[RateLimiter], dict[str, Any]]:
        limiters.append(RateLimiter(big_pools()))
        return (limiters[-1],), {}

    benchmark.pedantic(lambda lim: loop.run_until_complete(acquire_n(lim, priority, cost)), setup=setup,
                       rounds=ROUNDS, iterations=1)
    for lim in limiters:
        assert lim.stats.admitted == REQUESTS and lim.stats.waited_s_max < 1.0
    _per_request(benchmark)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("kind", list(COSTS))
def test_start_finish(benchmark: Any, loop: asyncio.AbstractEventLoop, kind: str) -> None:
    priority, cost = COSTS[kind]
    limiters: list[RateLimiter] = []

    def setup() -> tuple[tuple[RateLimiter], dict[str, Any]]:
        limiters.append(RateLimiter(big_pools(), max_in_flight=bl.MAX_IN_FLIGHT))
        return (limiters[-1],), {}

    benchmark.pedantic(lambda lim: loop.run_until_complete(start_finish_n(lim, priority, cost)), setup=setup,
                       rounds=ROUNDS, iterations=1)
    for lim in limiters:
        assert lim.stats.admitted == REQUESTS and lim.stats.waited_s_max < 1.0 and lim.stats.in_flight == 0
    _per_request(benchmark)


@pytest.mark.benchmark(group=GROUP)
def test_ccxt_throttler(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    throttler = pytest.importorskip("ccxt.async_support.base.throttler")

    def setup() -> tuple[tuple[Any], dict[str, Any]]:
        th = throttler.Throttler({"refillRate": 1e12, "capacity": 1e12, "tokens": 1e12, "delay": 0.001}, loop)
        return (th,), {}

    benchmark.pedantic(lambda th: loop.run_until_complete(ccxt_n(th)), setup=setup, rounds=ROUNDS, iterations=1)
    _per_request(benchmark)


@pytest.mark.benchmark(group=GROUP)
def test_floor(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    benchmark.pedantic(lambda: loop.run_until_complete(floor_n(loop)), rounds=ROUNDS, iterations=1)
    _per_request(benchmark)
