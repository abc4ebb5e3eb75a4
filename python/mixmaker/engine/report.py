"""The run report: a PNG of a demo or paper run from the samples the engine kept in its store
(`samples.py`): each market's mid with each pool's best quotes, each pool's inventory, and each
pool's value in its quote asset. Like the backtest's picture; matplotlib is an optional extra
(`pip install 'mixmaker[plot]'`). Floats here are for drawing only."""

from __future__ import annotations

from pathlib import Path

from mixmaker.backtest.plot import PlotUnavailableError
from mixmaker.engine import samples as samples_mod
from mixmaker.store import SqliteStore

__all__ = ["PlotUnavailableError", "plot_run"]


def plot_run(db: str | Path, path: str | Path, title: str = "") -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise PlotUnavailableError("the PNG report needs matplotlib: pip install 'mixmaker[plot]'") from e
    store = SqliteStore(db)
    try:
        store.migrate("engine_samples", samples_mod.MIGRATIONS)
        series = samples_mod.read(store)
    finally:
        store.close()
    if not series:
        raise ValueError("no samples: the engine did not run long enough to record any")
    t0 = min(points[0][0] for points in series.values())

    def xs(name: str) -> list[float]:
        return [(t - t0) / 1e9 for t, _ in series[name]]

    def ys(name: str) -> list[float]:
        return [float(v) for _, v in series[name]]

    pools = sorted({name.split(":", 1)[1] for name in series if name.startswith(("base:", "value:"))})
    markets = sorted(name.split(":", 1)[1] for name in series if name.startswith("mid:"))
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, sharex=True, figsize=(11, 8), height_ratios=[3, 1, 1])
    colors = ["tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink"]
    for m in markets:
        ax1.plot(xs(f"mid:{m}"), ys(f"mid:{m}"), color="black", lw=0.8, label=f"mid {m}")
    for i, pid in enumerate(pools):
        c = colors[i % len(colors)]
        preset = pid.rsplit(":", 1)[-1]
        for side, style in (("bid", "-"), ("ask", "--")):
            name = f"{side}:{pid}"
            if name in series:
                ax1.plot(xs(name), ys(name), color=c, lw=0.6, ls=style, label=f"{preset} our best {side}")
        if f"base:{pid}" in series:
            ax2.plot(xs(f"base:{pid}"), ys(f"base:{pid}"), color=c, lw=0.8, label=preset)
        if f"value:{pid}" in series:
            ax3.plot(xs(f"value:{pid}"), ys(f"value:{pid}"), color=c, lw=0.8, label=preset)
    ax1.set_ylabel("price")
    ax1.legend(loc="upper left", fontsize=7)
    ax2.set_ylabel("base held")
    ax2.legend(loc="upper left", fontsize=7)
    ax3.set_ylabel("pool value (quote)")
    ax3.set_xlabel("seconds")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
