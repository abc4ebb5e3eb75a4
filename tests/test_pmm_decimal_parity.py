"""The Cython kernel against the same proposal in Decimal, Hummingbot's way, on random books,
parameters and balances (hypothesis): the integers and the Decimals must agree exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mixmaker.strategy.kernel import SCALE, ProposalParams, propose
from pmm_decimal import propose as decimal_propose

pct = st.integers(min_value=1, max_value=SCALE // 20)  # up to 5 %


def amount(min_exp: int, max_exp: int):
    """Any order of magnitude from 10^min_exp to 10^max_exp (plain integers favour small values)."""
    return st.integers(min_exp, max_exp).flatmap(lambda e: st.integers(0, 10**e))


@st.composite
def cases(draw):
    mid2 = draw(st.integers(min_value=2 * 1000, max_value=2 * 10_000_000))
    tick = draw(st.sampled_from([1, 10, 100]))
    best_bid = (mid2 // 2) // tick * tick
    best_ask = best_bid + tick * draw(st.integers(min_value=1, max_value=5))
    n = draw(st.integers(min_value=1, max_value=30))
    # whole-lot sizes keep Hummingbot's float depth walk exact
    bid_sz = np.array([draw(st.integers(1, 20)) * 1000 for _ in range(n)], dtype=np.int64)
    ask_sz = np.array([draw(st.integers(1, 20)) * 1000 for _ in range(n)], dtype=np.int64)
    bid_px = np.array([best_bid - tick * i for i in range(n)], dtype=np.int64)
    ask_px = np.array([best_ask + tick * i for i in range(n)], dtype=np.int64)
    p = ProposalParams(
        tick=tick, lot=draw(st.sampled_from([1, 10])), bid_spread=draw(pct), ask_spread=draw(pct),
        level_spread=draw(st.integers(0, SCALE // 50)), order_amount=draw(st.integers(1, 5000)),
        level_amount=draw(st.integers(0, 2000)), levels=draw(st.integers(1, 5)),
        skew_enabled=draw(st.booleans()), target_base=draw(st.integers(0, 100)) * (SCALE // 100),
        range_multiplier=draw(st.integers(1, 3 * SCALE)), optimize=draw(st.booleans()),
        bid_depth=draw(st.integers(0, 20)) * 1000, ask_depth=draw(st.integers(0, 20)) * 1000,
        add_costs=draw(st.booleans()), fee=draw(st.integers(0, SCALE // 100)),
    )
    balances = dict(skew_base=draw(amount(0, 6)), skew_quote=draw(amount(4, 14)),
                    budget_base=draw(amount(2, 6)), budget_quote=draw(amount(9, 14)),
                    own_buy=draw(st.integers(0, 5)) * 1000, own_sell=draw(st.integers(0, 5)) * 1000)
    return p, mid2, (bid_px, bid_sz, ask_px, ask_sz), balances


@settings(max_examples=400, deadline=None)
@given(cases())
def test_kernel_matches_the_decimal_proposal(case):
    p, mid2, book, kw = case
    a = propose(p, mid2, mid2, 2, *book, **kw)
    b = decimal_propose(p, mid2, mid2, 2, *book, **kw)
    assert (a.buy_prices, a.buy_sizes, a.sell_prices, a.sell_sizes) == (b.buy_prices, b.buy_sizes, b.sell_prices, b.sell_sizes)
