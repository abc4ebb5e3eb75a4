"""The backtest report: a plain dict of exact decimal strings and counts (no wall-clock
figures, so two runs of the same feed and config compare equal), and its text rendering.

It reads only a `RunOutcome` (what the runner hands it); every scaled integer becomes text
through `mixmaker.money`."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

from mixmaker.backtest.outcome import RunOutcome
from mixmaker.money import Rounding, format_exact, format_units, format_units_many, rescale, round_units
from mixmaker.orders.protocol import FEE_DECIMALS, FeeAmount

exact = format_exact  # a value in scaled units (int, or a half from a mid mark) as decimal text


def average(value: int, qty: int, price_decimals: int) -> str | None:
    """A volume-weighted price, rounded half-even to two digits past the price's."""
    if not qty:
        return None
    return format_units(round_units(Fraction(value * 100, qty), Rounding.HALF_EVEN), price_decimals + 2)


def fee_text(fee: FeeAmount, value_decimals: int) -> str:
    """A fee (1e-12 of the quote) at the market's value scale, with any finer digits it has."""
    if value_decimals >= FEE_DECIMALS or not fee % 10 ** (FEE_DECIMALS - value_decimals):
        return format_units(rescale(fee, FEE_DECIMALS, value_decimals), value_decimals)
    return format_exact(Fraction(fee, 10 ** (FEE_DECIMALS - value_decimals)), value_decimals)


def build_report(o: RunOutcome) -> dict[str, Any]:
    r, acc = o.rules, o.accounting
    vd, sd, pd = r.value_decimals, r.size_decimals, r.price_decimals
    mark = o.mark
    unreal = acc.unrealised(mark) if mark is not None else Fraction(0)
    total = acc.total(mark) if mark is not None else Fraction(acc.realised - acc.fees)
    placed = o.executor_stats["created"]
    filled_qty = acc.buy_qty + acc.sell_qty
    rows = o.ticks_rows.rows  # (t_ns, position, ...) per tick
    base0 = o.base0
    inv = [base0 + r[1] for r in rows]  # base held after each tick
    start_value = o.base0 * mark + o.quote0 if mark is not None else None
    end_value = o.base_end * mark + o.quote_end if mark is not None else None
    # The series: one row per tick. Holdings take few values: each is formatted once.
    distinct = sorted(set(inv))
    held = dict(zip(distinct, format_units_many(distinct, sd), strict=True))
    first = o.first_ns
    times = format_units_many([r[0] - first for r in rows], 9)
    return {
        "feed": o.feed_name,
        "venue": o.venue,
        "strategy": o.strategy,
        "span_s": format_units(o.last_ns - o.first_ns, 9),
        "messages": o.messages,
        "public_trades": o.public_trades,
        "ticks": o.ticks,
        "book": {"state": o.book_state, "diffs_applied": o.diffs_applied, "gaps": o.gaps},
        "final_mid": exact(mark, pd) if mark is not None else None,
        "pnl": {
            "realised": exact(acc.realised, vd),
            "unrealised": exact(unreal, vd),
            "fees": exact(acc.fees, vd),
            "total": exact(total, vd),
            "currency": r.quote,
        },
        "portfolio": {
            "start_value": exact(start_value, vd) if start_value is not None else None,
            "end_value": exact(end_value, vd) if end_value is not None else None,
            "base_start": format_units(o.base0, sd), "base_end": format_units(o.base_end, sd),
            "quote_start": format_units(o.quote0, vd), "quote_end": format_units(o.quote_end, vd),
        },
        "inventory": {
            "position": format_units(acc.position, sd),
            "min": held[distinct[0]] if inv else None,
            "max": held[distinct[-1]] if inv else None,
        },
        "fills": {
            "count": acc.fills, "maker": acc.maker_fills,
            "buy_qty": format_units(acc.buy_qty, sd), "sell_qty": format_units(acc.sell_qty, sd),
            "buy_avg_price": average(acc.buy_value, acc.buy_qty, pd),
            "sell_avg_price": average(acc.sell_value, acc.sell_qty, pd),
        },
        "quotes": {
            "placed": placed,
            "filled": len(acc.filled_orders),
            "fill_ratio": f"{len(acc.filled_orders) / placed:.4f}" if placed else None,
            "quoted_qty": format_units(o.quoted_qty, sd),
            "qty_fill_ratio": f"{filled_qty / o.quoted_qty:.4f}" if o.quoted_qty else None,
            "cancelled": o.executor_stats["cancelled"],
            "rejected": o.executor_stats["rejected"],
            "kept_within_tolerance": o.executor_stats["kept"],
        },
        "not_quoting_ticks": dict(sorted(o.not_quoting.items())),
        # base held after each tick: [seconds since the first message, amount]
        "inventory_series": [[t, held[h]] for t, h in zip(times, inv, strict=True)],
        "fill_log": [
            {"t_s": format_units(t - first, 9), "side": f.side.value, "price": format_units(f.price, pd),
             "qty": format_units(f.qty, sd), "fee": fee_text(f.fee, vd), "maker": f.is_maker, "trade_id": f.trade_id}
            for t, f in o.fill_log
        ],
        "executor": dict(sorted(o.executor_report.items())),
        "venue_stats": dict(sorted(o.venue_stats.items())),
        "tracker": {"anomalies": o.anomalies, "late_fills": o.late_fills},
    }


def render_json(report: dict[str, Any], timing: dict[str, float] | None = None) -> str:
    return json.dumps({**report, **({"timing": timing} if timing else {})}, indent=2, sort_keys=True)


def render_table(report: dict[str, Any], timing: dict[str, float] | None = None) -> str:
    p, q, f, inv = report["pnl"], report["quotes"], report["fills"], report["inventory"]
    cur = p["currency"]
    lines = [
        f"backtest   {report['feed']}  ({report['strategy']}, {report['span_s']} s, {report['messages']:,} messages, {report['ticks']} ticks)",
        f"venue      {report['venue']}",
        f"PnL        total {p['total']} {cur} = realised {p['realised']} + unrealised {p['unrealised']} - fees {p['fees']}",
        f"inventory  position {inv['position']}  (holdings min {inv['min']}, max {inv['max']})",
        f"fills      {f['count']} ({f['maker']} maker): bought {f['buy_qty']} @ {f['buy_avg_price']}, sold {f['sell_qty']} @ {f['sell_avg_price']}",
        f"quotes     {q['placed']} placed, {q['filled']} filled (fill ratio {q['fill_ratio']}, by size {q['qty_fill_ratio']}), "
        f"{q['cancelled']} cancelled, {q['rejected']} rejected, {q['kept_within_tolerance']} kept within tolerance",
        f"portfolio  {report['portfolio']['start_value']} -> {report['portfolio']['end_value']} {cur} at mid",
    ]
    if report["not_quoting_ticks"]:
        lines.append("idle ticks " + ", ".join(f"{k}: {v}" for k, v in report["not_quoting_ticks"].items()))
    if timing:
        lines.append(f"speed      {timing['elapsed_s']:.2f} s wall, {timing['messages_per_s']:,.0f} messages/s")
    return "\n".join(lines)
