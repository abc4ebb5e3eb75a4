"""Alerts an operator must see: written durably in the same store transaction as the fact they
report (so a crash cannot lose one), logged once, shown by `mixmaker status`."""

from __future__ import annotations

import enum
import logging
import time

from mixmaker.store import Store
from mixmaker.store.base import Transaction

log = logging.getLogger("mixmaker.users.alerts")

MIGRATIONS = [
    """CREATE TABLE user_alerts (
        alert_key TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL, message TEXT NOT NULL,
        at_ns BIGINT NOT NULL)""",
]


class AlertKind(enum.Enum):
    UNKNOWN_DEPOSIT = "unknown_deposit"  # money arrived with no known cause: kept in unclaimed:unknown
    UNEXPECTED_OUTGOING = "unexpected_outgoing"  # money left the wallet and no payment of ours explains it
    NOT_OUR_SNAPSHOT = "not_our_snapshot"  # a snapshot of another user than the bot
    PAYMENT_REFUSED = "payment_refused"  # Mixin refused a refund or payout for good
    RETURN_FAILED = "return_failed"  # an order's funds could not come back from the exchange
    WALLET_SHORT = "wallet_short"  # a refund or payout waits: the wallet holds too little of its asset


def migrate(store: Store) -> None:
    store.migrate("user_alerts", MIGRATIONS)


def alert(tx: Transaction, kind: AlertKind, subject: str, message: str) -> None:
    """Records one alert (once per kind and subject)."""
    if tx.execute("INSERT INTO user_alerts (alert_key, kind, subject, message, at_ns) VALUES (?, ?, ?, ?, ?) "
                  "ON CONFLICT DO NOTHING", (f"{kind.value}:{subject}", kind.value, subject, message, time.time_ns())):
        log.warning("alert %s %s: %s", kind.value, subject, message)


def alerts(store: Store) -> list[tuple[str, str, str]]:
    """(kind, subject, message), oldest first."""
    return [(str(k), str(s), str(m)) for k, s, m in store.query(
        "SELECT kind, subject, message FROM user_alerts ORDER BY at_ns, alert_key")]
