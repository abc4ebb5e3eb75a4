"""What a backtest run hands its report: plain values, so the report depends on no runner."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from mixmaker.backtest.accounting import Accounting
from mixmaker.orders import FillEvent
from mixmaker.strategy.market import MarketRules


@dataclass
class Sample:
    t_ns: int
    holdings: int  # base held, exact (size units)
    mid: float | None
    bid_quote: float | None
    ask_quote: float | None
    inventory: float
    pnl: float


@dataclass
class TickRows:
    """One row per tick, after the executor acted, as exact integers (cheap to record);
    `samples()` turns them into the floats the plot draws."""

    rules: MarketRules
    base0: int
    # (t_ns, position, bid + ask or None, our best bid or None, our best ask or None,
    #  realised, fees, open cost), or only (t_ns, position) when the plot series are not wanted
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def holdings(self) -> list[tuple[int, int]]:
        return [(r[0], self.base0 + r[1]) for r in self.rows]

    def samples(self) -> list[Sample]:
        if self.rows and len(self.rows[0]) == 2:
            raise ValueError("this run recorded only the holdings (samples=False): no plot series")
        rules = self.rules
        scale_p, scale_v = 10.0 ** rules.price_decimals, 10.0 ** rules.value_decimals
        scale_s = 10.0 ** rules.size_decimals
        out = []
        for t, pos, mark2, qb, qa, realised, fees, open_cost in self.rows:
            mark = Fraction(mark2, 2) if mark2 is not None else None
            pnl = float(realised + (pos * mark - open_cost) - fees) / scale_v if mark is not None else 0.0
            out.append(Sample(
                t, self.base0 + pos, float(mark) / scale_p if mark is not None else None,
                qb / scale_p if qb is not None else None, qa / scale_p if qa is not None else None,
                (self.base0 + pos) / scale_s, pnl))
        return out


@dataclass
class RunOutcome:
    """Everything the report reads, taken when the run ended."""

    feed_name: str
    venue: str
    strategy: str
    rules: MarketRules
    first_ns: int
    last_ns: int
    messages: int
    public_trades: int
    ticks: int
    book_state: str
    diffs_applied: int
    gaps: int
    mark: Fraction | None  # the final mid, exact
    accounting: Accounting
    base0: int
    quote0: int
    base_end: int
    quote_end: int
    quoted_qty: int  # size of every order the venue accepted
    executor_stats: Counter[str]  # a missing count is 0
    executor_report: dict[str, Any]
    venue_stats: dict[str, int]
    not_quoting: dict[str, int]
    ticks_rows: TickRows
    fill_log: list[tuple[int, FillEvent]]  # (venue time, fill)
    anomalies: int
    late_fills: int
