"""Fills into the ledger: attribution by the order's pool, exact units, and fees finer than a ledger
unit booked at their ceiling with the excess given back in whole units (the ledger's exchange
account is always the floor of what the venue really holds)."""

from __future__ import annotations

from fractions import Fraction
from math import floor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixmaker._core import Side
from mixmaker.funds.accounts import ROUNDING, Flow, exchange, inflow, pool, user_order
from mixmaker.funds.ledger import Ledger
from mixmaker.orders import FillEvent
from mixmaker.orders.protocol import OrderRequest
from mixmaker.store import SqliteStore
from mixmaker.users.pool_fills import FillBook, FillMarket
from mixmaker.users.pools import PoolError

M = FillMarket("bx", "BTCUSDT", "BTC", "USDT", price_decimals=2, size_decimals=5, currencies={"XBT": "BTC"})
P = "bx:BTC/USDT:p"


def setup() -> tuple[SqliteStore, Ledger, FillBook]:
    store = SqliteStore()
    ledger = Ledger(store)
    for a in ("BTC", "USDT"):
        ledger.register_asset(a, 8)
    ledger.post_now("payment:seed", [*inflow(Flow.PAYMENT, "BTC", 10**8, exchange("bx"), user_order("o")),
                                     *inflow(Flow.PAYMENT, "USDT", 10**12, exchange("bx"), user_order("o"))])
    fills = FillBook(store, ledger, [M])
    fills.record_order("bx", OrderRequest("c1", "BTCUSDT", Side.BUY, 6_000_000, 1000), P)
    return store, ledger, fills


def fill(trade: str, side: str = "buy", price: int = 6_000_000, qty: int = 1000, fee: int = 0, asset: str = "USDT",
         cid: str = "c1") -> FillEvent:
    return FillEvent("bx", "BTCUSDT", trade, cid, Side.from_value(side), price, qty, fee, asset, True)


def test_a_buy_books_both_assets_and_the_fee_to_the_pool_whose_order_filled():
    _, ledger, fills = setup()
    # 0.01 BTC at 60000.00, fee 0.00001 BTC (1e-12 scale)
    assert fills.book(fill("t1", qty=1000, fee=10_000_000, asset="BTC"))
    assert ledger.balance(pool(P), "BTC") == -(10**6 - 1000)  # the pool owns what it bought, less the fee
    assert ledger.balance(pool(P), "USDT") == 600 * 10**8  # and owes what it paid
    assert ledger.owed(exchange("bx"), "BTC") == 10**8 + 10**6 - 1000
    assert ledger.fees("BTC")[Flow.FEE_TRADING] == 1000
    assert not fills.book(fill("t1", qty=1000, fee=10_000_000, asset="BTC"))  # the same trade: nothing more
    assert ledger.transaction("fill:bx:BTCUSDT:t1").ref == P
    assert ledger.verify() == []


def test_fees_in_a_venue_currency_use_the_ledger_symbol():
    _, ledger, fills = setup()
    fills.book(fill("t1", side="sell", fee=10_000, asset="XBT"))
    assert ledger.fees("BTC")[Flow.FEE_TRADING] == 1


def test_a_fill_of_an_order_without_a_pool_or_of_an_unknown_market_is_refused():
    _, ledger, fills = setup()
    with pytest.raises(PoolError, match="belongs to no pool"):
        fills.book(fill("t1", cid="stranger"))
    with pytest.raises(PoolError, match="unknown market"):
        fills.book(FillEvent("bx", "ETHUSDT", "t2", "c1", Side.BUY, 1, 1, 0, "", True))
    assert ledger.transactions(account=pool(P)) == []


def test_a_market_finer_than_the_ledger_is_refused():
    store, ledger, fills = setup()
    with pytest.raises(PoolError, match="would not be exact"):
        fills.add_market(FillMarket("bx", "X", "BTC", "USDT", price_decimals=4, size_decimals=5))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 10**6), st.integers(1, 2000),
                          st.integers(0, 10**13)), min_size=1, max_size=25))
def test_the_exchange_account_is_the_floor_of_what_the_venue_holds(trades):
    _, ledger, fills = setup()
    true_usdt = Fraction(10**12)  # in ledger units, exact
    for n, (side, price, qty, fee) in enumerate(trades):
        fills.book(fill(f"t{n}", side, price, qty, fee, "USDT"))
        value = price * qty * 10  # price 2 + size 5 decimals -> 7; the ledger's 8
        true_usdt += (value if side == "sell" else -value) - Fraction(fee, 10**4)
        assert ledger.owed(exchange("bx"), "USDT") == floor(true_usdt)
    assert 0 <= ledger.owed(ROUNDING, "USDT") <= len(trades)
    assert ledger.verify() == []
