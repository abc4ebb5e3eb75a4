"""Backtests: a recording replayed through the live book, clock, controller, executor and order
tracker, against a simulated venue (`venue.SimVenue`).

    result = run_backtest(load_config("examples/pmm.toml"), open_feed(path))
    result.report      # exact, reproducible; result.timing is wall-clock
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy, so `mixmaker --help` (which registers the backtest subcommand) needs no compiled core.
_HOME = {
    "TimedFeed": "feed", "UntimedRecordingError": "feed", "open_feed": "feed",
    "Backtest": "runner", "BacktestError": "runner", "BacktestResult": "runner", "Sample": "runner",
    "run_backtest": "runner", "SimVenue": "venue",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'mixmaker.backtest' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mixmaker.backtest.{_HOME[name]}"), name)

__all__ = [
    "Backtest",
    "BacktestError",
    "BacktestResult",
    "Sample",
    "SimVenue",
    "TimedFeed",
    "UntimedRecordingError",
    "open_feed",
    "run_backtest",
]
