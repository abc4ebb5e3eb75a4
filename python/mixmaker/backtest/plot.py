"""The backtest picture: mid price with our best quotes, inventory, and PnL over time.
matplotlib is an optional extra (`pip install 'mixmaker[plot]'`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mixmaker.backtest.outcome import Sample
from mixmaker.errors import MixmakerError


class PlotUnavailableError(MixmakerError, RuntimeError):
    """matplotlib is not installed."""


def plot_png(samples: Sequence[Sample], path: str | Path, title: str = "") -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise PlotUnavailableError("the PNG plot needs matplotlib: pip install 'mixmaker[plot]'") from e
    if not samples:
        raise ValueError("no samples to plot: the feed produced no clock ticks")
    t0 = samples[0].t_ns
    t = [(s.t_ns - t0) / 1e9 for s in samples]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, sharex=True, figsize=(11, 8), height_ratios=[3, 1, 1])
    ax1.plot(t, [s.mid for s in samples], color="black", lw=0.8, label="mid")
    ax1.plot(t, [s.bid_quote for s in samples], color="tab:green", lw=0.7, label="our best bid")
    ax1.plot(t, [s.ask_quote for s in samples], color="tab:red", lw=0.7, label="our best ask")
    ax1.set_ylabel("price")
    ax1.legend(loc="upper left", fontsize=8)
    ax2.plot(t, [s.inventory for s in samples], color="tab:blue", lw=0.8)
    ax2.set_ylabel("base held")
    ax3.plot(t, [s.pnl for s in samples], color="tab:purple", lw=0.8)
    ax3.set_ylabel("PnL")
    ax3.set_xlabel("seconds")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
