"""The ledger at its edges: amounts at the i64 limit of a BIGINT, lifetime sums past it, ids with
':' inside, and two processes posting the same key on one SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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


def test_ids_with_colons_inside_never_share_a_key(ledger):
    a = tx_key(Cause.FILL, "binance", "BTC/USDT", "7:8")
    b = tx_key(Cause.FILL, "binance", "BTC/USDT:7", "8")
    c = tx_key(Cause.MINT, "o1:1")
    d = tx_key(Cause.MINT, "o1", "1")
    assert len({a, b, c, d, tx_key(Cause.MINT, "o1%3A1")}) == 5
    assert tx_key(Cause.FILL, "binance", "BTC/USDT", "7") == "fill:binance:BTC/USDT:7"  # plain ids read as is
    # Two fills whose keys collided were one transaction: the second (same entries) was
    # silently taken as already posted and its money never booked.
    ex, pool = acc.exchange("binance"), acc.pool("binance:BTC/USDT:tight")
    fill = acc.inflow(Flow.TRADE, "ETH", 5, ex, pool)
    assert ledger.post_now(a, fill) and ledger.post_now(b, fill)
    assert ledger.owed(pool, "ETH") == 10
    with pytest.raises(LedgerConflictError):
        ledger.post_now(a, acc.inflow(Flow.TRADE, "ETH", 6, ex, pool))


_POSTER = """
import json, sys, time
from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import Flow
from mixmaker.funds.ledger import Ledger
from mixmaker.store import SqliteStore
lg = Ledger(SqliteStore(sys.argv[1]))
lg.register_asset("ETH", 18)
while time.time() < float(sys.argv[2]):
    pass
new = [k for k in range(150) if lg.post_now(f"payment:s{k}", acc.inflow(Flow.PAYMENT, "ETH", k + 1, acc.WALLET,
                                                                         acc.user_order(f"o{k % 7}")))]
print(json.dumps(new))
"""


def test_two_processes_posting_the_same_keys_book_each_once(tmp_path):
    import time

    db = tmp_path / "shared.db"
    Ledger(SqliteStore(db)).register_asset("ETH", 18)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    go = str(time.time() + 1.5)
    procs = [subprocess.Popen([sys.executable, "-c", _POSTER, str(db), go], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert sorted(results[0] + results[1]) == list(range(150))  # each key new in exactly one process
    lg = Ledger(SqliteStore(db))
    assert lg.balance(acc.WALLET, "ETH") == sum(range(1, 151)) and lg.verify() == []


def test_held_no_float_decimal_fraction_or_bool_becomes_an_amount(ledger):
    from decimal import Decimal
    from fractions import Fraction

    from mixmaker.funds.accounts import Entry

    for bad in (1.0, Decimal("1"), Fraction(1), True, "1"):
        with pytest.raises(LedgerError, match="exact integers"):
            Entry(ORDER, "ETH", bad, Flow.PAYMENT)  # type: ignore[arg-type]
    ledger.post_now("payment:i", acc.inflow(Flow.PAYMENT, "ETH", 7, acc.WALLET, ORDER))
    assert all(type(u) is int for u in ledger.balances().values())
    assert all(type(u) is int for u in ledger.flows("ETH").values())
