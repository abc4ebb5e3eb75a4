"""`mixmaker backtest --feed FILE --config pmm.toml [--json] [--plot out.png]`.

Exit codes: 0 the backtest ran; 2 bad input (config, feed, options)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    bp = sub.add_parser(
        "backtest",
        help="replay a recording through a controller and executor against a simulated venue",
        description="Replay a recording (`<ts_ns> <json>` lines) through the live book, clock, "
        "controller, executor and order tracker, against a simulated venue with latency, a queue "
        "model and fees. Prints PnL, inventory, fills and the quotes' fill ratio.",
    )
    bp.add_argument("--feed", required=True, metavar="FILE", help="the recording to replay")
    bp.add_argument("--config", required=True, metavar="TOML", help="[market], [strategy], [backtest] (see examples/pmm.toml)")
    bp.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    bp.add_argument("--plot", metavar="PNG", help="write mid, our quotes, inventory and PnL to this PNG (needs matplotlib)")
    prog = bp.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress on stderr")
    prog.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")
    bp.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mixmaker.backtest.feed import open_feed
    from mixmaker.backtest.report import render_json, render_table
    from mixmaker.backtest.runner import run_backtest
    from mixmaker.strategy.config import load_config
    from mixmaker.strategy.errors import StrategyError

    try:
        cfg = load_config(args.config)
    except StrategyError as e:
        print(f"mixmaker backtest: {e}", file=sys.stderr)
        return 2
    feed = open_feed(args.feed)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        result = run_backtest(cfg, feed, progress=progress, samples=bool(args.plot))
    except StrategyError as e:
        print(f"mixmaker backtest: {e}", file=sys.stderr)
        return 2
    print(render_json(result.report, result.timing) if args.json else render_table(result.report, result.timing))
    if args.plot:
        from mixmaker.backtest.plot import PlotUnavailableError, plot_png

        try:
            out = plot_png(result.samples, args.plot, f"{cfg.strategy.kind} on {feed.path.name}")
        except PlotUnavailableError as e:
            print(f"mixmaker backtest: {e}", file=sys.stderr)
            return 2
        print(f"plot written to {out}", file=sys.stderr)
    return 0
