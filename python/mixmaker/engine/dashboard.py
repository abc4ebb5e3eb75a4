"""The terminal dashboard (rich): each book and our quotes, fills, pools with members and value,
each user order's state and balance, moves in transit, the last reconciliation, recent activity.
`--headless` prints one progress line instead (`progress_line`); both end with `summary`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mixmaker.engine.overview import Overview
from mixmaker.funds.moves import MoveState
from mixmaker.money import to_decimal
from mixmaker.users.orders import OrderState

_STATE_STYLE = {OrderState.SETTLED: "green", OrderState.REFUNDED: "green", OrderState.FAILED: "bold red",
                OrderState.ACTIVE: "cyan", OrderState.AWAITING_FUNDS: "yellow"}


def _short(s: str, n: int = 8) -> str:
    return s[:n]


def _dec(units: int | Fraction, decimals: int, places: int = 8) -> str:
    v = to_decimal(units.numerator // units.denominator if isinstance(units, Fraction) else units, decimals)
    return f"{v:.{places}f}".rstrip("0").rstrip(".") if v else "0"


def _amounts(amounts: dict[str, Any], decimals: dict[str, int], places: int = 8) -> str:
    parts = [f"{_dec(u, decimals.get(a, 8), places)} {a}" for a, u in sorted(amounts.items()) if u]
    return ", ".join(parts) or "-"


def books_table(ov: Overview) -> Table:
    t = Table(box=box.SIMPLE_HEAD, expand=True, title="books and our quotes", title_justify="left")
    for c in ("market", "state", "bid", "ask", "our quotes (pool: side price size)"):
        t.add_column(c)
    for b in ov.books:
        quotes = []
        for p in ov.pools:
            if p.market == b.market:
                q = " ".join(f"{x.side.value[0].upper()} {x.price}x{x.remaining}" for x in p.quotes) or "none"
                quotes.append(f"{p.pool_id.rsplit(':', 1)[-1]}: {q}")
        t.add_row(b.market, Text("synced", "green") if b.synced else Text(b.why, "yellow"),
                  str(b.bid or "-"), str(b.ask or "-"), "\n".join(quotes))
    return t


def pools_table(ov: Overview, decimals: dict[str, int]) -> Table:
    t = Table(box=box.SIMPLE_HEAD, expand=True, title="pools", title_justify="left")
    for c in ("pool", "members", "holds", "value", "fills", "status"):
        t.add_column(c)
    for p in ov.pools:
        value = f"{_dec(p.value, decimals.get(p.quote, 8), 2)} {p.quote}" if p.value is not None else "no mid"
        t.add_row(p.pool_id, str(len(p.members)), _amounts(p.holdings, decimals, 6), value, str(p.fills), p.status)
    return t


def orders_table(ov: Overview, decimals: dict[str, int]) -> Table:
    t = Table(box=box.SIMPLE_HEAD, expand=True, title="user orders", title_justify="left")
    for c in ("order", "payer", "pool", "state", "paid", "balance now"):
        t.add_column(c)
    for o in ov.orders:
        balance = o.in_pool or o.owed
        t.add_row(_short(o.order_id), _short(o.payer), o.pool_id.rsplit(":", 1)[-1],
                  Text(o.state.value, _STATE_STYLE.get(o.state, "")), _amounts(o.paid, decimals, 6),
                  _amounts(balance, decimals, 6) + (" (in pool)" if o.in_pool else ""))
    return t


def moves_table(ov: Overview, decimals: dict[str, int]) -> Table:
    t = Table(box=box.SIMPLE_HEAD, expand=True, title="moves in transit", title_justify="left")
    for c in ("move", "asset", "side", "amount", "state", "age"):
        t.add_column(c)
    for mv in ov.moves:
        state = Text(mv.state.value, "bold red" if mv.state is MoveState.STUCK else "")
        t.add_row(mv.move_id[:16], mv.asset, mv.direction, _dec(mv.units, decimals.get(mv.asset, 8)), state,
                  f"{mv.age_s:.0f}s")
    if not ov.moves:
        t.add_row("none", "", "", "", "", "")
    return t


def audit_text(ov: Overview) -> Text:
    """The last reconciliation (funds.reconcile) and any halt of moves, in one line."""
    a = ov.reconciliation
    halted = f"  MOVES HALTED: {'; '.join(ov.halts)}" if ov.halts else ""
    short = f"  FEE FLOAT SHORT: {'; '.join(ov.fee_short)}" if ov.fee_short else ""
    if a is None:
        return Text("last reconciliation: not yet" + halted + short, "red" if halted or short else "yellow")
    age = (ov.at_ns - a["at_ns"]) / 1e9
    if a["ok"] and not halted:
        return Text(f"last reconciliation {age:.0f}s ago: ledger = Mixin wallet = exchange, to the unit{short}",
                    "yellow" if short else "green")
    found = ", ".join(f"{d['account']} {d['asset']} {d['difference']}" for d in a["differences"])
    found = "; ".join(x for x in (found, *a["errors"]) if x) or "ok"
    return Text(f"last reconciliation {age:.0f}s ago: {found}{halted}{short}", "red" if halted else "yellow")


def render(ov: Overview, header: str, activity: Iterable[str], decimals: dict[str, int],
           width: int = 200) -> RenderableType:
    """Two columns on a wide terminal; one, without the empty moves table, on a narrow one."""
    layout = Layout()
    layout.split_column(Layout(name="head", size=3), Layout(name="body"), Layout(name="foot", size=9))
    head = Text(header, style="bold")
    if ov.not_ready:
        head.append("   not ready: " + ", ".join(f"{k} ({v})" for k, v in list(ov.not_ready.items())[:3]), style="yellow")
    layout["head"].update(Panel(head, box=box.ROUNDED))
    if width >= 140:
        layout["body"].split_row(Layout(name="left"), Layout(name="right"))
        layout["left"].update(Group(books_table(ov), pools_table(ov, decimals)))
        layout["right"].update(Group(orders_table(ov, decimals), moves_table(ov, decimals)))
    else:
        parts: list[RenderableType] = [books_table(ov), pools_table(ov, decimals), orders_table(ov, decimals)]
        parts.append(moves_table(ov, decimals) if ov.moves else Text(" moves in transit: none", style="dim"))
        layout["body"].update(Group(*parts))
    lines = list(activity)[-6:]
    layout["foot"].update(Panel(Group(audit_text(ov), *(Text(x, overflow="ellipsis", no_wrap=True) for x in lines)),
                                title="reconciliation and activity", box=box.ROUNDED))
    return layout


def progress_line(ov: Overview, header: str) -> str:
    states = ", ".join(f"{k} {v}" for k, v in sorted(ov.orders_by_state().items())) or "none yet"
    pools = "; ".join(f"{p.pool_id.rsplit(':', 1)[-1]} {len(p.members)} members {len(p.quotes)} quotes"
                      for p in ov.pools)
    a = ov.reconciliation
    audit = "not yet" if a is None else ("clean" if a["ok"] else "differs (checked again)")
    if ov.halts:
        audit += ", MOVES HALTED"
    if ov.fee_short:
        audit += f", FEE FLOAT SHORT: {'; '.join(ov.fee_short)}"
    books = ", ".join(f"{b.market} {'synced' if b.synced else 'not synced'}" for b in ov.books)
    return (f"{header} | orders: {states} | fills {ov.fills} | pools: {pools} | books: {books} | "
            f"moves in transit {len(ov.moves)} | reconciliation {audit}")


def summary(report: dict[str, Any], console: Console) -> None:
    t = Table(title="mixmaker demo: the money cycle (ledger, per asset)", box=box.ROUNDED)
    t.add_column("")
    assets = list(report["assets"])
    for sym in assets:
        t.add_column(sym, justify="right")
    labels = (("payments", "users paid in"), ("refunds", "refunded"), ("payouts", "paid out"), ("fees", "fees"),
              ("bot_share", "bot's share"), ("trading_result", "trading result"), ("held", "still held"))
    for key, label in labels:
        t.add_row(label, *(report["assets"][a]["ledger"][key] for a in assets))
    t.add_row("difference vs simulators",
              *(Text(report["assets"][a]["difference"], "green" if report["assets"][a]["difference"] == "0" else "bold red")
                for a in assets))
    console.print(t)
    o = Table(title="user orders", box=box.ROUNDED)
    for c in ("order", "pool", "state", "paid", "paid back", "result in pool"):
        o.add_column(c)
    for u in report["user_orders"]:
        st = u["statement"]
        paid = ", ".join(f"{v} {k}" for k, v in st["paid"].items())
        back = ", ".join(f"{v} {k}" for k, v in {**st["refunded"], **st["payouts"]}.items())
        result = ", ".join(f"{v} {k}" for k, v in st["result"].items()) or "-"
        o.add_row(u["id"][:8], st["pool"].rsplit(":", 1)[-1], u["state"], paid, back, result)
    console.print(o)
    refunds = report["reconciliation"].get("refunds", [])
    for r in refunds:
        console.print(f"refund: {r['amount']} {r['asset']} to {r['to'][:8]} ({r['reason']}): {r['state']}")
    console.print(Text("ok: every unit accounted for, every user paid" if report["ok"]
                       else "NOT ok: see the differences above", "bold green" if report["ok"] else "bold red"))


def clock_header(phase: str, elapsed_s: float, duration_s: float) -> str:
    return f"mixmaker demo  {time.strftime('%H:%M:%S')}  t={elapsed_s:.0f}s/{duration_s:.0f}s  {phase}"
