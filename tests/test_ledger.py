"""The ledger: balanced, idempotent by key, never overdrawn, balances derivable from entries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixmaker.errors import MixmakerError
from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import Account, AccountKind, Entry, Flow
from mixmaker.funds.errors import LedgerConflictError, LedgerError, OverdraftError, UnbalancedError
from mixmaker.funds.ledger import Cause, Ledger, tx_key
from mixmaker.store import SqliteStore

USER = acc.user_order("u1")
POOL = acc.pool("binance:BTC/USDT:tight")
EX = acc.exchange("binance-main")


@pytest.fixture
def ledger(tmp_path):
    lg = Ledger(SqliteStore(tmp_path / "l.db"))
    lg.register_asset("BTC", 8)
    lg.register_asset("USDT", 8)
    return lg


def pay(lg: Ledger, snapshot: str, units: int, asset: str = "USDT", who: Account = USER) -> bool:
    return lg.post_now(tx_key(Cause.PAYMENT, snapshot), acc.inflow(Flow.PAYMENT, asset, units, acc.WALLET, who), ref="u1")


def test_payment_mint_fill_payout_balance_and_flows(ledger):
    assert pay(ledger, "s1", 1000_00000000)
    assert ledger.owed(USER, "USDT") == 1000_00000000 and ledger.balance(acc.WALLET, "USDT") == 1000_00000000
    ledger.post_now("move-sent:m1", acc.transfer(Flow.MOVE, "USDT", 1000_00000000, acc.WALLET, acc.transit("m1")))
    ledger.post_now("move-arrived:m1", acc.transfer(Flow.MOVE, "USDT", 1000_00000000, acc.transit("m1"), EX))
    ledger.post_now(tx_key(Cause.MINT, "u1"), acc.transfer(Flow.MINT, "USDT", 1000_00000000, USER, POOL))
    # The pool buys 0.01 BTC for 600 USDT and pays a 0.6 USDT fee.
    ledger.post_now(tx_key(Cause.FILL, "binance-main", "BTCUSDT", "7"), [
        *acc.inflow(Flow.TRADE, "BTC", 1_000_000, EX, POOL),
        *acc.outflow(Flow.TRADE, "USDT", 600_00000000, EX, POOL),
        *acc.outflow(Flow.FEE_TRADING, "USDT", 60_000_000, EX, POOL),
    ])
    assert ledger.holdings_of(POOL) == {"BTC": 1_000_000, "USDT": 399_40000000}
    assert ledger.holdings_of(EX) == {"BTC": 1_000_000, "USDT": 399_40000000}
    assert ledger.verify() == []
    flows = ledger.flows("USDT")
    assert flows[(Flow.PAYMENT, "USDT")] == 1000_00000000
    assert flows[(Flow.TRADE, "USDT")] == -600_00000000
    assert ledger.fees("USDT")[Flow.FEE_TRADING] == 60_000_000
    assert flows.get((Flow.MINT, "USDT"), 0) == 0  # internal: order -> pool
    # What came in, less what went out, is what the claims hold.
    held = sum(-u for (a, asset), u in ledger.balances().items() if asset == "USDT" and a.side is acc.Side.CLAIM)
    assert sum(v for (f, a), v in flows.items() if a == "USDT") == held
    assert [p.key for p in ledger.transactions(ref="u1")] == ["payment:s1"]
    assert {p.key for p in ledger.transactions(account=POOL)} == {"mint:u1", "fill:binance-main:BTCUSDT:7"}


def test_same_key_same_entries_is_a_no_op_other_entries_a_conflict(ledger):
    assert pay(ledger, "s1", 5)
    assert not pay(ledger, "s1", 5)
    assert ledger.owed(USER, "USDT") == 5
    with pytest.raises(LedgerConflictError):
        pay(ledger, "s1", 6)
    assert ledger.owed(USER, "USDT") == 5 and ledger.verify() == []


def test_refusals_leave_nothing_behind(ledger):
    with pytest.raises(UnbalancedError):
        ledger.post_now("payment:x", [Entry(acc.WALLET, "USDT", 5, Flow.PAYMENT), Entry(USER, "USDT", -4, Flow.PAYMENT)])
    with pytest.raises(LedgerError):
        ledger.post_now("payment:y", acc.inflow(Flow.PAYMENT, "DOGE", 5, acc.WALLET, USER))  # unknown asset
    with pytest.raises(LedgerError):
        ledger.post_now("payment:z", [])
    with pytest.raises(LedgerError):
        acc.inflow(Flow.PAYMENT, "USDT", 5, USER, acc.WALLET)  # sides swapped
    with pytest.raises(LedgerError):
        Entry(USER, "USDT", 1.5, Flow.PAYMENT)  # type: ignore[arg-type]
    pay(ledger, "s1", 5)
    with pytest.raises(OverdraftError) as e:  # pays out more than the order is owed
        ledger.post_now("payout:u1", acc.outflow(Flow.PAYOUT, "USDT", 6, acc.WALLET, USER))
    assert isinstance(e.value, MixmakerError)
    assert ledger.transaction("payout:u1") is None and ledger.transaction("payment:x") is None
    assert ledger.owed(USER, "USDT") == 5 and ledger.verify() == []


def test_fills_may_arrive_out_of_order(ledger):
    # A sell booked before the buy that funded it: transiently negative, then whole.
    ledger.post_now("fill:ex:S:2", [*acc.outflow(Flow.TRADE, "BTC", 3, EX, POOL), *acc.inflow(Flow.TRADE, "USDT", 9, EX, POOL)])
    ledger.post_now("fill:ex:S:1", [*acc.inflow(Flow.TRADE, "BTC", 3, EX, POOL), *acc.outflow(Flow.TRADE, "USDT", 8, EX, POOL)])
    assert ledger.holdings_of(POOL) == {"USDT": 1} and ledger.verify() == []


def test_assets_keep_their_scale(ledger, tmp_path):
    with pytest.raises(LedgerError):
        ledger.register_asset("BTC", 6)
    again = Ledger(ledger.store)
    assert again.decimals("BTC") == 8
    assert ledger.format("USDT", 150_000_000) == "1.50000000"


def test_verify_finds_a_kept_balance_edited_by_hand(ledger):
    pay(ledger, "s1", 5)
    with ledger.store.transaction() as tx:
        tx.execute("UPDATE ledger_balances SET units = 7 WHERE account = ?", (USER.name,))
    assert any("kept balance" in p for p in ledger.verify())


def test_account_names_round_trip():
    for a in (acc.WALLET, acc.ROUNDING, POOL, acc.unclaimed("dust"), acc.transit("m:1")):
        assert Account.parse(a.name) == a
    with pytest.raises(LedgerError):
        Account.parse("nope:1")
    assert AccountKind.TRANSIT.side is acc.Side.HOLDING and AccountKind.BOT.side is acc.Side.CLAIM


accounts = st.sampled_from([acc.WALLET, EX, acc.transit("m1"), USER, acc.user_order("u2"), POOL, acc.BOT_SHARE])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(accounts, accounts, st.integers(1, 10**6), st.sampled_from(["BTC", "USDT"])), max_size=25))
def test_any_sequence_stays_balanced_and_derivable(moves):
    lg = Ledger(SqliteStore(":memory:"))
    lg.register_asset("BTC", 8)
    lg.register_asset("USDT", 8)
    for n, (a, b, units, asset) in enumerate(moves):
        try:
            if a.side is b.side:
                lg.post_now(f"adjustment:{n}", acc.transfer(Flow.MOVE, asset, units, a, b))
            elif a.side is acc.Side.HOLDING:
                lg.post_now(f"payment:{n}", acc.inflow(Flow.PAYMENT, asset, units, a, b))
            else:
                lg.post_now(f"payout:{n}", acc.outflow(Flow.PAYOUT, asset, units, b, a))
        except OverdraftError:
            pass
    assert lg.verify() == []
    for (a, _asset), units in lg.balances().items():
        assert (units >= 0) if a.side is acc.Side.HOLDING else (units <= 0)
