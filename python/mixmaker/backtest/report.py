"""The backtest report: a plain dict of exact decimal strings and counts (no wall-clock
figures, so two runs of the same feed and config compare equal), and its text rendering."""

from __future__ import annotations

import json
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mixmaker.backtest.runner import Backtest


def exact(value: Fraction | int, decimals: int) -> str:
    """A value in scaled units as a decimal string at its scale; a half (from a mid mark) gets
    the digits it needs."""
    f = Fraction(value) / 10**decimals
    with localcontext() as ctx:
        ctx.prec = 60
        d = Decimal(f.numerator) / Decimal(f.denominator)
        at_scale = d.quantize(Decimal(1).scaleb(-decimals))
    return format(at_scale if at_scale == d else d, "f")


def average(value: int, qty: int, price_decimals: int) -> str | None:
    """A volume-weighted price, rounded half-even to two digits past the price's."""
    if not qty:
        return None
    q = Fraction(value, qty * 10**price_decimals)
    with localcontext() as ctx:
        ctx.prec = 40
        return str((Decimal(q.numerator) / Decimal(q.denominator)).quantize(Decimal(1).scaleb(-price_decimals - 2)))


def build_report(bt: Backtest) -> dict[str, Any]:
    r, acc, ex, venue = bt.rules, bt.accounting, bt.executor, bt.venue
    vd, sd, pd = r.value_decimals, r.size_decimals, r.price_decimals
    mark = bt.mark()
    unreal = acc.unrealised(mark) if mark is not None else Fraction(0)
    total = acc.total(mark) if mark is not None else Fraction(acc.realised - acc.fees)
    placed = ex.stats["created"]
    quoted_qty = sum(o.quantity for o in venue.orders.values())
    filled_qty = acc.buy_qty + acc.sell_qty
    inv = [s.inventory for s in bt.sampler.samples]
    start_value = bt.base0 * mark + bt.quote0 if mark is not None else None
    end_value = venue.base * mark + venue.quote if mark is not None else None
    return {
        "feed": bt.feed.path.name,
        "venue": bt.spec.describe(),
        "strategy": bt.cfg.strategy.kind,
        "span_s": exact(bt.last_ns - bt.first_ns, 9),
        "messages": bt.messages,
        "public_trades": bt.trades_seen,
        "ticks": bt.clock.ticks if bt.clock is not None else 0,
        "book": {"state": bt.sync.state.name, "diffs_applied": bt.sync.stats.applied, "gaps": bt.sync.stats.gaps},
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
            "base_start": exact(bt.base0, sd), "base_end": exact(venue.base, sd),
            "quote_start": exact(bt.quote0, vd), "quote_end": exact(venue.quote, vd),
        },
        "inventory": {
            "position": exact(acc.position, sd),
            "min": f"{min(inv):.{sd}f}" if inv else None,
            "max": f"{max(inv):.{sd}f}" if inv else None,
        },
        "fills": {
            "count": acc.fills, "maker": acc.maker_fills,
            "buy_qty": exact(acc.buy_qty, sd), "sell_qty": exact(acc.sell_qty, sd),
            "buy_avg_price": average(acc.buy_value, acc.buy_qty, pd),
            "sell_avg_price": average(acc.sell_value, acc.sell_qty, pd),
        },
        "quotes": {
            "placed": placed,
            "filled": len(acc.filled_orders),
            "fill_ratio": f"{len(acc.filled_orders) / placed:.4f}" if placed else None,
            "quoted_qty": exact(quoted_qty, sd),
            "qty_fill_ratio": f"{filled_qty / quoted_qty:.4f}" if quoted_qty else None,
            "cancelled": ex.stats["cancelled"],
            "rejected": ex.stats["rejected"],
            "kept_within_tolerance": ex.stats["kept"],
        },
        "not_quoting_ticks": dict(sorted(bt.not_quoting.items())),
        # base held after each tick: [seconds since the first message, amount]
        "inventory_series": [[exact(s.t_ns - bt.first_ns, 9), exact(s.holdings, sd)] for s in bt.sampler.samples],
        "fill_log": [
            {"t_s": exact(t - bt.first_ns, 9), "side": f.side, "price": exact(f.price, pd), "qty": exact(f.qty, sd),
             "fee": exact(f.fee, vd), "maker": f.is_maker, "trade_id": f.trade_id}
            for t, f in bt.fill_log
        ],
        "executor": dict(sorted(ex.report().items())),
        "venue_stats": dict(sorted(venue.stats.items())),
        "tracker": {"anomalies": bt.tracker.stats["anomalies"], "late_fills": sum(
            bt.tracker.get(c).late_fills for c in bt.tracker.orders.ids())},
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
