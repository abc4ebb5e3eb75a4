"""Backtests: a recording replayed through the live book, clock, controller, executor and order
tracker, against a simulated venue (`venue.SimVenue`).

    result = run_backtest(load_config("examples/pmm.toml"), open_feed(path))
    result.report      # exact, reproducible; result.timing is wall-clock
    rows = run_sweep(cfg, path, parse_sweep("bid_spread=0.002..0.01:5"))   # a grid, every core
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy, so `mixmaker --help` (which registers the backtest subcommand) needs no compiled core.
_HOME = {
    "TimedFeed": "feed", "UntimedRecordingError": "feed", "open_feed": "feed", "prepare": "feed",
    "Backtest": "runner", "BacktestError": "runner", "BacktestResult": "runner", "Sample": "outcome",
    "RunOutcome": "outcome", "run_backtest": "runner", "SimVenue": "venue", "MemoryJournal": "journal",
    "SweepError": "sweep", "parse_sweep": "sweep", "run_sweep": "sweep",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'mixmaker.backtest' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mixmaker.backtest.{_HOME[name]}"), name)

__all__ = [
    "Backtest",
    "BacktestError",
    "BacktestResult",
    "MemoryJournal",
    "RunOutcome",
    "Sample",
    "SimVenue",
    "SweepError",
    "TimedFeed",
    "UntimedRecordingError",
    "open_feed",
    "parse_sweep",
    "prepare",
    "run_backtest",
    "run_sweep",
]
