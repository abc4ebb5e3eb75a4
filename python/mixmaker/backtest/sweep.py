"""Parameter sweeps: one backtest per combination of a grid, on every core (processes).

    mixmaker backtest --feed F --config pmm.toml --sweep 'bid_spread=0.0001..0.0005:5,order_levels=1..3'

Axes: `name=lo..hi:n` is n evenly spaced values from lo to hi (exact decimals); `name=lo..hi` is
every integer from lo to hi; `name=a|b|c` lists the values. A name is a `[strategy]` field, or
`backtest.<field>` / `market.<field>`. Each combination's row (PnL, fills, fill ratio, inventory
range, max drawdown) is computed by the same `run_backtest` as a single run, so a row equals that
combination run alone. The recording is prepared once (its tape cached) before the workers start.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from mixmaker.backtest.outcome import TickRows
from mixmaker.money import format_exact
from mixmaker.strategy.config import RunConfig, parse_config
from mixmaker.strategy.errors import ConfigError

SECTIONS = ("strategy", "backtest", "market")


class SweepError(ConfigError):
    """A sweep that cannot be run: a malformed axis, an unknown parameter, a bad value."""


@dataclass(frozen=True)
class Axis:
    section: str
    name: str
    values: tuple[str, ...]  # as written in TOML terms (decimal text or integers)

    @property
    def label(self) -> str:
        return self.name if self.section == "strategy" else f"{self.section}.{self.name}"


def parse_sweep(text: str) -> list[Axis]:
    axes: list[Axis] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, eq, spec = part.partition("=")
        name, spec = name.strip(), spec.strip()
        if not eq or not name or not spec:
            raise SweepError(f"sweep axis {part!r}: expected name=lo..hi:n, name=lo..hi or name=a|b|c")
        section, _, field = name.rpartition(".")
        section = section or "strategy"
        if section not in SECTIONS:
            raise SweepError(f"sweep axis {part!r}: section must be one of {', '.join(SECTIONS)}")
        axes.append(Axis(section, field, _values(part, spec)))
    if not axes:
        raise SweepError("the sweep names no parameter")
    labels = [a.label for a in axes]
    if len(set(labels)) != len(labels):
        raise SweepError(f"a parameter is swept twice: {', '.join(labels)}")
    return axes


def _values(part: str, spec: str) -> tuple[str, ...]:
    try:
        if "|" in spec:
            vals = [str(Decimal(v.strip())) for v in spec.split("|")]
        elif ".." in spec:
            rng, colon, count = spec.partition(":")
            lo_s, _, hi_s = rng.partition("..")
            lo, hi = Decimal(lo_s.strip()), Decimal(hi_s.strip())
            if hi < lo:
                raise SweepError(f"sweep axis {part!r}: the range runs backwards")
            if colon:
                n = int(count)
                if n < 1:
                    raise SweepError(f"sweep axis {part!r}: at least one value")
                if n == 1:
                    vals = [str(lo)]
                else:
                    step = (hi - lo) / (n - 1)
                    vals = [str((lo + step * i).normalize()) for i in range(n - 1)] + [str(hi.normalize())]
            else:
                if lo != lo.to_integral_value() or hi != hi.to_integral_value():
                    raise SweepError(f"sweep axis {part!r}: a decimal range needs a count (lo..hi:n)")
                vals = [str(i) for i in range(int(lo), int(hi) + 1)]
        else:
            vals = [str(Decimal(spec))]
    except (InvalidOperation, ValueError) as e:
        raise SweepError(f"sweep axis {part!r}: not a number ({e})") from None
    if len(set(vals)) != len(vals):
        raise SweepError(f"sweep axis {part!r}: repeated values {vals}")
    return tuple(vals)


def combinations(cfg: RunConfig, axes: Sequence[Axis]) -> list[tuple[dict[str, str], RunConfig]]:
    """Every combination, in grid order (the last axis varies fastest), as a validated config."""
    base = cfg.model_dump(mode="json")
    out = []
    for combo in itertools.product(*(a.values for a in axes)):
        data = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
        params = {}
        for axis, value in zip(axes, combo, strict=True):
            section = data.get(axis.section)
            if not isinstance(section, dict):
                raise SweepError(f"the config has no [{axis.section}] section to sweep {axis.label}")
            if axis.name not in section:
                raise SweepError(f"{axis.label} is not a {axis.section} parameter of this config "
                                 f"(known: {', '.join(sorted(section))})")
            section[axis.name] = int(value) if isinstance(section[axis.name], int) and "." not in value else value
            params[axis.label] = value
        try:
            out.append((params, parse_config(data, f"sweep {params}")))
        except ConfigError as e:
            raise SweepError(str(e)) from None
    return out


def summary_row(params: dict[str, str], report: dict[str, Any], rows: TickRows) -> dict[str, Any]:
    """One sweep row from a run's report and its tick rows."""
    return {
        **params,
        "pnl": report["pnl"]["total"],
        "fills": report["fills"]["count"],
        "placed": report["quotes"]["placed"],
        "fill_ratio": report["quotes"]["fill_ratio"],
        "inventory_min": report["inventory"]["min"],
        "inventory_max": report["inventory"]["max"],
        "max_drawdown": max_drawdown(rows),
    }


