"""Backtests: a recording replayed through the live book, clock, controller, executor and order
tracker, against a simulated venue.

    from mixmaker.backtest.feed import open_feed
    from mixmaker.backtest.runner import run_backtest

    result = run_backtest(load_config("examples/pmm.toml"), open_feed(path))
    result.report      # exact, reproducible; result.timing is wall-clock

The modules are the API: `feed` (TimedFeed, open_feed), `runner` (Backtest, BacktestResult,
BacktestError, run_backtest), `venue` (SimVenue), `report`, `plot`. This package imports none
of them, so `mixmaker --help` (which registers the backtest subcommand from `backtest.cli`)
does not pay for the strategy stack.
"""
