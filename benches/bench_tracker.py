"""Tracker updates per second from Python: `ClientOrderTracker` on the Rust `OrderSet` against
the same tracker on the pure-Python model of the same table (tests/order_model.py), same run,
same fake venue, same SQLite journal on disk (WAL, synchronous=FULL).

    python benches/bench_tracker.py [--orders 2000] [--fills 20000] [--repeat 3] [--json]

Rows:
- fills, one commit each: `on_trade(t)` per fill (the user stream path);
- fills, batches of 100: `apply_trades(batch)`, one state-machine call and one commit per batch;
- repeated fills: the stream sends trades again; nothing is journaled, only deduplicated;
- creates: `create()` (journal, journal, venue, ack, journal) against the in-memory fake venue.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the fake venue and the pure-Python model

from fake_venue import FakeVenue  # noqa: E402
from order_model import OrderModel  # noqa: E402

from mixmaker.orders import ClientOrderTracker, OrderSet  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402


class PyOrderSet(OrderModel):
    """The model with the few extra lookups the tracker uses."""

    def __contains__(self, cid: str) -> bool:
        return cid in self.orders

    def state(self, cid: str) -> str:
        return self.orders[cid].state

    def live_ids(self, symbol: str | None = None) -> list[str]:
        return sorted(c for c, o in self.orders.items() if o.is_live and (symbol is None or o.symbol == symbol))

    def ids(self) -> list[str]:
        return sorted(self.orders)


IMPLS = {"rust OrderSet": OrderSet, "pure-Python model": PyOrderSet}


def timed(fn) -> int:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        fn()
        return time.perf_counter_ns() - t0
    finally:
        gc.enable()


def one_round(impl, n_orders: int, n_fills: int, tmp: Path) -> dict[str, tuple[int, int]]:
    """Returns {row: (ns, count)} for one fresh tracker."""
    venue = FakeVenue()
    store = SqliteStore(tmp / f"bench-{time.perf_counter_ns()}.db")
    t = ClientOrderTracker(venue, store, order_set=impl)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(t.start())
    out: dict[str, tuple[int, int]] = {}

    async def creates():
        for i in range(n_orders):
            await t.create("BTCUSDT", "buy" if i % 2 else "sell", 100 + i % 50, 10 * n_fills)

    out["creates"] = (timed(lambda: loop.run_until_complete(creates())), n_orders)
    cids = sorted(venue.orders)
    half = n_fills // 2
    trades = [venue.fill(cids[i % n_orders], 1) for i in range(n_fills)]
    single, batched = trades[:half], trades[half:]

    def one_by_one():
        for tr in single:
            t.on_trade(tr)

    def in_batches():
        for i in range(0, len(batched), 100):
            t.apply_trades(batched[i : i + 100])

    def repeats():
        for i in range(0, len(trades), 100):
            t.apply_trades(trades[i : i + 100])

    out["fills, one commit each"] = (timed(one_by_one), len(single))
    out["fills, batches of 100"] = (timed(in_batches), len(batched))
    out["repeated fills (dedup only)"] = (timed(repeats), len(trades))
    filled = sum(t.get(c).filled for c in cids)
    assert filled == n_fills, f"{impl.__name__}: {filled} filled, expected {n_fills}"
    assert t.stats["fills"] == n_fills and t.stats["duplicate_fills"] == n_fills
    loop.close()
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=2_000)
    ap.add_argument("--fills", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    best: dict[str, dict[str, float]] = {name: {} for name in IMPLS}
    with tempfile.TemporaryDirectory() as d:
        for _ in range(a.repeat):
            for name, impl in IMPLS.items():
                for row, (ns, n) in one_round(impl, a.orders, a.fills, Path(d)).items():
                    rate = n / (ns / 1e9)
                    best[name][row] = max(best[name].get(row, 0.0), rate)
    if a.json:
        print(json.dumps(best, indent=2))
        return
    rows = list(best["rust OrderSet"])
    print(f"tracker updates per second, best of {a.repeat} ({a.orders} orders, {a.fills} fills, SQLite WAL synchronous=FULL)")
    print(f"{'path':32} {'rust OrderSet':>15} {'pure-Python':>15} {'ratio':>7}")
    for row in rows:
        r, p = best["rust OrderSet"][row], best["pure-Python model"][row]
        print(f"{row:32} {r:15,.0f} {p:15,.0f} {r / p:6.2f}x")


if __name__ == "__main__":
    main()
