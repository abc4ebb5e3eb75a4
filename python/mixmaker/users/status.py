"""`mixmaker status`: what the books say now, read from the engine's SQLite database without
writing to it (read-only, so it is safe while the engine runs):

- user orders by state, and each live order with what it is owed;
- pools: members and what the pool's claim holds per asset (shares when the pools' tables exist);
- balances by account and asset, exact (`money.format_units`);
- refunds and payouts by state, and the operator's alerts;
- the funds layer's last reconciliation (when; ok, or each difference by account, asset and
  amount; "never" before the first), its halts (moves stopped until an operator clears them),
  moves in flight and its alerts.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mixmaker.funds.allocation import MoveState as StandInMove
from mixmaker.funds.moves import MoveState
from mixmaker.money import format_units
from mixmaker.users.errors import UserError
from mixmaker.users.orders import OrderState

MEMBER_STATES = tuple(s.value for s in (OrderState.ALLOCATING, OrderState.ACTIVE, OrderState.STOPPING))
DONE_STATES = (OrderState.SETTLED.value, OrderState.REFUNDED.value)


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def collect(path: str | Path) -> dict[str, Any]:
    # as_uri() escapes '#', '?' and '%': a bare "file:{path}" opened "a" for "a#b.db"
    db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        _check_schema(db, path)
        return _collect(db)
    except sqlite3.Error as e:  # not a database at all, a damaged one, another program's tables
        raise UserError(f"cannot read {path}: {e}") from None
    finally:
        db.close()


def _check_schema(db: sqlite3.Connection, path: str | Path) -> None:
    """A database this mixmaker can read, or a UserError that says why not (an empty file or
    another program's database would otherwise read as an empty engine; a newer schema as ours)."""
    from mixmaker.funds import ledger
    from mixmaker.users import alerts, intake, orders, payouts

    if "schema_versions" not in _tables(db):
        raise UserError(f"{path} is not a mixmaker database (empty, or another program's)")
    known = {"ledger": ledger.MIGRATIONS, "user_orders": orders.MIGRATIONS, "user_payouts": payouts.MIGRATIONS,
             "user_alerts": alerts.MIGRATIONS, "user_intake": intake.MIGRATIONS}
    for component, version in db.execute("SELECT component, version FROM schema_versions ORDER BY component"):
        if component in known and version > len(known[component]):
            raise UserError(f"{path} was written by a newer mixmaker ({component} schema version {version}, this "
                            f"one reads up to {len(known[component])}): upgrade mixmaker to read it")


def _collect(db: sqlite3.Connection) -> dict[str, Any]:
    tables = _tables(db)
    decimals = dict(db.execute("SELECT asset, decimals FROM ledger_assets")) if "ledger_assets" in tables else {}

    def fmt(asset: str, units: int) -> str:
        return format_units(int(units), decimals.get(asset, 8))

    report: dict[str, Any] = {"orders": {}, "live_orders": [], "pools": [], "balances": [], "payouts": {},
                              "alerts": [], "reconciliation": "never", "ledger_ok": None, "halts": [], "moves": []}
    balances: dict[str, dict[str, int]] = {}
    if "ledger_balances" in tables:
        for account, asset, units in db.execute("SELECT account, asset, units FROM ledger_balances WHERE units <> 0 "
                                                "ORDER BY account, asset"):
            balances.setdefault(account, {})[asset] = int(units)
            report["balances"].append({"account": account, "asset": asset, "units": int(units),
                                       "amount": fmt(asset, units)})
        per_asset: Counter[str] = Counter()
        for asset_units in balances.values():
            for a, u in asset_units.items():
                per_asset[a] += u
        report["ledger_ok"] = not any(per_asset.values())
    if "user_orders" in tables:
        counts = dict(db.execute("SELECT state, COUNT(*) FROM user_orders GROUP BY state"))
        report["orders"] = {s.value: counts.get(s.value, 0) for s in OrderState}
        for oid, state, pool_id, payer in db.execute(
                "SELECT order_id, state, pool_id, payer FROM user_orders WHERE state NOT IN (?, ?) "
                "ORDER BY created_ns", DONE_STATES):
            owed = {a: fmt(a, -u) for a, u in balances.get(f"order:{oid}", {}).items()}
            report["live_orders"].append({"order_id": oid, "state": state, "pool": pool_id, "payer": payer, "owed": owed})
        members = Counter(r[0] for r in db.execute(
            f"SELECT pool_id FROM user_orders WHERE state IN ({', '.join('?' for _ in MEMBER_STATES)})", MEMBER_STATES))
    else:
        members = Counter()
    shares: dict[str, int] = {}
    if "pool_shares" in tables:  # the pools' own table (mixmaker.users.pools), when it exists
        burned = {r[0] for r in db.execute("SELECT order_id FROM pool_burns")} if "pool_burns" in tables else set()
        for oid, pid, s in db.execute("SELECT order_id, pool_id, shares FROM pool_shares"):
            if oid not in burned:
                shares[pid] = shares.get(pid, 0) + int(s)
    pools = sorted({a[len("pool:"):] for a in balances if a.startswith("pool:")} | set(members) | set(shares))
    for pid in pools:
        held = {a: fmt(a, -u) for a, u in balances.get(f"pool:{pid}", {}).items()}
        report["pools"].append({"pool": pid, "members": members.get(pid, 0), "holds": held,
                                "shares": str(shares[pid]) if pid in shares else None})
    if "user_payouts" in tables:
        report["payouts"] = dict(db.execute("SELECT state, COUNT(*) FROM user_payouts GROUP BY state"))
    if "user_alerts" in tables:
        report["alerts"] = [{"kind": k, "subject": s, "message": msg} for k, s, msg in db.execute(
            "SELECT kind, subject, message FROM user_alerts ORDER BY at_ns DESC LIMIT 20")]
    if "funds_alerts" in tables:
        report["alerts"] += [{"kind": k, "subject": s, "message": msg} for k, s, msg in db.execute(
            "SELECT kind, subject, message FROM funds_alerts ORDER BY at_ns DESC LIMIT 20")]
    if "funds_halts" in tables:
        report["halts"] = [{"halt": h, "kind": k, "account": a, "asset": asset, "units": int(u), "message": msg}
                           for h, k, a, asset, u, msg in db.execute(
                               "SELECT halt_id, kind, account, asset, units, message FROM funds_halts "
                               "WHERE cleared_ns = 0 ORDER BY raised_ns")]
    if "reconciliations" in tables:
        report["reconciliation"] = _last_reconciliation(db, tables, fmt)
    report["moves"] = []
    if "fund_moves" in tables:  # moves in flight of issue 15's stand-in allocator
        report["moves"] = [{"move_id": m, "direction": d, "asset": a, "amount": fmt(a, u), "state": st,
                            "account": "", "last_signal": ""}
                           for m, d, a, u, st in db.execute(
                               "SELECT move_id, direction, asset, units, state FROM fund_moves "
                               "WHERE state IN (?, ?) ORDER BY updated_ns",
                               (StandInMove.NEW.value, StandInMove.SENT.value))]
    if "funds_moves" in tables:  # the funds layer's moves (mixmaker.funds.moves)
        report["moves"] += [{"move_id": mid, "direction": d, "account": a, "asset": asset, "amount": fmt(asset, u),
                             "state": st, "last_signal": sig}
                            for mid, d, a, asset, u, st, sig in db.execute(
                                "SELECT move_id, direction, venue_account, asset, send_units, state, last_signal "
                                "FROM funds_moves WHERE state NOT IN (?, ?) ORDER BY planned_ns",
                                (MoveState.ARRIVED.value, MoveState.FAILED.value))]
    return report


def _last_reconciliation(db: sqlite3.Connection, tables: set[str], fmt: Callable[[str, int], str]) -> Any:
    """The funds layer's last check (`mixmaker.funds.reconcile`): when, ok or not, and each
    difference by account, asset and amount, with the venues it could not ask; "never" before one."""
    row = db.execute("SELECT check_id, finished_ns, ok, summary, detail FROM reconciliations "
                     "ORDER BY finished_ns DESC LIMIT 1").fetchone()
    if row is None:
        return "never"
    check_id, at_ns, ok, summary, detail = row
    diffs = []
    if "reconciliation_diffs" in tables:
        diffs = [{"account": a, "asset": asset, "ledger": fmt(asset, lu), "observed": fmt(asset, au),
                  "difference": fmt(asset, d)}
                 for a, asset, lu, au, d in db.execute(
                     "SELECT account, asset, ledger_units, actual_units, diff_units FROM reconciliation_diffs "
                     "WHERE check_id = ? AND diff_units <> 0 ORDER BY account, asset", (check_id,))]
    try:
        errors = [str(e) for e in json.loads(detail).get("errors", [])] if detail else []
    except (ValueError, AttributeError):
        errors = []
    at = datetime.fromtimestamp(int(at_ns) / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return {"check_id": check_id, "finished_ns": int(at_ns), "at": at, "ok": bool(ok), "summary": summary,
            "differences": diffs, "errors": errors}


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True)


def render_text(r: dict[str, Any]) -> str:
    out = ["USER ORDERS"]
    if r["orders"]:
        out.append("  " + ("  ".join(f"{s} {n}" for s, n in r["orders"].items() if n) or "none"))
        for o in r["live_orders"]:
            owed = ", ".join(f"{v} {a}" for a, v in o["owed"].items()) or "-"
            out.append(f"  {o['order_id']}  {o['state']:<15} {o['pool']:<28} owed {owed}")
    else:
        out.append("  none")
    out.append("POOLS")
    for p in r["pools"] or []:
        holds = ", ".join(f"{v} {a}" for a, v in p["holds"].items()) or "nothing"
        extra = f"  shares {p['shares']}" if p["shares"] is not None else ""
        out.append(f"  {p['pool']:<28} members {p['members']}  holds {holds}{extra}")
    if not r["pools"]:
        out.append("  none")
    out.append("BALANCES (holdings +, claims -)")
    for b in r["balances"]:
        out.append(f"  {b['account']:<48} {b['asset']:<8} {b['amount']:>26}")
    if not r["balances"]:
        out.append("  none")
    if r["ledger_ok"] is not None:
        out.append("  where the money is = whose it is" if r["ledger_ok"] else "  LEDGER DOES NOT BALANCE")
    out.append("REFUNDS AND PAYOUTS  " + ("  ".join(f"{s} {n}" for s, n in sorted(r["payouts"].items())) or "none"))
    if r["alerts"]:
        out.append("ALERTS")
        out += [f"  {a['kind']} {a['subject']}: {a['message']}" for a in r["alerts"]]
    out.append("MOVES IN FLIGHT" + ("" if r.get("moves") else "  none"))
    out += [f"  {m['move_id']}  {m['direction']:<11} {m.get('account', ''):<10} {m['amount']:>20} {m['asset']:<6} "
            f"{m['state']:<8} {m.get('last_signal', '')}" for m in r.get("moves", [])]
    if r.get("halts"):
        out.append("MOVES HALTED (mixmaker funds clear-halt --db PATH --reason TEXT once fixed)")
        out += [f"  {h['kind']} {h['account']} {h['asset']}: {h['message']}" for h in r["halts"]]
    rec = r["reconciliation"]
    if isinstance(rec, str):
        out.append(f"LAST RECONCILIATION  {rec}")
    elif rec["ok"]:
        out.append(f"LAST RECONCILIATION  ok at {rec['at']}: ledger = Mixin wallet = exchange accounts, to the unit")
    else:
        out.append(f"LAST RECONCILIATION  DIFFERENCES at {rec['at']}")
        out += [f"  {d['account']:<24} {d['asset']:<8} ledger {d['ledger']:>22}  venue {d['observed']:>22}  "
                f"difference {d['difference']}" for d in rec["differences"]]
        out += [f"  not compared: {e}" for e in rec["errors"]]
    return "\n".join(out)
