"""Proposal cost per tick on real books: the Cython kernel against the same proposal computed
in Python with Decimal, the way Hummingbot computes it (tests/pmm_decimal.py), same run, same
inputs. Both must produce the same proposals; the script counts disagreements.

The workload: 5 levels per side, inventory skew, order optimization with depth and own volume,
budget, and the refresh-tolerance check against the previous tick's proposal. The books are
the USD-M recording's, sampled every `--every` diffs once synced.

    python benches/bench_proposal.py [--every 10] [--repeat 5] [--json]

Rows:
- kernel: `propose()` + tolerance (`all_within_tolerance`), from `OrderBook.top_raw` arrays;
- Decimal: the same steps in Decimal over Python rows of floats (Hummingbot's shape);
- controller decide (kernel / Decimal): `PureMarketMaking.decide()` on a live snapshot, i.e.
  reference price, bands, cancel rules and the proposal, with either proposal function.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import pmm_decimal  # noqa: E402
from cpu_meter import CpuMeter  # noqa: E402

from mixmaker.book import BookState  # noqa: E402
from mixmaker.replay import new_sync, open_recording, route  # noqa: E402
from mixmaker.strategy import Balances, MarketConfig, MarketSnapshot, PMMConfig, PureMarketMaking  # noqa: E402
from mixmaker.strategy.kernel import SCALE, all_within_tolerance, propose  # noqa: E402

FILE = "binance_usdm_btcusdt_20240808_hftbacktest.gz"
MARKET = MarketConfig(symbol="BTCUSDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=3,
                      tick=Decimal("0.10"), lot=Decimal("0.001"))
PMM = PMMConfig(bid_spread=Decimal("0.02"), ask_spread=Decimal("0.02"), order_amount=Decimal("0.01"),
                order_levels=5, order_level_spread=Decimal("0.01"), order_level_amount=Decimal("0.005"),
                inventory_skew_enabled=True, order_optimization_enabled=True,
                bid_order_optimization_depth=Decimal("0.5"), ask_order_optimization_depth=Decimal("0.5"),
                order_refresh_tolerance_pct=Decimal("0.01"), fee_pct=Decimal("0.02"))
BASE, QUOTE = 600, 30_000 * 10**5  # 0.6 BTC, 30,000 USDT
BAL = Balances(BASE, QUOTE, BASE, QUOTE)
TOL = 10_000  # 0.01 % of SCALE, as order_refresh_tolerance_pct above


def data_path() -> Path:
    return Path(os.environ.get("MIXMAKER_DATA", "/work/shared/data/market")) / FILE


def sample_books(every: int):
    """(top_raw arrays, mid x 2) of the recorded book every `every` diffs, plus live snapshots
    for the controller rows (taken on the same states)."""
    rec = open_recording(data_path())
    spec = rec.detect_venue()
    sync = new_sync(spec)
    rules = MARKET.rules()
    ctl_k = PureMarketMaking(PMM, rules)
    ctl_d = PureMarketMaking(PMM, rules, proposal_fn=pmm_decimal.propose)
    states, decide_k, decide_d = [], 0, 0
    applied = 0
    for raw in rec.messages():
        before = sync.last_update_id
        route(sync, raw)
        if sync.state != BookState.SYNCED or sync.last_update_id == before:
            continue
        applied += 1
        if applied % every:
            continue
        book = sync.book
        bid, ask = book.best_bid_raw(), book.best_ask_raw()
        states.append((book.top_raw(PMM.optimization_book_levels), bid[0] + ask[0]))
        snap = MarketSnapshot(applied * 10**9, rules, book, BAL)
        t0 = time.perf_counter_ns()
        ctl_k.decide(snap)
        t1 = time.perf_counter_ns()
        ctl_d.decide(snap)
        t2 = time.perf_counter_ns()
        decide_k += t1 - t0
        decide_d += t2 - t1
    return states, decide_k / len(states), decide_d / len(states)


def run_kernel(params, states):
    prev_b: list[int] = []
    prev_s: list[int] = []
    out = []
    t0 = time.perf_counter_ns()
    for (bp, bs, ap, as_), mid2 in states:
        r = propose(params, mid2, mid2, 2, bp, bs, ap, as_, skew_base=BASE, skew_quote=QUOTE,
                    budget_base=BASE, budget_quote=QUOTE, own_buy=10, own_sell=10)
        keep = all_within_tolerance(prev_b, r.buy_prices, TOL) and all_within_tolerance(prev_s, r.sell_prices, TOL)
        prev_b, prev_s = r.buy_prices, r.sell_prices
        out.append((r.buy_prices, r.buy_sizes, r.sell_prices, r.sell_sizes, keep))
    return (time.perf_counter_ns() - t0) / len(states), out


def run_decimal(params, states):
    tol = Decimal(TOL) / SCALE
    prev_b: list[Decimal] = []
    prev_s: list[Decimal] = []
    out = []
    t0 = time.perf_counter_ns()
    for (bp, bs, ap, as_), mid2 in states:
        r = pmm_decimal.propose(params, mid2, mid2, 2, bp, bs, ap, as_, skew_base=BASE, skew_quote=QUOTE,
                                budget_base=BASE, budget_quote=QUOTE, own_buy=10, own_sell=10)
        buys = [Decimal(p) / 100 for p in r.buy_prices]
        sells = [Decimal(p) / 100 for p in r.sell_prices]
        keep = pmm_decimal.within_tolerance(prev_b, buys, tol) and pmm_decimal.within_tolerance(prev_s, sells, tol)
        prev_b, prev_s = buys, sells
        out.append((r.buy_prices, r.buy_sizes, r.sell_prices, r.sell_sizes, keep))
    return (time.perf_counter_ns() - t0) / len(states), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--every", type=int, default=10, help="sample the book every N diffs (default 10)")
    ap.add_argument("--repeat", type=int, default=5, help="best of N (default 5)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not data_path().is_file():
        print(f"skipped: {FILE} not found (set MIXMAKER_DATA)", file=sys.stderr)
        return 1
    meter = CpuMeter()
    states, dk, dd = sample_books(args.every)
    params = PMM.params(MARKET.rules())
    k = min(run_kernel(params, states)[0] for _ in range(args.repeat))
    d = min(run_decimal(params, states)[0] for _ in range(args.repeat))
    same = sum(a == b for a, b in zip(run_kernel(params, states)[1], run_decimal(params, states)[1]))
    other = meter.other_cores()
    rows = [("kernel: propose + tolerance", k), ("Decimal (Hummingbot's way)", d),
            ("controller decide, kernel", dk), ("controller decide, Decimal", dd)]
    if args.json:
        print(json.dumps({"ticks": len(states), "same_proposals": same, "other_cores": other,
                          "ns_per_tick": {name: ns for name, ns in rows}}, indent=2))
        return 0
    print(f"proposal per tick on {len(states):,} USD-M books (5 levels, skew, optimization, budget, tolerance), "
          f"best of {args.repeat}")
    print(f"{'path':<32}{'us/tick':>10}{'x kernel':>10}")
    for name, ns in rows:
        print(f"{name:<32}{ns / 1000:>10.2f}{ns / k:>10.1f}")
    print(f"same proposals and tolerance verdicts: {same:,} of {len(states):,}")
    warn_if_busy(other)
    return 0


def warn_if_busy(other_cores: float | None) -> None:
    """On the shared 2-core box a concurrent build skews every figure: say so."""
    if other_cores is not None and other_cores > 0.15:
        print(f"WARNING: other processes used {other_cores:.2f} cores during the run")


if __name__ == "__main__":
    sys.exit(main())
