"""How a ReplayResult is shown: a short table for people, one JSON object for machines."""

from __future__ import annotations

import json

from mixmaker.money import format_units
from mixmaker.replay.runner import ReplayResult
from mixmaker.replay.ticker_check import Bbo


def render_table(r: ReplayResult) -> str:
    rows = [
        ("replay", r.source),
        ("venue", r.venue),
        ("state", r.state),
        ("messages", f"{r.messages:,} in {r.elapsed_s:.2f} s ({r.messages_per_s:,.0f} msg/s, read + sync)"),
        (
            "diffs",
            f"{r.diffs_applied:,} applied, {r.stale:,} stale, {r.gaps:,} gaps, {r.resyncs:,} resyncs, "
            f"{r.crossed:,} crossed, {r.parse_errors:,} unreadable",
        ),
        ("best bid", _side(r.best_bid, r.best_bid_size, r.bid_levels)),
        ("best ask", _side(r.best_ask, r.best_ask_size, r.ask_levels)),
        (
            "tickers",
            f"{r.ticker_matches:,} match the book ({r.ticker_matches_after_diff:,} arrived after their diff), "
            f"{r.ticker_mismatches:,} mismatch",
        ),
    ]
    for m in r.mismatch_examples:
        rows.append(
            ("  mismatch", f"u={m.update_id}: ticker {_bbo(m.ticker, r)} vs book {_bbo(m.book, r)}")
        )
    rows.append(("result", "OK" if r.ok else "FAILED: " + "; ".join(r.problems)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def render_json(r: ReplayResult) -> str:
    return json.dumps(r.to_dict(), sort_keys=False)


def _side(price: str | None, size: str | None, levels: int) -> str:
    if price is None:
        return "none"
    return f"{price} x {size}  ({levels:,} levels)"


def _bbo(b: Bbo, r: ReplayResult) -> str:
    def fmt(v: int | None, d: int) -> str:
        return "-" if v is None else format_units(v, d)

    pd, sd = r.price_decimals, r.size_decimals
    return f"{fmt(b[0], pd)} x {fmt(b[1], sd)} / {fmt(b[2], pd)} x {fmt(b[3], sd)}"
