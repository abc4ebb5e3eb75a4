"""Matching engine: price-time priority, partial fills, fees, locked funds, conservation."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixmaker.sim.exchange.accounts import MARKET
from mixmaker.sim.exchange.errors import (
    DuplicateOrder,
    FilterFailure,
    InsufficientBalance,
    OrderDoesNotExist,
    UnknownOrderCancel,
    UnknownSymbol,
    WouldTake,
)
from mixmaker.sim.exchange.matching import MatchingEngine, SymbolRules

SYM = "BTCUSDT"


def engine(**fees: D) -> MatchingEngine:
    eng = MatchingEngine([SymbolRules(SYM, "BTC", "USDT")], **fees)
    for acct in ("alice", "bob", "carol"):
        eng.accounts.credit(acct, "BTC", D("10"))
        eng.accounts.credit(acct, "USDT", D("1000000"))
    return eng


def test_price_then_time_priority() -> None:
    eng = engine()
    first = eng.submit("alice", SYM, "SELL", "LIMIT", D("1"), D("101"), "GTC").order
    second = eng.submit("bob", SYM, "SELL", "LIMIT", D("1"), D("101"), "GTC").order
    better = eng.submit("carol", SYM, "SELL", "LIMIT", D("1"), D("100.5"), "GTC").order
    out = eng.submit("alice", SYM, "BUY", "LIMIT", D("2"), D("101"), "GTC")
    # The better price trades first, then the earlier of the two at 101. Alice's own ask at 101 is
    # first in time, so Binance's default STP (EXPIRE_MAKER) expires it instead of trading it.
    assert [(f.price, f.qty) for f in out.fills] == [(D("100.5"), D("1")), (D("101"), D("1"))]
    assert better.status == "FILLED"
    assert first.status == "EXPIRED_IN_MATCH"
    assert second.status == "FILLED"
    assert out.order is not None and out.order.status == "FILLED"
    assert [u.execution for u in out.updates if u.order.order_id == first.order_id] == ["TRADE_PREVENTION"]


def test_partial_fill_rests_remainder_and_locks_only_what_rests() -> None:
    eng = engine(maker_fee=D("0"), taker_fee=D("0"))
    eng.submit("bob", SYM, "SELL", "LIMIT", D("0.3"), D("100"), "GTC")
    out = eng.submit("alice", SYM, "BUY", "LIMIT", D("1"), D("100"), "GTC")
    order = out.order
    assert order is not None
    assert order.status == "PARTIALLY_FILLED" and order.executed_qty == D("0.3")
    assert eng.accounts.locked("alice", "USDT") == D("70")  # 0.7 left at 100
    assert eng.accounts.free("alice", "USDT") == D("1000000") - D("100")
    assert eng.accounts.free("alice", "BTC") == D("10.3")
    _, bids, asks = eng.depth(SYM)
    assert bids == [(D("100"), D("0.7"))] and asks == []


def test_taker_at_better_price_releases_the_difference() -> None:
    eng = engine(maker_fee=D("0"), taker_fee=D("0"))
    eng.submit("bob", SYM, "SELL", "LIMIT", D("1"), D("90"), "GTC")
    eng.submit("alice", SYM, "BUY", "LIMIT", D("1"), D("100"), "GTC")
    assert eng.accounts.locked("alice", "USDT") == 0
    assert eng.accounts.free("alice", "USDT") == D("1000000") - D("90")


def test_fees_maker_and_taker_in_received_asset() -> None:
    eng = engine(maker_fee=D("0.001"), taker_fee=D("0.002"))
    eng.submit("bob", SYM, "SELL", "LIMIT", D("2"), D("100"), "GTC")
    out = eng.submit("alice", SYM, "BUY", "LIMIT", D("2"), D("100"), "GTC")
    (taker,) = out.fills
    assert taker.is_maker is False and taker.commission == D("0.004") and taker.commission_asset == "BTC"
    (maker,) = [f for f in eng.my_trades("bob", SYM)]
    assert maker.is_maker is True and maker.commission == D("0.2") and maker.commission_asset == "USDT"
    assert eng.accounts.free("alice", "BTC") == D("11.996")
    assert eng.accounts.free("bob", "USDT") == D("1000000") + D("199.8")
    assert eng.accounts.fees == {"BTC": D("0.004"), "USDT": D("0.2")}


def test_cancel_releases_funds_and_removes_level() -> None:
    eng = engine()
    out = eng.submit("alice", SYM, "SELL", "LIMIT", D("1.5"), D("200"), "GTC", client_order_id="my-1")
    assert eng.accounts.locked("alice", "BTC") == D("1.5")
    cancelled = eng.cancel("alice", SYM, client_order_id="my-1")
    assert cancelled.order is out.order and out.order.status == "CANCELED"
    assert eng.accounts.locked("alice", "BTC") == 0 and eng.accounts.free("alice", "BTC") == D("10")
    assert eng.depth(SYM)[2] == []
    assert cancelled.balances == {"alice": ["BTC"]}
    with pytest.raises(UnknownOrderCancel):
        eng.cancel("alice", SYM, client_order_id="my-1")
    with pytest.raises(UnknownOrderCancel):
        eng.cancel("bob", SYM, order_id=out.order.order_id)  # not bob's order


def test_duplicate_client_id_refused_while_open_then_reusable() -> None:
    eng = engine()
    eng.submit("alice", SYM, "BUY", "LIMIT", D("1"), D("50"), "GTC", client_order_id="dup")
    with pytest.raises(DuplicateOrder):
        eng.submit("alice", SYM, "BUY", "LIMIT", D("1"), D("51"), "GTC", client_order_id="dup")
    eng.submit("bob", SYM, "BUY", "LIMIT", D("1"), D("51"), "GTC", client_order_id="dup")  # other account
    eng.cancel("alice", SYM, client_order_id="dup")
    again = eng.submit("alice", SYM, "BUY", "LIMIT", D("1"), D("52"), "GTC", client_order_id="dup").order
    assert again is not None and eng.get_order("alice", SYM, client_order_id="dup") is again


def test_rejections_change_nothing() -> None:
    eng = engine()
    eng.submit("bob", SYM, "SELL", "LIMIT", D("1"), D("100"), "GTC")
    before = eng.depth(SYM)
    with pytest.raises(InsufficientBalance):
        eng.submit("alice", SYM, "SELL", "LIMIT", D("11"), D("100"), "GTC")
    with pytest.raises(WouldTake):
        eng.submit("alice", SYM, "BUY", "LIMIT_MAKER", D("1"), D("100"))
    with pytest.raises(FilterFailure, match="PRICE_FILTER"):
        eng.submit("alice", SYM, "BUY", "LIMIT", D("1"), D("99.001"), "GTC")
    with pytest.raises(FilterFailure, match="LOT_SIZE"):
        eng.submit("alice", SYM, "BUY", "LIMIT", D("0.000001"), D("99"), "GTC")
    with pytest.raises(FilterFailure, match="NOTIONAL"):
        eng.submit("alice", SYM, "BUY", "LIMIT", D("0.01"), D("99"), "GTC")
    with pytest.raises(UnknownSymbol):
        eng.submit("alice", "ETHUSDT", "BUY", "LIMIT", D("1"), D("99"), "GTC")
    with pytest.raises(OrderDoesNotExist):
        eng.get_order("alice", SYM, order_id=999)
    assert eng.depth(SYM) == before
    assert eng.accounts.locked("alice", "BTC") == 0 and eng.accounts.locked("alice", "USDT") == 0


def test_ioc_fok_and_market_orders() -> None:
    eng = engine(maker_fee=D("0"), taker_fee=D("0"))
    eng.submit("bob", SYM, "SELL", "LIMIT", D("1"), D("100"), "GTC")
    eng.submit("bob", SYM, "SELL", "LIMIT", D("1"), D("101"), "GTC")
    fok = eng.submit("alice", SYM, "BUY", "LIMIT", D("3"), D("101"), "FOK").order
    assert fok is not None and fok.status == "EXPIRED" and fok.executed_qty == 0
    ioc = eng.submit("alice", SYM, "BUY", "LIMIT", D("3"), D("100"), "IOC").order
    assert ioc is not None and ioc.status == "EXPIRED" and ioc.executed_qty == D("1")
    market = eng.submit("alice", SYM, "BUY", "MARKET", D("0.5")).order
    assert market is not None and market.status == "FILLED" and market.cum_quote == D("50.5")
    assert eng.accounts.locked("alice", "USDT") == 0


def test_market_levels_queue_behind_and_cross_into_our_orders() -> None:
    eng = engine(maker_fee=D("0"), taker_fee=D("0"))
    eng.set_market_level(SYM, "BUY", D("99"), D("2"))
    ours = eng.submit("alice", SYM, "BUY", "LIMIT", D("1"), D("99"), "GTC").order
    eng.set_market_level(SYM, "BUY", D("99"), D("3"))  # +1 behind us
    eng.set_market_level(SYM, "BUY", D("99"), D("2"))  # -1 from the back: the one behind us
    eng.market_trade(SYM, D("99"), D("2.5"), buyer_is_maker=True)  # sells 2.5 into the bids at 99
    assert ours is not None and ours.executed_qty == D("0.5")  # 2 market ahead of us, then 0.5 of ours
    # The feed's ask comes down through our resting sell: we are the maker.
    ask = eng.submit("alice", SYM, "SELL", "LIMIT", D("1"), D("105"), "GTC").order
    eng.set_market_level(SYM, "BUY", D("106"), D("0.4"))
    assert ask is not None and ask.executed_qty == D("0.4")
    assert eng.my_trades("alice", SYM)[-1].is_maker is True


def test_diffs_chain_and_snapshot_id() -> None:
    eng = engine()
    eng.submit("alice", SYM, "BUY", "LIMIT", D("1"), D("99"), "GTC")
    d1 = eng.take_diff(SYM)
    assert d1 is not None and (d1.first_id, d1.last_id) == (1, 1) and d1.bids == [(D("99"), D("1"))]
    assert eng.take_diff(SYM) is None
    eng.submit("bob", SYM, "SELL", "LIMIT", D("1"), D("101"), "GTC")
    eng.submit("bob", SYM, "SELL", "LIMIT", D("1"), D("99"), "GTC")  # trades the bid away
    last, bids, asks = eng.depth(SYM)
    d2 = eng.take_diff(SYM)
    assert d2 is not None and d2.first_id == d1.last_id + 1 and d2.last_id == last == 3
    assert d2.bids == [(D("99"), D("0"))] and d2.asks == [(D("101"), D("1"))]
    assert bids == [] and asks == [(D("101"), D("1"))]


# ---- property: totals conserved (fees included), locks equal open orders' reservations ----------

ACCOUNTS = ("alice", "bob", MARKET)
actions = st.lists(
    st.tuples(
        st.sampled_from(["limit", "market", "cancel", "level", "print"]),
        st.sampled_from(ACCOUNTS),
        st.sampled_from(["BUY", "SELL"]),
        st.integers(95, 105),  # price
        st.integers(1, 300),  # qty in 0.01
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(actions)
def test_conservation_and_locks(steps: list[tuple[str, str, str, int, int]]) -> None:
    eng = engine(maker_fee=D("0.001"), taker_fee=D("0.00075"))
    start = {a: eng.accounts.total(a) for a in ("BTC", "USDT")}
    for kind, acct, side, px, q in steps:
        price, qty = D(px), D(q) / 100
        try:
            if kind == "limit" and acct != MARKET:
                eng.submit(acct, SYM, side, "LIMIT", qty, price, "GTC")
            elif kind == "market" and acct != MARKET:
                eng.submit(acct, SYM, side, "MARKET", qty)
            elif kind == "cancel" and acct != MARKET:
                open_ = eng.open_orders(acct, SYM)
                if open_:
                    eng.cancel(acct, SYM, order_id=open_[q % len(open_)].order_id)
            elif kind == "level":
                eng.set_market_level(SYM, side, price, qty if q % 3 else D(0))
            elif kind == "print":
                eng.market_trade(SYM, price, qty, buyer_is_maker=side == "SELL")
        except (InsufficientBalance, FilterFailure):
            pass
    for asset in ("BTC", "USDT"):
        assert eng.accounts.total(asset) == start[asset]
    for acct in ("alice", "bob"):
        orders = eng.open_orders(acct, SYM)
        assert eng.accounts.locked(acct, "BTC") == sum((o.remaining for o in orders if o.side == "SELL"), D(0))
        assert eng.accounts.locked(acct, "USDT") == sum(
            (o.remaining * o.price for o in orders if o.side == "BUY"), D(0)
        )
        assert all(eng.accounts.free(acct, a) >= 0 for a in ("BTC", "USDT"))
    _, bids, asks = eng.depth(SYM, 1000)
    if bids and asks:
        assert bids[0][0] < asks[0][0]  # the book never rests crossed


@settings(max_examples=100, deadline=None)
@given(actions, st.integers(0, 60), st.sets(st.integers(0, 60)))
def test_snapshot_plus_chained_diffs_rebuild_the_book(
    steps: list[tuple[str, str, str, int, int]], snap_at: int, diff_points: set[int]
) -> None:
    """A client that snapshots at any point and applies the later diffs (spot rules) has the book."""
    eng = engine()
    snapshot = None
    diffs = []
    for i, (kind, acct, side, px, q) in enumerate(steps):
        if i == snap_at:
            snapshot = eng.depth(SYM, 10_000)
        if i in diff_points and (d := eng.take_diff(SYM)) is not None:
            diffs.append(d)
        price, qty = D(px), D(q) / 100
        try:
            if kind == "limit" and acct != MARKET:
                eng.submit(acct, SYM, side, "LIMIT", qty, price, "GTC")
            elif kind == "cancel" and acct != MARKET and (open_ := eng.open_orders(acct, SYM)):
                eng.cancel(acct, SYM, order_id=open_[0].order_id)
            elif kind == "level":
                eng.set_market_level(SYM, side, price, qty if q % 3 else D(0))
            elif kind in ("print", "market"):
                eng.market_trade(SYM, price, qty, buyer_is_maker=side == "SELL")
        except (InsufficientBalance, FilterFailure):
            pass
    if snapshot is None:
        snapshot = eng.depth(SYM, 10_000)
    if (d := eng.take_diff(SYM)) is not None:
        diffs.append(d)
    for a, b in zip(diffs, diffs[1:]):
        assert b.first_id == a.last_id + 1  # the chain never breaks
    local, bids_l, asks_l = snapshot
    bids, asks = dict(bids_l), dict(asks_l)
    for d in diffs:
        if d.last_id <= local:
            continue
        assert d.first_id <= local + 1 <= d.last_id
        for book, rows in ((bids, d.bids), (asks, d.asks)):
            for p, q in rows:
                book[p] = q
                if not q:
                    del book[p]
        local = d.last_id
    last_id, want_bids, want_asks = eng.depth(SYM, 10_000)
    assert local == last_id
    assert sorted(bids.items(), reverse=True) == want_bids and sorted(asks.items()) == want_asks
