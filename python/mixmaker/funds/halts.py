"""Halts of moving money: while any is active, no move is planned or sent (moves already in
flight are still followed: following moves nothing; trading goes on).

A halt names what it is about (the account, the asset and the amount a reconciliation found
different; the deposit address that changed) and stays until an operator clears it after a fix
(`mixmaker funds clear-halt --db PATH --reason TEXT`), with the reason recorded. A halt is
raised once per subject: raising it again while it is active changes nothing.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass
from typing import Any

from mixmaker.funds.errors import FundsError
from mixmaker.store import Store
from mixmaker.store.base import Transaction

MIGRATIONS = [
    """CREATE TABLE funds_halts (
        halt_id TEXT PRIMARY KEY, kind TEXT NOT NULL, account TEXT NOT NULL, asset TEXT NOT NULL,
        units BIGINT NOT NULL, message TEXT NOT NULL, detail TEXT NOT NULL, raised_ns BIGINT NOT NULL,
        cleared_ns BIGINT NOT NULL, cleared_reason TEXT NOT NULL)""",
]


class HaltKind(enum.Enum):
    RECONCILIATION = "reconciliation"  # the ledger and a venue differ over two checks
    ADDRESS_CHANGED = "address_changed"  # a deposit address is not the one stored


class HaltError(FundsError):
    """A halt that cannot be cleared as asked (no such halt, no reason given)."""


@dataclass(frozen=True, slots=True)
class Halt:
    halt_id: str
    kind: HaltKind
    account: str  # a ledger account name (exchange:binance, wallet:mixin)
    asset: str
    units: int  # the difference (actual - ledger) for a reconciliation halt
    message: str
    detail: dict[str, Any]
    raised_ns: int


def migrate(store: Store) -> None:
    store.migrate("funds_halts", MIGRATIONS)


def raise_halt(tx: Transaction, kind: HaltKind, account: str, asset: str, units: int, message: str,
               detail: dict[str, Any] | None = None) -> bool:
    """Raises a halt unless the same one (kind, account, asset) is active; True if raised now."""
    active = tx.query("SELECT 1 FROM funds_halts WHERE kind = ? AND account = ? AND asset = ? AND cleared_ns = 0",
                      (kind.value, account, asset))
    if active:
        return False
    now = time.time_ns()
    halt_id = f"{kind.value}:{account}:{asset}:{now}"
    tx.execute("INSERT INTO funds_halts (halt_id, kind, account, asset, units, message, detail, raised_ns, cleared_ns, "
               "cleared_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, '')",
               (halt_id, kind.value, account, asset, units, message, json.dumps(detail or {}, sort_keys=True), now))
    return True


def active(q: Store | Transaction) -> list[Halt]:
    rows = q.query("SELECT halt_id, kind, account, asset, units, message, detail, raised_ns FROM funds_halts "
                   "WHERE cleared_ns = 0 ORDER BY raised_ns, halt_id")
    return [Halt(r[0], HaltKind(r[1]), r[2], r[3], int(r[4]), r[5], json.loads(r[6]), int(r[7])) for r in rows]


def halted(q: Store | Transaction) -> bool:
    return bool(q.query("SELECT 1 FROM funds_halts WHERE cleared_ns = 0 LIMIT 1"))


def clear(store: Store, reason: str, halt_id: str | None = None) -> list[Halt]:
    """Clears every active halt (or the one named), recording why; returns what was cleared."""
    if not reason or not reason.strip():
        raise HaltError("clearing a halt needs a reason (what was fixed)")
    with store.transaction() as tx:
        cleared = [h for h in active(tx) if halt_id in (None, h.halt_id)]
        if halt_id is not None and not cleared:
            raise HaltError(f"no active halt {halt_id!r}")
        now = time.time_ns()
        for h in cleared:
            tx.execute("UPDATE funds_halts SET cleared_ns = ?, cleared_reason = ? WHERE halt_id = ?",
                       (now, reason.strip(), h.halt_id))
    return cleared
