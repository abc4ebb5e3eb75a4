"""The funds layer's alerts: written in the same store transaction as the fact they report (a crash
cannot lose one), logged once, shown by `mixmaker status` beside the user layer's."""

from __future__ import annotations

import enum
import logging
import time

from mixmaker.store import Store
from mixmaker.store.base import Transaction

log = logging.getLogger("mixmaker.funds.alerts")

MIGRATIONS = [
    """CREATE TABLE funds_alerts (
        alert_key TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL, message TEXT NOT NULL,
        at_ns BIGINT NOT NULL)""",
]


class FundsAlert(enum.Enum):
    MOVE_STUCK = "move_stuck"  # a move past its expected time (the move, the side, the last signal)
    MOVE_FAILED = "move_failed"  # the venue or the network refused a move: reversed
    MOVE_IN_DOUBT = "move_in_doubt"  # an unclear send on a venue without client ids, not found: not resent
    MOVE_MISMATCH = "move_mismatch"  # what arrived is not what was sent, or a venue says the impossible
    ADDRESS_CHANGED = "address_changed"  # a deposit address is not the one stored: moves halt
    RECONCILIATION = "reconciliation"  # the ledger and a venue differ, twice: moves halt
    FEE_TOO_HIGH = "fee_too_high"  # a batch too small for its fee waits
    FEE_FLOAT_SHORT = "fee_float_short"  # bot:fees cannot pay a fee in another asset
    CONSOLIDATED = "consolidated"  # many small outputs merged (informational)


def migrate(store: Store) -> None:
    store.migrate("funds_alerts", MIGRATIONS)


def alert(tx: Transaction, kind: FundsAlert, subject: str, message: str) -> bool:
    """Records one alert (once per kind and subject); True if it is new."""
    new = tx.execute("INSERT INTO funds_alerts (alert_key, kind, subject, message, at_ns) VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT DO NOTHING",
                     (f"{kind.value}:{subject}", kind.value, subject, message, time.time_ns())) > 0
    if new:
        log.warning("alert %s %s: %s", kind.value, subject, message,
                    extra={"event": "funds_alert", "kind": kind.value, "subject": subject})
    return new


def alerts(store: Store, kind: FundsAlert | None = None) -> list[tuple[str, str, str]]:
    """(kind, subject, message), oldest first."""
    sql = "SELECT kind, subject, message FROM funds_alerts"
    params: tuple[object, ...] = ()
    if kind is not None:
        sql += " WHERE kind = ?"
        params = (kind.value,)
    return [(str(r[0]), str(r[1]), str(r[2])) for r in store.query(sql + " ORDER BY at_ns, alert_key", params)]
