"""What just happened, read back from the durable tables the layers write (so it is the truth,
and a restarted engine tells it the same way): user orders' transitions, fills, refunds and
payouts. Each new row becomes one log line with its ids and one entry of `recent`, which the
dashboard shows."""

from __future__ import annotations

import collections
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mixmaker.engine.logs import event
from mixmaker.funds.ledger import Ledger
from mixmaker.money import to_decimal
from mixmaker.store import Store
from mixmaker.users.catalog import Catalog

log = logging.getLogger("mixmaker.activity")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")  # a snapshot caused it


@dataclass(frozen=True)
class Activity:
    at_ns: int
    kind: str  # "order", "fill", "payout"
    text: str
    ids: dict[str, str] = field(default_factory=dict)


class _Cursor:
    """Rows after (time, key), each once even when several share a timestamp."""

    def __init__(self, since_ns: int) -> None:
        self.t = since_ns
        self.keys: set[str] = set()

    def fresh(self, rows: list[tuple[int, str, Any]]) -> list[tuple[int, str, Any]]:
        out = []
        for t, key, row in sorted(rows, key=lambda r: (r[0], r[1])):
            if t < self.t or (t == self.t and key in self.keys):
                continue
            if t > self.t:
                self.t, self.keys = t, set()
            self.keys.add(key)
            out.append((t, key, row))
        return out


class ActivityTail:
    def __init__(self, store: Store, ledger: Ledger, *, catalog: Catalog | None = None, since_ns: int | None = None,
                 keep: int = 200, on_activity: Callable[[Activity], None] | None = None) -> None:
        self.store, self.ledger, self.catalog = store, ledger, catalog
        start = time.time_ns() if since_ns is None else since_ns
        self.cursors = {k: _Cursor(start) for k in ("order", "fill", "payout")}
        self.recent: collections.deque[Activity] = collections.deque(maxlen=keep)
        self.counts: collections.Counter[str] = collections.Counter()
        self.on_activity = on_activity

    def _fill_text(self, pool_id: str, d: dict[str, Any]) -> str:
        spec = self.catalog.pool_by_id(pool_id) if self.catalog is not None else None
        price, qty = int(d.get("price", 0)), int(d.get("qty", 0))
        if spec is None:
            return f"{qty} @ {price} (venue units)"
        m = spec.market
        return (f"{to_decimal(qty, m.size_decimals)} {m.base} @ {to_decimal(price, m.price_decimals)} "
                f"{m.quote}")

    def _amount(self, asset: str, units: int) -> str:
        try:
            return self.ledger.format(asset, units)
        except Exception:  # noqa: BLE001 - an asset the ledger does not know: raw units
            return f"{units} units"

    def _tables(self) -> set[str]:
        return {r[0] for r in self.store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def poll(self) -> list[Activity]:
        tables = self._tables()
        new: list[Activity] = []
        if "user_order_events" in tables:
            c = self.cursors["order"]
            rows = self.store.query("SELECT at_ns, order_id, seq, event, cause, from_state, to_state FROM user_order_events "
                                    "WHERE at_ns >= ?", (c.t,))
            for t, _, (_at, oid, _seq, ev, cause, frm, to) in c.fresh([(r[0], f"{r[1]}:{r[2]}", r) for r in rows]):
                new.append(Activity(t, "order", f"user order {oid[:8]}: {frm or 'new'} -> {to} on {ev}",
                                    {"user_order": oid, **({"snapshot": cause} if _UUID.match(cause) else {})}))
        if "ledger_transactions" in tables:
            c = self.cursors["fill"]
            rows = self.store.query("SELECT created_ns, tx_key, ref, detail FROM ledger_transactions "
                                    "WHERE cause = 'fill' AND created_ns >= ?", (c.t,))
            for t, _key, (_, _, pool, detail) in c.fresh([(r[0], r[1], r) for r in rows]):
                d = json.loads(detail or "{}")
                new.append(Activity(t, "fill", f"fill {d.get('side')} {self._fill_text(pool, d)}",
                                    {"pool": pool, "order": str(d.get("client_id", ""))}))
        if "user_payouts" in tables:
            c = self.cursors["payout"]
            rows = self.store.query("SELECT updated_ns, payout_id, kind, order_id, asset, units, state, reason, request_id "
                                    "FROM user_payouts WHERE updated_ns >= ?", (c.t,))
            for t, _, (_, pid, kind, oid, asset, units, state, reason, req) in c.fresh(
                    [(r[0], f"{r[1]}:{r[6]}", r) for r in rows]):
                amount = self._amount(asset, units)
                text = f"{kind} {amount} {asset} {state}" + (f" ({reason})" if reason else "") + (
                    f" for user order {oid[:8]}" if oid else "")
                new.append(Activity(t, "payout", text, {"user_order": oid, "payout": pid, "request": req}))
        for a in sorted(new, key=lambda a: a.at_ns):
            self.recent.append(a)
            self.counts[a.kind] += 1
            event(log, a.text, ids=a.ids)
            if self.on_activity is not None:
                self.on_activity(a)
        return new
