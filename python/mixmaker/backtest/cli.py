"""`mixmaker backtest --feed FILE --config pmm.toml [--json] [--plot out.png]`,
`mixmaker backtest --feed FILE --prepare` (write the recording's tape cache), and
`mixmaker backtest --feed FILE --config pmm.toml --sweep 'bid_spread=0.0001..0.0005:5,order_levels=1..3'`
(one row per combination, on every core; `--plot` then writes a heat map of two parameters).

Exit codes: 0 the backtest ran; 2 bad input (config, feed, options)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the module itself imports no strategy code (`mixmaker --help` stays light)
    from mixmaker.strategy.config import RunConfig


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bp = sub.add_parser(
        "backtest",
        help="replay a recording through a controller and executor against a simulated venue",
        description="Replay a recording (`<ts_ns> <json>` lines) through the live book, clock, "
        "controller, executor and order tracker, against a simulated venue with latency, a queue "
        "model and fees. Prints PnL, inventory, fills and the quotes' fill ratio. The recording is "
        "read once into a tape cached beside it (or in $MIXMAKER_CACHE, default ~/.cache/mixmaker/tapes), "
        "so later runs skip parsing.",
    )
    bp.add_argument("--feed", required=True, metavar="FILE", help="the recording to replay")
    bp.add_argument("--config", metavar="TOML", help="[market], [strategy], [backtest] (see examples/pmm.toml)")
    bp.add_argument("--json", action="store_true", help="print JSON instead of a summary (a sweep: one row per combination)")
    bp.add_argument("--plot", metavar="PNG", help="write mid, our quotes, inventory and PnL to this PNG (a sweep: "
                    "the heat map of total PnL over its two parameters); needs matplotlib")
    bp.add_argument("--prepare", action="store_true", help="only read the recording into its tape cache and say where")
    bp.add_argument("--no-cache", dest="cache", action="store_false", help="read the recording itself; neither use nor write the tape cache")
    bp.add_argument("--sweep", metavar="AXES", help="run a grid: name=lo..hi:n (n values), name=lo..hi (integers), "
                    "name=a|b|c; names are [strategy] fields or backtest.<field>; comma-separated")
    bp.add_argument("--jobs", type=int, metavar="N", help="processes for a sweep (default: every core)")
    prog = bp.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress on stderr")
    prog.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")
    bp.set_defaults(run=run)


def _fail(msg: object) -> int:
    print(f"mixmaker backtest: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from mixmaker.backtest.feed import open_feed, prepare
    from mixmaker.backtest.report import render_json, render_table
    from mixmaker.backtest.runner import run_backtest
    from mixmaker.replay.errors import ReplayError
    from mixmaker.strategy.config import load_config
    from mixmaker.strategy.errors import StrategyError

    if args.prepare:
        try:
            where, tape = prepare(args.feed)
        except ReplayError as e:
            return _fail(e)
        print(f"{tape!r} -> {where if where is not None else 'no writable cache place: not saved'}")
        return 0
    if not args.config:
        return _fail("--config is required (unless --prepare)")
    if args.jobs is not None and args.jobs < 1:
        return _fail("--jobs must be at least 1")
    try:
        cfg = load_config(args.config)
    except StrategyError as e:
        return _fail(e)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    if args.sweep:
        return _sweep(args, cfg, progress)
    try:
        feed = open_feed(args.feed, cache=args.cache)
        result = run_backtest(cfg, feed, progress=progress, samples=bool(args.plot))
    except (StrategyError, ReplayError) as e:
        return _fail(e)
    print(render_json(result.report, result.timing) if args.json else render_table(result.report, result.timing))
    if args.plot:
        from mixmaker.backtest.plot import PlotUnavailableError, plot_png

        try:
            out = plot_png(result.samples, args.plot, f"{cfg.strategy.kind} on {feed.path.name}")
        except PlotUnavailableError as e:
            return _fail(e)
        print(f"plot written to {out}", file=sys.stderr)
    return 0


def _sweep(args: argparse.Namespace, cfg: RunConfig, progress: bool) -> int:
    from mixmaker.backtest.plot import PlotUnavailableError
    from mixmaker.backtest.sweep import (
        SweepProgress,
        heatmap_png,
        parse_sweep,
        render_sweep_table,
        run_sweep,
    )
    from mixmaker.replay.errors import ReplayError
    from mixmaker.strategy.errors import StrategyError

    try:
        axes = parse_sweep(args.sweep)
        if args.plot and len(axes) != 2:
            return _fail(f"--plot with --sweep draws a heat map of two parameters; this sweep has {len(axes)}")
        rows = run_sweep(cfg, args.feed, axes, jobs=args.jobs, progress=SweepProgress() if progress else None)
    except (StrategyError, ReplayError) as e:
        return _fail(e)
    print(json.dumps(rows, indent=2) if args.json else render_sweep_table(rows, axes, cfg.market.quote))
    if args.plot:
        try:
            out = heatmap_png(rows, axes, args.plot, f"{cfg.strategy.kind}: total PnL ({cfg.market.quote})")
        except PlotUnavailableError as e:
            return _fail(e)
        print(f"heat map written to {out}", file=sys.stderr)
    return 0
