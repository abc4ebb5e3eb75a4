"""Every PMM rule against hand-computed cases (reference A5). Market: 2-dp prices, tick 0.10,
3-dp sizes, lot 0.001. The arithmetic behind each expectation is in the comments."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np

import mixmaker._core  # noqa: F401  registers the Cython modules (mixmaker._proposal)
import pytest

from mixmaker._proposal import (
    SCALE,
    ProposalInputError,
    ProposalParams,
    all_within_tolerance,
    inventory_skew,
    propose,
    within_tolerance,
)
from mixmaker.book import BookSync
from mixmaker.orders import Side
from mixmaker.strategy import ConfigError, MarketView, PureMarketMaking, Quote, parse_config
from strategy_helpers import MARKET, RULES, V, balances, book, own, pmm, prices, sizes, snapshot

MID_100 = (["99.90", "10"], ["100.10", "10"])  # mid 100.00


def mid100():
    return book([tuple(MID_100[0])], [tuple(MID_100[1])])


def decide(cfg, ob, **kw):
    ctl = PureMarketMaking(cfg, RULES, initial_base=kw.pop("initial_base", 0))
    return ctl, ctl.decide(snapshot(ob, **kw))


# ---------------------------------------------------------------- levels and quantization
def test_levels_spreads_and_amounts():
    # bid_i = 100 x (1 - 1% - i x 0.5%): 99.00, 98.50, 98.00; asks 101.00, 101.50, 102.00;
    # size_i = 1 + i x 0.5
    _, d = decide(pmm(order_levels=3, order_level_spread=Decimal("0.5"), order_level_amount=Decimal("0.5")), mid100())
    assert prices(d.proposal.buys) == ["99.00", "98.50", "98.00"]
    assert prices(d.proposal.sells) == ["101.00", "101.50", "102.00"]
    assert sizes(d.proposal.buys) == sizes(d.proposal.sells) == ["1.000", "1.500", "2.000"]
    assert d.create and d.refresh and d.reason is None


def test_prices_floor_to_the_tick_on_both_sides():
    # mid 100.05: bid 100.05 x 0.999 = 99.94995 -> 99.90; ask 100.05 x 1.001 = 100.15005 -> 100.10
    # (floored like Hummingbot, not rounded up)
    _, d = decide(pmm(bid_spread=Decimal("0.1"), ask_spread=Decimal("0.1")), book([("100.00", "1")], [("100.10", "1")]))
    assert prices(d.proposal.buys) == ["99.90"] and prices(d.proposal.sells) == ["100.10"]


def test_level_sizes_at_or_below_zero_are_dropped():
    # size_i = 1 - i x 0.6: 1, 0.4, -0.2 (dropped)
    _, d = decide(pmm(order_levels=3, order_level_amount=Decimal("-0.6")), mid100())
    assert sizes(d.proposal.buys) == ["1.000", "0.400"]


# ---------------------------------------------------------------- inventory skew
SKEW_VECTORS = [  # reference A5.4: (base, quote, price, target ratio, range in base) -> bid, ask
    ("5", "500", "100", ".5", "1", "1", "1"),
    ("4.5", "550", "100", ".5", "1", "1.5", "0.5"),
    ("4", "600", "100", ".5", "1", "2", "0"),
    ("5.5", "450", "100", ".5", "1", "0.5", "1.5"),
    ("6", "400", "100", ".5", "1", "0", "2"),
    ("7", "300", "100", ".5", "1", "0", "2"),
    ("0.667", "6000", "6000", ".5", "0.2", "1.8325", "0.1675"),
    ("5", "500", "100", ".5", "20", "1", "1"),
    ("0", "1000", "100", ".5", "1", "2", "0"),
    ("10", "0", "100", ".5", "1", "0", "2"),
    ("5", "500", "100", "0", "1", "0", "2"),
    ("5", "500", "100", "1", "1", "2", "0"),
    ("5", "500", "100", ".5", "0", "0", "0"),
    ("0", "0", "100", ".5", "1", "0", "0"),
]


@pytest.mark.parametrize("base,quote,price,target,rng,bid,ask", SKEW_VECTORS)
def test_inventory_skew_reference_vectors(base, quote, price, target, rng, bid, ask):
    b, q = int(Decimal(base) * 1000), int(Decimal(quote) * V)
    p, t = int(Decimal(price) * 100), int(Decimal(target) * SCALE)
    bid_n, ask_n, den = inventory_skew(b, q, p, 1, t, int(Decimal(rng) * 1000) * SCALE)
    assert (Fraction(bid_n, den), Fraction(ask_n, den)) == (Fraction(bid), Fraction(ask))


def test_inventory_skew_worked_example_sizes_the_orders():
    # base 0.667, quote 6000, mid 6000, target 50 %, range = total order size 2 x 0.1 = 0.2:
    # bid ratio 1.8325 -> 0.1 x 1.8325 = 0.18325 -> 0.183; ask 0.1675 -> 0.01675 -> 0.016
    cfg = pmm(order_amount=Decimal("0.1"), inventory_skew_enabled=True)
    ob = book([("5999.90", "10")], [("6000.10", "10")])
    _, d = decide(cfg, ob, bal=balances("0.667", "6000"))
    assert sizes(d.proposal.buys) == ["0.183"] and sizes(d.proposal.sells) == ["0.016"]
    assert prices(d.proposal.buys) == ["5940.00"] and prices(d.proposal.sells) == ["6060.00"]


def test_skew_stays_exact_when_the_ratio_does_not_fit_64_bits():
    # Coprime, huge holdings: the reduced ratio's terms exceed 2^62, so the kernel takes its
    # Python-integer path; sizes must still be floor(size x ratio) to the lot.
    p = ProposalParams(tick=10, lot=7, bid_spread=SCALE // 100, ask_spread=SCALE // 100, order_amount=10**6 + 3,
                       levels=2, level_amount=999_983, skew_enabled=True, target_base=SCALE // 3)
    base, mid2 = 10**12 + 39, 2 * 6_000_001 + 1
    quote = base * mid2 + 3 * 10**13 + 11  # base value just below a third of the total: bid ratio 1.276...
    bid_n, ask_n, den = inventory_skew(base, quote, mid2, 2, p.target_base, p.total_order_size() * p.range_multiplier)
    assert 1 < Fraction(bid_n, den) < 2 and max(bid_n, ask_n, den) // math.gcd(bid_n, ask_n, den) >= 1 << 62
    e = np.empty(0, dtype=np.int64)
    raw = propose(p, mid2, mid2, 2, e, e, e, e, skew_base=base, skew_quote=quote, budget_base=10**15, budget_quote=10**18)
    sizes_ = [(10**6 + 3) // 7 * 7, (10**6 + 3 + 999_983) // 7 * 7]
    assert raw.buy_sizes == [s * bid_n // den // 7 * 7 for s in sizes_]
    assert raw.sell_sizes == [s * ask_n // den // 7 * 7 for s in sizes_]


def test_total_order_size():
    assert ProposalParams(tick=1, lot=1, bid_spread=0, ask_spread=0, order_amount=1000, levels=1).total_order_size() == 2000
    assert ProposalParams(tick=1, lot=1, bid_spread=0, ask_spread=0, order_amount=2, level_amount=2, levels=3).total_order_size() == 24


def test_skew_counts_amounts_locked_in_our_orders():
    # Free 0.567 base + 0.1 locked in our sell = 0.667: the same 1.8325 as the worked example.
    cfg = pmm(order_amount=Decimal("0.1"), inventory_skew_enabled=True)
    ob = book([("5999.90", "10")], [("6000.10", "10")])
    bal = balances("0.667", "6000")
    bal = type(bal)(bal.base_total, bal.quote_total, bal.base_free - 100, bal.quote_free)
    _, d = decide(cfg, ob, bal=bal, own=(own("s", Side.SELL, "6100.00", "0.1"),))
    assert sizes(d.proposal.buys) == ["0.183"]


# ---------------------------------------------------------------- order optimization
DEEP = ([("99.90", "1"), ("99.50", "2"), ("99.00", "5")], [("100.10", "1"), ("100.50", "2"), ("101.00", "5")])


def test_order_optimization_without_own_volume_stays_put():
    # bid 100 x 0.9995 = 99.95 -> 99.90; top bid at depth 0.5 is 99.90 -> one tick above = 100.00;
    # min(99.90, 100.00) = 99.90. Ask 100.05 -> 100.00; top ask 100.10 -> 100.00; max = 100.00.
    cfg = pmm(bid_spread=Decimal("0.05"), ask_spread=Decimal("0.05"), order_optimization_enabled=True,
              bid_order_optimization_depth=Decimal("0.5"), ask_order_optimization_depth=Decimal("0.5"))
    _, d = decide(cfg, book(*DEEP))
    assert prices(d.proposal.buys) == ["99.90"] and prices(d.proposal.sells) == ["100.00"]


def test_order_optimization_counts_our_own_volume():
    # Our own 1.0 rests at 99.90 (and 1.0 at 100.10): depth 0.5 + own 1 = 1.5 is first reached
    # at 99.50 -> 99.60, and at 100.50 -> 100.40. Level 1 (level spread 1 %) follows level 0:
    # 99.60 x 0.99 = 98.604 -> 98.60; 100.40 x 1.01 = 101.404 -> 101.40.
    cfg = pmm(bid_spread=Decimal("0.05"), ask_spread=Decimal("0.05"), order_levels=2,
              order_optimization_enabled=True, bid_order_optimization_depth=Decimal("0.5"),
              ask_order_optimization_depth=Decimal("0.5"))
    mine = (own("b", Side.BUY, "99.90"), own("s", Side.SELL, "100.10"))
    _, d = decide(cfg, book(*DEEP), own=mine)
    assert prices(d.proposal.buys) == ["99.60", "98.60"]
    assert prices(d.proposal.sells) == ["100.40", "101.40"]


def test_order_optimization_only_moves_away_from_the_mid():
    # Best bid 99.50 -> one tick above is 99.60, below our 99.90: the bid moves down to 99.60.
    # Best ask 100.50 -> 100.40 is above our 100.00: the ask moves up.
    cfg = pmm(bid_spread=Decimal("0.05"), ask_spread=Decimal("0.05"), order_optimization_enabled=True)
    _, d = decide(cfg, book([("99.50", "1")], [("100.50", "1")]))
    assert prices(d.proposal.buys) == ["99.60"] and prices(d.proposal.sells) == ["100.40"]


def test_order_optimization_skips_a_side_whose_depth_is_not_in_the_book():
    cfg = pmm(bid_spread=Decimal("0.05"), ask_spread=Decimal("0.05"), order_optimization_enabled=True,
              bid_order_optimization_depth=Decimal("100"))
    _, d = decide(cfg, book(*DEEP))
    assert prices(d.proposal.buys) == ["99.90"]


# ---------------------------------------------------------------- costs, budget, takers
def test_transaction_costs_widen_by_the_fee():
    # 99.00 x (1 - 0.1 %) = 98.901 -> 98.90; 101.00 x 1.001 = 101.101 -> 101.10
    _, d = decide(pmm(add_transaction_costs=True, fee_pct=Decimal("0.1")), mid100())
    assert prices(d.proposal.buys) == ["98.90"] and prices(d.proposal.sells) == ["101.10"]


def test_budget_shrinks_the_orders_it_cannot_fund():
    # Buys 99.00 x 1 then 98.50 x 1.5, fee 0.1 %, quote 150: the first needs 99.099, leaving
    # 50.901; 50.901 / (98.50 x 1.001) = 0.51624 -> 0.516. Sells 1 then 1.5 from 1.2 base: 1, 0.2.
    cfg = pmm(order_levels=2, order_level_spread=Decimal("0.5"), order_level_amount=Decimal("0.5"), fee_pct=Decimal("0.1"))
    _, d = decide(cfg, mid100(), bal=balances("1.2", "150"))
    assert sizes(d.proposal.buys) == ["1.000", "0.516"]
    assert sizes(d.proposal.sells) == ["1.000", "0.200"]


def test_budget_of_zero_proposes_nothing_and_says_so():
    _, d = decide(pmm(), mid100(), bal=balances("0", "0"))
    assert len(d.proposal) == 0 and "proposal is empty" in d.reason


def test_orders_that_would_take_are_filtered_unless_allowed():
    # Reference 102.00 (the last trade) against a book at 99.90/100.10: the bid 100.98 -> 100.90
    # would take the 100.10 ask.
    ob = mid100()
    _, d = decide(pmm(price_type="last_price"), ob, last_trade_price=10200)
    assert d.proposal.buys == () and prices(d.proposal.sells) == ["103.00"]
    _, d = decide(pmm(price_type="last_price", take_if_crossed=True), ob, last_trade_price=10200)
    assert prices(d.proposal.buys) == ["100.90"]


def test_kernel_taker_filter_and_input_errors():
    p = ProposalParams(tick=10, lot=1, bid_spread=SCALE // 100, ask_spread=SCALE // 100, order_amount=1000)
    e = np.empty(0, dtype=np.int64)
    raw = propose(p, 10200, 10200, 1, np.array([9990]), np.array([10]), np.array([10010]), np.array([10]),
                  budget_base=10**6, budget_quote=10**12)
    assert raw.buy_prices == [] and raw.sell_prices == [10300]
    with pytest.raises(ProposalInputError):
        propose(p, 0, 10200, 1, e, e, e, e)
    with pytest.raises(ProposalInputError):
        ProposalParams(tick=0, lot=1, bid_spread=0, ask_spread=0, order_amount=1)


# ---------------------------------------------------------------- tolerance
def test_refresh_tolerance_is_relative_to_price():
    tol = SCALE // 1000  # 0.1 %
    assert within_tolerance(10000, 10010, tol)  # 0.1 % exactly
    assert not within_tolerance(10000, 10011, tol)
    assert not within_tolerance(10000, 10000, -1)  # negative: always refresh
    assert all_within_tolerance([10000, 9900], [9905, 10010], tol)  # sorted pairs
    assert not all_within_tolerance([10000], [10000, 9900], tol)  # counts differ


# ---------------------------------------------------------------- bands and ping-pong
def test_static_price_band():
    _, d = decide(pmm(price_ceiling=Decimal(99)), mid100())
    assert d.proposal.buys == () and len(d.proposal.sells) == 1
    _, d = decide(pmm(price_floor=Decimal(101)), mid100())
    assert len(d.proposal.buys) == 1 and d.proposal.sells == ()


def test_moving_price_band_follows_the_price_after_its_refresh_time():
    ctl = PureMarketMaking(pmm(moving_price_band_enabled=True, price_band_refresh_time=Decimal(60)), RULES)
    assert len(ctl.decide(snapshot(mid100(), now_s=1000)).proposal.buys) == 1  # band [99, 101]
    up = book([("101.40", "1")], [("101.60", "1")])  # 101.50 >= ceiling 101: no buys
    d = ctl.decide(snapshot(up, now_s=1010))
    assert d.proposal.buys == () and len(d.proposal.sells) == 1
    down = book([("98.40", "1")], [("98.60", "1")])  # 98.50 <= floor 99: no sells
    assert ctl.decide(snapshot(down, now_s=1020)).proposal.sells == ()
    d = ctl.decide(snapshot(up, now_s=1061))  # band reset around 101.50
    assert len(d.proposal.buys) == 1 and len(d.proposal.sells) == 1


def test_ping_pong_drops_the_side_that_just_filled():
    ctl = PureMarketMaking(pmm(ping_pong_enabled=True, order_levels=2, filled_order_delay=Decimal(0)), RULES)
    ctl.on_fill("b0", Side.BUY, 9900, 1000, True, int(1000e9))
    d = ctl.decide(snapshot(mid100(), now_s=1001))
    assert prices(d.proposal.buys) == ["98.00"] and len(d.proposal.sells) == 2  # innermost buy dropped
    ctl.on_fill("s0", Side.SELL, 10100, 1000, True, int(1001e9))  # balanced again: both reset
    d = ctl.decide(snapshot(mid100(), now_s=1002))
    assert len(d.proposal.buys) == 2 and len(d.proposal.sells) == 2


# ---------------------------------------------------------------- price sources
@pytest.mark.parametrize("price_type,kw,buy,sell", [
    ("mid_price", {}, "98.00", "102.00"),
    ("last_price", {"last_trade_price": 10150}, "99.40", "103.50"),  # 101.50 x 0.98 = 99.47
    ("best_bid", {}, "97.90", "101.80"),  # 99.90 x 0.98 = 97.902; x 1.02 = 101.898
    ("best_ask", {}, "98.00", "102.10"),  # 100.10 x 0.98 = 98.098; x 1.02 = 102.102
    ("last_own_trade_price", {}, "98.00", "102.00"),  # no own trade yet: the mid
])
def test_price_types(price_type, kw, buy, sell):
    _, d = decide(pmm(bid_spread=Decimal(2), ask_spread=Decimal(2), price_type=price_type), mid100(), **kw)
    assert prices(d.proposal.buys) == [buy] and prices(d.proposal.sells) == [sell]


def test_last_own_trade_price_after_a_full_fill():
    ctl = PureMarketMaking(pmm(bid_spread=Decimal(2), ask_spread=Decimal(2), price_type="last_own_trade_price",
                               filled_order_delay=Decimal(0)), RULES)
    ctl.on_fill("b", Side.BUY, 9950, 1000, True, int(1000e9))  # 99.50: bid 97.51 -> 97.50, ask 101.49 -> 101.40
    d = ctl.decide(snapshot(mid100(), now_s=1001))
    assert prices(d.proposal.buys) == ["97.50"] and prices(d.proposal.sells) == ["101.40"]


def test_inventory_cost_lifts_the_sell_reference():
    # 1 base bought at 110: sells reference max(110, mid 100) -> 112.20; buys the mid -> 98.00
    cfg = pmm(bid_spread=Decimal(2), ask_spread=Decimal(2), price_type="inventory_cost", inventory_price=Decimal(110))
    _, d = decide(cfg, mid100(), initial_base=1000)
    assert prices(d.proposal.buys) == ["98.00"] and prices(d.proposal.sells) == ["112.20"]


def test_external_price_source():
    ext = book([("100.40", "1")], [("100.60", "1")])  # mid 100.50: 98.49 -> 98.40, 102.51 -> 102.50
    _, d = decide(pmm(bid_spread=Decimal(2), ask_spread=Decimal(2), price_source="external_market"), mid100(), external_book=ext)
    assert prices(d.proposal.buys) == ["98.40"] and prices(d.proposal.sells) == ["102.50"]
    _, d = decide(pmm(price_source="external_market"), mid100())  # external book not ready
    assert d.proposal is None and d.reason == "external price source not synced"


# ---------------------------------------------------------------- cancel rules and timers
def test_max_order_age_cancels_every_non_hanging_order():
    mine = (own("old", Side.BUY, "99.00", created_s=900), own("new", Side.SELL, "101.00", created_s=990))
    _, d = decide(pmm(max_order_age=Decimal(60)), mid100(), own=mine)  # age 100 s > 60
    assert dict(d.cancel) == {"old": "max_order_age", "new": "max_order_age"}


def test_minimum_spread_cancels_orders_too_close_to_the_price():
    # buy 99.80: (100 - 99.80) / 100 = 0.2 % < 0.5 %; sell 101.00: 1 % is fine
    mine = (own("close", Side.BUY, "99.80"), own("far", Side.SELL, "101.00"))
    _, d = decide(pmm(minimum_spread=Decimal("0.5")), mid100(), own=mine)
    assert d.cancel == (("close", "below minimum_spread"),)


def test_refresh_timers_and_filled_order_delay():
    ctl = PureMarketMaking(pmm(order_refresh_time=Decimal(30), filled_order_delay=Decimal(60)), RULES)
    d = ctl.decide(snapshot(mid100(), now_s=1000))
    assert d.create and d.refresh
    ctl.on_placed("b", d.proposal.buys[0], int(1000e9))
    d = ctl.decide(snapshot(mid100(), now_s=1010, own=(own("b", Side.BUY, "99.00"),)))
    assert not d.refresh and not d.create and d.proposal is None and d.reason is None  # quoting, waiting
    assert ctl.decide(snapshot(mid100(), now_s=1030)).refresh  # refresh falls due at 1030
    ctl.on_fill("b", Side.BUY, 9900, 1000, True, int(1031e9))  # full fill: no new orders for 60 s
    d = ctl.decide(snapshot(mid100(), now_s=1060))
    assert d.proposal is None and d.refresh and "filled_order_delay" in d.reason
    assert ctl.decide(snapshot(mid100(), now_s=1091)).create


def test_partial_fill_changes_no_timers():
    ctl = PureMarketMaking(pmm(filled_order_delay=Decimal(60)), RULES)
    ctl.on_fill("b", Side.BUY, 9900, 500, False, int(1000e9))
    assert ctl.decide(snapshot(mid100(), now_s=1001)).create


def test_hanging_orders_are_held_then_cancelled_when_far():
    ctl = PureMarketMaking(pmm(hanging_orders_enabled=True, filled_order_delay=Decimal(0), order_refresh_time=Decimal(5)), RULES)
    ctl.on_placed("b", Quote(Side.BUY, 0, 9900, 1000), int(1000e9))
    ctl.on_placed("s", Quote(Side.SELL, 0, 10100, 1000), int(1000e9))
    ctl.on_fill("b", Side.BUY, 9900, 1000, True, int(1001e9))  # one side of the pair filled
    d = ctl.decide(snapshot(mid100(), now_s=1002, own=(own("s", Side.SELL, "101.00"),)))
    assert d.hold == {"s"} and d.cancel == ()  # the partner hangs instead of being refreshed
    far = book([("89.90", "1")], [("90.10", "1")])  # |101 - 90| / 90 = 12 % > 10 %
    d = ctl.decide(snapshot(far, now_s=1003, own=(own("s", Side.SELL, "101.00"),)))
    assert d.cancel == (("s", "hanging order too far from the price"),)


def test_a_filled_orders_partner_is_held_until_the_refresh_makes_it_hang():
    ctl = PureMarketMaking(pmm(hanging_orders_enabled=True, order_refresh_time=Decimal(30), filled_order_delay=Decimal(60)), RULES)
    ctl.on_placed("b", Quote(Side.BUY, 0, 9900, 1000), int(1000e9))
    ctl.on_placed("s", Quote(Side.SELL, 0, 10100, 1000), int(1000e9))
    ctl.on_fill("b", Side.BUY, 9900, 1000, True, int(1001e9))
    partner = own("s", Side.SELL, "101.00", created_s=1000)
    d = ctl.decide(snapshot(mid100(), now_s=1002, own=(partner,)))
    assert not d.refresh and d.hold == {"s"} and ctl.hanging == set()  # a candidate, held
    d = ctl.decide(snapshot(mid100(), now_s=1030, own=(partner,)))
    assert d.refresh and d.hold == {"s"} and ctl.hanging == {"s"} and d.cancel == ()


def test_old_hanging_orders_are_renewed_at_the_same_price_after_their_cancel():
    ctl = PureMarketMaking(pmm(hanging_orders_enabled=True, max_order_age=Decimal(60), filled_order_delay=Decimal(0)), RULES)
    ctl.on_placed("b", Quote(Side.BUY, 0, 9900, 1000), int(1000e9))
    ctl.on_placed("s", Quote(Side.SELL, 0, 10100, 1000), int(1000e9))
    ctl.on_fill("b", Side.BUY, 9900, 1000, True, int(1001e9))
    hanging = own("s", Side.SELL, "101.00", created_s=1000, remaining="0.4")
    assert ctl.decide(snapshot(mid100(), now_s=1002, own=(hanging,))).hold == {"s"}
    d = ctl.decide(snapshot(mid100(), now_s=1061, own=(hanging,)))  # 61 s old
    assert ("s", "hanging order renewed after max_order_age") in d.cancel and d.renew == ()
    d = ctl.decide(snapshot(mid100(), now_s=1062))  # the cancel is confirmed: place it again
    assert d.renew == (Quote(Side.SELL, -1, 10100, 400),)
    ctl.on_placed("s2", d.renew[0], int(1062e9))
    d = ctl.decide(snapshot(mid100(), now_s=1063, own=(own("s2", Side.SELL, "101.00", "0.4", created_s=1062),)))
    assert d.hold == {"s2"} and d.renew == ()


# ---------------------------------------------------------------- a book that is not synced
def test_never_quotes_on_a_book_that_is_not_synced_and_says_why():
    sync = BookSync("binance_futures", 2, 3)  # no snapshot yet
    view = MarketView(RULES, sync, type("B", (), {"balances": staticmethod(balances)})())
    ctl = PureMarketMaking(pmm(), RULES)
    snap = view.snapshot(int(1000e9), (own("b", Side.BUY, "99.00"),))
    d = ctl.decide(snap)
    assert d.proposal is None and not d.create
    assert "AWAITING_SNAPSHOT" in d.reason and d.cancel == (("b", d.reason),)


def test_desynced_book_reason_is_passed_on_and_cancel_can_be_disabled():
    ctl = PureMarketMaking(pmm(cancel_on_desync=False), RULES)
    d = ctl.decide(snapshot(None, not_ready="book DESYNCED: pu 7 != previous u 5", own=(own("b", Side.BUY, "99.00"),)))
    assert d.proposal is None and "pu 7 != previous u 5" in d.reason and d.cancel == ()


def test_a_book_with_an_empty_side_is_not_quoted():
    _, d = decide(pmm(), book([("99.90", "1")], []))
    assert d.proposal is None and "empty book side" in d.reason


# ---------------------------------------------------------------- config
def test_config_errors_name_the_field():
    base = {"market": MARKET.model_dump(mode="json"), "strategy": {"kind": "pmm", "bid_spread": "1", "ask_spread": "1", "order_amount": "1"}}
    assert parse_config(base).strategy.bid_spread == Decimal(1)
    for bad, word in [({"order_amount": "0.0005"}, "order_amount"), ({"bid_spread": "0.0000001"}, "bid_spread"),
                      ({"bid_spread": "-1"}, "bid_spread"), ({"spread": "1"}, "spread"),
                      ({"price_floor": "110", "price_ceiling": "100"}, "price_floor")]:
        with pytest.raises(ConfigError, match=word):
            parse_config({**base, "strategy": {**base["strategy"], **bad}})


def test_a_hanging_order_that_left_is_forgotten_and_the_rest_still_hang():
    """The hanging and candidate sets lose the orders no longer live, in place of the
    controller's own sets (a copy kept aside would leave a gone order hanging for ever and make
    the refresh promote candidates into a set the controller no longer reads)."""
    ctl = PureMarketMaking(pmm(hanging_orders_enabled=True, order_refresh_time=Decimal(30), filled_order_delay=Decimal(60)), RULES)
    for cid, side, px in (("b1", Side.BUY, 9900), ("s1", Side.SELL, 10100), ("b2", Side.BUY, 9800), ("s2", Side.SELL, 10200)):
        ctl.on_placed(cid, Quote(side, 0 if cid.endswith("1") else 1, px, 1000), int(1000e9))
    ctl.on_fill("b1", Side.BUY, 9900, 1000, True, int(1001e9))
    ctl.on_fill("b2", Side.BUY, 9800, 1000, True, int(1001e9))
    s1, s2 = own("s1", Side.SELL, "101.00", created_s=1000), own("s2", Side.SELL, "102.00", created_s=1000)
    ctl.decide(snapshot(mid100(), now_s=1030, own=(s1, s2)))  # the refresh: both partners hang
    assert ctl.hanging == {"s1", "s2"} and ctl.candidates == set()
    d = ctl.decide(snapshot(mid100(), now_s=1031, own=(s2,)))  # s1 is gone (filled or cancelled)
    assert ctl.hanging == {"s2"} and d.hold == {"s2"}
