"""Backtests: a recording replayed through the live book, clock, controller, executor and order
tracker, against a simulated venue.

    from mixmaker.backtest.feed import open_feed
    from mixmaker.backtest.runner import run_backtest
    from mixmaker.backtest.sweep import parse_sweep, run_sweep

    result = run_backtest(load_config("examples/pmm.toml"), open_feed(path))
    result.report      # exact, reproducible; result.timing is wall-clock
    rows = run_sweep(cfg, path, parse_sweep("bid_spread=0.002..0.01:5"))   # a grid, every core

The modules are the API: `feed` (TimedFeed, open_feed, prepare), `runner` (Backtest,
BacktestResult, BacktestError, run_backtest), `outcome` (RunOutcome, Sample), `venue` (SimVenue),
`journal` (MemoryJournal), `sweep` (parse_sweep, run_sweep, SweepError), `report`, `plot`. This
package imports none of them, so `mixmaker --help` (which registers the backtest subcommand from
`backtest.cli`) does not pay for the strategy stack.
"""