def max_drawdown(rows: TickRows) -> str:
    """The largest fall of the mark-to-market PnL from its running peak, over the ticks, exact.
    Twice the PnL is an integer at every tick (the mark is a mid: a half at worst)."""
    peak = None
    worst = 0
    for r in rows.rows:
        if len(r) < 8:
            raise ValueError("the drawdown needs the full tick rows (samples=True)")
        _t, pos, mark2, _qb, _qa, realised, fees, open_cost = r
        if mark2 is None:
            continue
        pnl2 = 2 * (realised - open_cost - fees) + pos * mark2
        if peak is None or pnl2 > peak:
            peak = pnl2
        elif peak - pnl2 > worst:
            worst = peak - pnl2
    from fractions import Fraction

    return format_exact(Fraction(worst, 2), rows.rules.value_decimals)


def run_one(feed_path: str, params: dict[str, str], cfg: RunConfig) -> dict[str, Any]:
    """One combination, exactly as a single run computes it."""
    from mixmaker.backtest.feed import open_feed
    from mixmaker.backtest.runner import run_backtest

    res = run_backtest(cfg, open_feed(feed_path), samples=True)
    return summary_row(params, res.report, res.rows)


def run_sweep(cfg: RunConfig, feed_path: str | Path, axes: Sequence[Axis], *, jobs: int | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """All combinations on `jobs` processes (default: every core); rows in grid order."""
    from mixmaker.backtest.feed import open_feed

    combos = combinations(cfg, axes)
    feed = open_feed(feed_path)
    feed.tape(feed.recording.detect_venue())  # read once, cached for every worker
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(combos)))
    rows: list[dict[str, Any] | None] = [None] * len(combos)
    if jobs == 1:
        for i, (params, c) in enumerate(combos):
            rows[i] = run_one(str(feed_path), params, c)
            if progress is not None:
                progress(i + 1, len(combos))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futs = {pool.submit(run_one, str(feed_path), params, c): i for i, (params, c) in enumerate(combos)}
            for done, fut in enumerate(as_completed(futs), 1):
                rows[futs[fut]] = fut.result()
                if progress is not None:
                    progress(done, len(combos))
    return [r for r in rows if r is not None]


class SweepProgress:
    """`[#####     ] 12/24 combinations, 3.1 s` on a terminal line."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        bar = "#" * (30 * done // total)
        self.out.write(f"\r  [{bar:<30}] {done}/{total} combinations, {time.perf_counter() - self.start:.1f} s ")
        self.out.flush()
        if done == total:
            self.out.write("\n")
            self.out.flush()


COLUMNS = ("pnl", "fills", "placed", "fill_ratio", "inventory_min", "inventory_max", "max_drawdown")


def render_sweep_table(rows: list[dict[str, Any]], axes: Sequence[Axis], currency: str = "") -> str:
    heads = [a.label for a in axes] + [f"pnl {currency}".strip(), "fills", "placed", "fill ratio", "inv min",
                                       "inv max", "max drawdown"]
    body = [[str(r[a.label]) for a in axes] + ["" if r[c] is None else str(r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(heads)]
    line = "  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(out)


def heatmap_png(rows: list[dict[str, Any]], axes: Sequence[Axis], path: str | Path, title: str = "") -> Path:
    """Total PnL over the grid of exactly two swept parameters."""
    from mixmaker.backtest.plot import PlotUnavailableError

    if len(axes) != 2:
        raise SweepError(f"a heat map needs exactly two swept parameters, not {len(axes)}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise PlotUnavailableError("the PNG heat map needs matplotlib: pip install 'mixmaker[plot]'") from e
    ya, xa = axes
    grid = [[float(r["pnl"]) for r in rows[i * len(xa.values):(i + 1) * len(xa.values)]] for i in range(len(ya.values))]
    fig, ax = plt.subplots(figsize=(1.2 * len(xa.values) + 3, 0.6 * len(ya.values) + 2.5))
    im = ax.imshow(grid, cmap="RdYlGn", aspect="auto", origin="lower")
    ax.set_xticks(range(len(xa.values)), xa.values, rotation=45, ha="right")
    ax.set_yticks(range(len(ya.values)), ya.values)
    ax.set_xlabel(xa.label)
    ax.set_ylabel(ya.label)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="total PnL")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
