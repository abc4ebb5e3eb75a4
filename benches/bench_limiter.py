"""Rate limiter overhead per request, when nothing has to wait: what every REST call pays.

Contenders, in one process, interleaved round by round:
  (a) mixmaker RateLimiter.acquire, Binance spot pools (a create draws on 4 pools, a query on 2)
  (t) mixmaker RateLimiter.start + finish: what a routed REST request pays (it holds an
      in-flight slot and its weight counts from its answer), one in flight as Binance's default
  (b) ccxt's async Throttler (ccxt 4.5.90's leaky bucket, its default), with a refill so large
      nothing waits: the same "free pass" case
  (c) a bare `await` of a finished future: the floor of any awaitable gate

Each figure is the best of --repeat rounds of --n sequential requests from one coroutine.

    python benches/bench_limiter.py              # 100,000 requests, best of 5
    python benches/bench_limiter.py --n 20000 --repeat 3 --json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time

from cpu_meter import CpuMeter

from mixmaker.connectors import Pool, Priority, RateLimiter
from mixmaker.connectors import binance_limits as bl


def big_pools() -> list[Pool]:
    # Binance's pool names and shapes, limits raised so the run never waits: overhead only.
    return [Pool(p.name, 10**12, p.window_s) for p in bl.spot_pools()]


async def run_mixmaker(n: int, priority: Priority, cost: dict[str, int]) -> int:
    lim = RateLimiter(big_pools())
    acquire = lim.acquire
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await acquire(cost, priority)
    ns = time.perf_counter_ns() - t0
    assert lim.stats.admitted == n and lim.stats.waited_s_max < 1.0
    return ns


async def run_tracked(n: int, priority: Priority, cost: dict[str, int]) -> int:
    lim = RateLimiter(big_pools(), max_in_flight=bl.MAX_IN_FLIGHT)
    start, finish = lim.start, lim.finish
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await start(cost, priority)
        finish(cost)
    ns = time.perf_counter_ns() - t0
    assert lim.stats.admitted == n and lim.stats.waited_s_max < 1.0 and lim.stats.in_flight == 0
    return ns


async def run_ccxt(n: int) -> int:
    from ccxt.async_support.base.throttler import Throttler

    th = Throttler({"refillRate": 1e12, "capacity": 1e12, "tokens": 1e12, "delay": 0.001}, asyncio.get_running_loop())
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await th(1)
    return time.perf_counter_ns() - t0


async def run_floor(n: int) -> int:
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        f = loop.create_future()
        f.set_result(None)
        await f
    return time.perf_counter_ns() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    _, query_cost = bl.request_cost("private", "GET", "order", 0.8)
    _, create_cost = bl.request_cost("private", "POST", "order", 0.2)
    contenders = {
        "(a) mixmaker RateLimiter.acquire, query (2 pools)": lambda: run_mixmaker(args.n, Priority.QUERY, query_cost),
        "(a') mixmaker RateLimiter.acquire, create (4 pools)": lambda: run_mixmaker(args.n, Priority.CREATE, create_cost),
        "(t) mixmaker start + finish, query (2 pools)": lambda: run_tracked(args.n, Priority.QUERY, query_cost),
        "(t') mixmaker start + finish, create (4 pools)": lambda: run_tracked(args.n, Priority.CREATE, create_cost),
        "(b) ccxt async Throttler (leaky bucket)": lambda: run_ccxt(args.n),
        "(c) floor: await a finished future": lambda: run_floor(args.n),
    }
    best: dict[str, int] = {}
    meter = CpuMeter()
    for r in range(args.repeat):
        for name, make in contenders.items():
            gc.collect()
            gc.disable()
            try:
                ns = asyncio.run(make())
            finally:
                gc.enable()
            best[name] = min(best.get(name, ns), ns)
            print(f"  [round {r + 1}/{args.repeat}] {name}: {ns / args.n:.0f} ns/request", file=sys.stderr)
    others = meter.other_cores()
    rows = {name: ns / args.n for name, ns in best.items()}
    if args.json:
        print(json.dumps({"n": args.n, "repeat": args.repeat, "ns_per_request": rows, "other_cores": others}))
        return 0
    print(f"rate limiter overhead per request (nothing waits)  |  {args.n:,} requests, best of {args.repeat}")
    busy = "" if others is None or others <= 0.15 else "  ** WARNING: machine busy, timings inflated **"
    print(f"   other processes used {others:.2f} cores on average{busy}" if others is not None else "")
    ccxt_ns = rows["(b) ccxt async Throttler (leaky bucket)"]
    print(f"   {'contender':55} {'ns/request':>11} {'x ccxt':>8}")
    for name, v in rows.items():
        print(f"   {name:55} {v:11.0f} {v / ccxt_ns:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
