"""The 20-decisions-a-second maker on the USD-M recording: mixmaker against hftbacktest 2.4.4 and
NautilusTrader 1.221, in interleaved rounds (each round runs every contender once), best of N.

The three strategies are the same maker (one bid and one ask at 0.005 % around the mid on the
0.1 tick, 0.01 BTC, post-only, replaced when the mid moves them, 50 ms decisions, 25 ms latency,
0.02 % maker fee); benches/maker_20hz.toml, peers_backtest_hft.py and peers_backtest_nautilus.py
state them side by side, and the table prints each one's orders, cancels and fills.

What is timed:
- mixmaker from the prepared tape: `run_backtest` (replay, decide, report) on the tape the
  process keeps after loading it once, as hftbacktest's converted array is in memory (loading
  the tape file is shown apart); from the raw .gz: the same with the cache off (decompress,
  split, parse every line too);
- hftbacktest: its backtest over data converted beforehand by its own converter, JIT warm;
- NautilusTrader: `BacktestEngine.run` over data objects built beforehand (their building is
  shown apart).
"No strategy" is the same replay with nothing deciding: mixmaker replays the tape into the book
(every trade and line counted), hftbacktest elapses to the end, NautilusTrader runs the engine
with a strategy that only subscribes. Cost per decision = (maker - no strategy) / decisions.

    pip install -r benches/requirements.txt && pip install -e .      # a separate bench venv
    python benches/bench_backtest_peers.py [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cpu_meter import CpuMeter  # noqa: E402

FILE = "binance_usdm_btcusdt_20240808_hftbacktest.gz"
CONFIG = HERE / "maker_20hz.toml"
NEVER = (1 << 63) - 1


def _timed(fn):
    gc.collect()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def mixmaker_contenders(path: Path, notes: dict):
    from mixmaker._core import BookSync, Tape, TapePlayer
    from mixmaker.backtest.feed import cache_paths, open_feed
    from mixmaker.backtest.runner import run_backtest
    from mixmaker.strategy import load_config

    cfg = load_config(CONFIG)
    feed = open_feed(path)
    spec = feed.recording.detect_venue()
    feed.tape(spec)  # the prepared cache (`mixmaker backtest --prepare`), loaded and kept: not timed
    tape_file = next(p for p in cache_paths(path) if p.is_file())
    loads = [_timed(lambda: Tape.load(str(tape_file)))[0] for _ in range(3)]
    notes["mixmaker tape file loaded, once per process (not timed below)"] = round(min(loads), 3)

    def bare(tape):
        sync = BookSync(spec.rule, spec.price_decimals, spec.size_decimals)
        player = TapePlayer(tape, sync, keep_trades=True)
        player.next(NEVER)
        player.take_trades()
        return {"lines": player.position}

    def maker(cache: bool):
        res = run_backtest(cfg, open_feed(path, cache=cache), samples=False)
        r = res.report
        return {"decisions": r["ticks"], "orders": r["quotes"]["placed"], "cancels": r["quotes"]["cancelled"],
                "fills": r["fills"]["count"], "pnl": r["pnl"]["total"]}

    return {
        "mixmaker (prepared tape)": (lambda: bare(feed.tape(spec)), lambda: maker(True)),
        "mixmaker (raw .gz)": (lambda: bare(feed.read(spec)), lambda: maker(False)),
    }


def hft_contenders(path: Path, notes: dict):
    import peers_backtest_hft as H

    t, data = _timed(lambda: H.convert(str(path)))
    notes["hftbacktest convert (not timed below)"] = round(t, 3)
    hbt = H.backtest(data)  # JIT warm-up
    H.run_maker(hbt, H.STEP_NS, H.SPREAD, H.QTY)
    hbt.close()

    def bare():
        hbt = H.backtest(data)
        H.run_bare(hbt, 10**15)
        hbt.close()
        return {}

    def maker():
        hbt = H.backtest(data)
        d, o, c, f = H.run_maker(hbt, H.STEP_NS, H.SPREAD, H.QTY)
        hbt.close()
        return {"decisions": d, "orders": o, "cancels": c, "fills": f}

    return {"hftbacktest 2.4.4 (converted, JIT warm)": (bare, maker)}


def nautilus_contenders(path: Path, notes: dict):
    import peers_backtest_nautilus as N

    t, data = _timed(lambda: N.build_data(str(path)))
    notes["NautilusTrader data objects built (not timed below)"] = round(t, 3)
    return {"NautilusTrader 1.221 (objects built)": (lambda: N.run(data, quote=False), lambda: N.run(data, quote=True))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best of them (default 3)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    path = Path(os.environ.get("MIXMAKER_DATA", "/work/shared/data/market")) / FILE
    if not path.is_file():
        print(f"skipped: {FILE} not found (set MIXMAKER_DATA)", file=sys.stderr)
        return 1
    notes: dict = {}
    contenders: dict = {}
    for name, make in (("mixmaker", mixmaker_contenders), ("hftbacktest", hft_contenders),
                       ("nautilus_trader", nautilus_contenders)):
        try:
            contenders.update(make(path, notes))
        except ImportError as e:
            print(f"skipped: {name}: {e}", file=sys.stderr)
    # The peers' data (half a million NautilusTrader objects) lives through the rounds: move it
    # out of the collector's way, or every full collection walks it inside whoever runs then.
    gc.collect()
    gc.freeze()
    meter = CpuMeter()
    best: dict[tuple[str, str], float] = {}
    counts: dict[str, dict] = {}
    for r in range(args.rounds):
        for name, (bare, maker) in contenders.items():
            for kind, fn in (("bare", bare), ("maker", maker)):
                t, out = _timed(fn)
                best[(name, kind)] = min(best.get((name, kind), t), t)
                if kind == "maker":
                    counts[name] = out
            print(f"  round {r + 1}/{args.rounds}: {name} done", file=sys.stderr)
    other = meter.other_cores()
    rows = []
    for name in contenders:
        b, m, c = best[(name, "bare")], best[(name, "maker")], counts[name]
        per = (m - b) / c["decisions"] * 1e6 if c.get("decisions") else None
        rows.append({"contender": name, "no_strategy_s": b, "maker_s": m, "per_decision_us": per, **c})
    result = {"file": FILE, "rounds": args.rounds, "other_cores": other, "cpus": os.cpu_count(), "rows": rows,
              "notes": notes, "targets": targets(rows)}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"backtest peers on {FILE}: the 20 decisions/s maker, best of {args.rounds} interleaved rounds")
    print(f"{'':42}{'no strategy':>12}{'maker':>9}{'us/decision':>13}{'decisions':>11}{'orders':>8}{'cancels':>9}{'fills':>7}")
    for row in rows:
        per = f"{row['per_decision_us']:.1f}" if row["per_decision_us"] is not None else "-"
        print(f"{row['contender']:42}{row['no_strategy_s']:>11.3f}s{row['maker_s']:>8.3f}s{per:>13}"
              f"{row.get('decisions', 0):>11}{row.get('orders', 0):>8}{row.get('cancels', 0):>9}{row.get('fills', 0):>7}")
    for k, v in notes.items():
        print(f"  {k}: {v} s")
    for line in result["targets"]:
        print(line)
    if other is not None:
        print(f"other processes used {other:.2f} of {os.cpu_count()} cores during the rounds"
              + ("  WARNING: the box was busy; read the ratios more than the absolutes" if other > 0.15 else ""))
    return 0


def targets(rows: list[dict]) -> list[str]:
    by = {r["contender"].split(" (")[0] + (" gz" if "raw" in r["contender"] else ""): r for r in rows}
    out = []
    mm, gz = by.get("mixmaker"), by.get("mixmaker gz")
    hft = next((r for r in rows if r["contender"].startswith("hftbacktest")), None)
    nt = next((r for r in rows if r["contender"].startswith("NautilusTrader")), None)
    if mm and hft:
        ratio = mm["maker_s"] / hft["maker_s"]
        out.append(f"{'PASS' if ratio <= 2 else 'FAIL'}  from the prepared tape, mixmaker takes {ratio:.2f}x "
                   f"hftbacktest's time (target: within 2x)")
    if gz and nt:
        ratio = nt["maker_s"] / gz["maker_s"]
        out.append(f"{'PASS' if ratio >= 5 else 'FAIL'}  from the raw .gz, mixmaker is {ratio:.1f}x faster than "
                   f"NautilusTrader's engine run alone (target: at least 5x)")
    if mm and mm["per_decision_us"] is not None:
        out.append(f"{'PASS' if mm['per_decision_us'] <= 20 else 'FAIL'}  mixmaker's cost per decision is "
                   f"{mm['per_decision_us']:.1f} us (target: at most 20 us)")
    return out


if __name__ == "__main__":
    sys.exit(main())
