"""Full backtest speed on the USD-M recording: events (recorded messages) per second through
book, clock, PMM controller, quote executor, order tracker and simulated venue, with the
proposal from the Cython kernel and, in the same run, from the Decimal peer computed the way
Hummingbot does (tests/pmm_decimal.py). Both runs must give the same report.

    python benches/bench_backtest.py [--config examples/pmm.toml] [--repeat 3] [--json]
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
from cpu_meter import CpuMeter, warn_if_busy  # noqa: E402

from mixmaker.backtest.feed import open_feed  # noqa: E402
from mixmaker.backtest.runner import run_backtest  # noqa: E402
from mixmaker.strategy import PureMarketMaking, load_config  # noqa: E402

FILE = "binance_usdm_btcusdt_20240808_hftbacktest.gz"


def decimal_controller(cfg, rules, base0):
    return PureMarketMaking(cfg, rules, initial_base=base0, proposal_fn=pmm_decimal.propose)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(HERE.parent / "examples" / "pmm.toml"))
    ap.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    ap.add_argument("--tick-seconds", help="override the clock tick (e.g. 0.1 puts more weight on the proposal)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    path = Path(os.environ.get("MIXMAKER_DATA", "/work/shared/data/market")) / FILE
    if not path.is_file():
        print(f"skipped: {FILE} not found (set MIXMAKER_DATA)", file=sys.stderr)
        return 1
    cfg = load_config(args.config)
    if args.tick_seconds:
        bt = cfg.backtest.model_copy(update={"tick_seconds": Decimal(args.tick_seconds)})
        cfg = cfg.model_copy(update={"backtest": bt})
    meter = CpuMeter()
    best: dict[str, float] = {}
    reports: dict[str, dict] = {}
    ticks = messages = 0
    for _ in range(args.repeat):
        for name, factory in (("kernel", None), ("Decimal", decimal_controller)):
            t0 = time.perf_counter()
            res = run_backtest(cfg, open_feed(path), controller_factory=factory)
            dt = time.perf_counter() - t0
            best[name] = min(best.get(name, dt), dt)
            reports[name] = res.report
            ticks, messages = res.report["ticks"], res.report["messages"]
    same = reports["kernel"] == reports["Decimal"]
    other = meter.other_cores()
    if args.json:
        print(json.dumps({"messages": messages, "ticks": ticks, "seconds": best, "same_report": same,
                          "events_per_s": {k: messages / v for k, v in best.items()}, "other_cores": other}, indent=2))
        return 0
    print(f"backtest of {FILE}: {messages:,} events, {ticks} ticks, {reports['kernel']['quotes']['placed']} orders, "
          f"best of {args.repeat} (reading, decompressing and all)")
    print(f"{'proposal':<12}{'seconds':>10}{'events/s':>12}")
    for name, s in best.items():
        print(f"{name:<12}{s:>10.3f}{messages / s:>12,.0f}")
    print(f"identical reports: {'yes' if same else 'NO'}")
    warn_if_busy(other)
    return 0


if __name__ == "__main__":
    sys.exit(main())
