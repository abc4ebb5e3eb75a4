"""The ledger at its edges: amounts at the i64 limit of a BIGINT, lifetime sums past it, ids with
':' inside, and two processes posting the same key on one SQLite file."""

from __future__ import annotations

import threading

import pytest

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import Flow
from mixmaker.funds.errors import LedgerConflictError, LedgerError
from mixmaker.funds.ledger import MAX_UNITS, Cause, Ledger, tx_key
from mixmaker.store import SqliteStore

ORDER = acc.user_order("o1")


@pytest.fixture
def ledger(tmp_path):
    lg = Ledger(SqliteStore(tmp_path / "l.db"))
    lg.register_asset("ETH", 18)  # 2**63 units are only 9.22 ETH here
    return lg


def test_a_balance_past_the_i64_limit_is_refused_not_turned_into_a_float(ledger):
    ledger.post_now("payment:a", acc.inflow(Flow.PAYMENT, "ETH", MAX_UNITS - 10, acc.WALLET, ORDER))
    # SQLite makes an overflowing `units + ?` a REAL: the wallet would silently hold a float
    with pytest.raises(LedgerError, match="more ETH than the ledger holds"):
        ledger.post_now("payment:b", acc.inflow(Flow.PAYMENT, "ETH", 11, acc.WALLET, acc.user_order("o2")))
    assert ledger.transaction("payment:b") is None
    wallet = ledger.balance(acc.WALLET, "ETH")
    assert type(wallet) is int and wallet == MAX_UNITS - 10
    assert ledger.verify() == []


def test_an_entry_past_the_i64_limit_is_a_ledger_error_not_an_overflow_error(ledger):
    with pytest.raises(LedgerError, match="more than the ledger holds"):
        ledger.post_now("payment:c", acc.inflow(Flow.PAYMENT, "ETH", 2**63, acc.WALLET, ORDER))
    with pytest.raises(LedgerError):
        ledger.post_now("payment:d", acc.outflow(Flow.PAYOUT, "ETH", -(2**63) - 1, acc.WALLET, ORDER))
    assert ledger.verify() == [] and ledger.balances() == {}


def test_lifetime_sums_past_the_i64_limit_stay_exact_in_flows_and_verify(ledger):
    # Each balance stays inside a BIGINT, but what flowed through passes 2**63: SQLite's SUM
    # raised "integer overflow" on it.
    big = MAX_UNITS - 5
    for n in range(3):
        ledger.post_now(tx_key(Cause.PAYMENT, f"s{n}"), acc.inflow(Flow.PAYMENT, "ETH", big, acc.WALLET, ORDER))
        ledger.post_now(tx_key(Cause.PAYOUT, f"o{n}"), acc.outflow(Flow.PAYOUT, "ETH", big - n, acc.WALLET, ORDER))
    flows = ledger.flows("ETH")
    assert flows[(Flow.PAYMENT, "ETH")] == 3 * big
    assert flows[(Flow.PAYOUT, "ETH")] == -(3 * big - 3)
    assert ledger.owed(ORDER, "ETH") == 3
    assert ledger.verify() == []
    # a hand-edited entry far past the limit is still found, exactly
    with ledger.store.transaction() as tx:
        tx.execute("UPDATE ledger_entries SET units = units - 7 WHERE tx_key = 'payment:s1' AND account = ?",
                   (acc.WALLET.name,))
    problems = ledger.verify()
    assert "transaction payment:s1 does not balance in ETH: -7" in problems
    assert any("kept balance" in p for p in problems)
