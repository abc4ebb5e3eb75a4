"""Avellaneda-Stoikov: the formulas against hand-computed values, the estimators, the horizons,
and the controller on a book."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from mixmaker.strategy import AvellanedaConfig, AvellanedaStoikov, ModelRangeError
from mixmaker.strategy.avellaneda import inventory_q, optimal_prices
from mixmaker.strategy.estimators import InstantVolatility, TradingIntensity
from strategy_helpers import RULES, balances, book, snapshot


def test_reservation_price_and_optimal_spread():
    # r = 100 - 0.2 x 0.5 x 2 x 1 = 99.8; delta = 0.5 x 2 + (2 / 0.5) ln(1 + 0.5 / 1.5) = 1 + 4 ln(4/3)
    m = optimal_prices(100.0, 0.2, 0.5, 2.0, 1.5, 1.0)
    delta = 1 + 4 * math.log(4 / 3)
    assert m.reservation == pytest.approx(99.8) and m.spread == pytest.approx(delta)
    assert m.bid == pytest.approx(99.8 - delta / 2) and m.ask == pytest.approx(99.8 + delta / 2)
    # a 5 % minimum spread wins: ask = max(r + d/2, 100 + 2.5), bid = min(r - d/2, 100 - 2.5)
    m = optimal_prices(100.0, 0.2, 0.5, 2.0, 1.5, 1.0, min_spread_pct=5.0)
    assert (m.bid, m.ask) == (97.5, 102.5)


def test_finite_horizon_shrinks_the_inventory_term():
    # tau = 0.5: r = 100 - 0.2 x 0.5 x 2 x 0.5 = 99.9; delta = 0.5 + 4 ln(4/3)
    m = optimal_prices(100.0, 0.2, 0.5, 2.0, 1.5, 0.5)
    assert m.reservation == pytest.approx(99.9) and m.spread == pytest.approx(0.5 + 4 * math.log(4 / 3))


def test_inventory_q():
    assert inventory_q(1.0, 100.0, 100.0, 50.0, 0.001) == 0.0  # on target
    # total 2 base-equivalents, target 1: (1.5 - 1) / 2
    assert inventory_q(1.5, 50.0, 100.0, 50.0, 0.001) == pytest.approx(0.25)
    assert inventory_q(0.0, 0.0, 100.0, 50.0, 0.001) == 0.0


def test_volatility_divides_by_n():
    v = InstantVolatility(4)
    for x in (100.0, 101.0, 99.0):
        v.add(x)
    assert not v.ready
    v.add(100.0)  # diffs 1, -2, 1: sqrt(6 / 4)
    assert v.ready and v.value == pytest.approx(math.sqrt(1.5))


def test_intensity_fit_recovers_an_exponential():
    # prices at 2 decimals, sizes at 6: the mid 100.00 is bid + ask = 20000; amounts 10 exp(-2 d)
    t = TradingIntensity(2, 2, 6)
    t.add(20000, [])  # the first mid: nothing to measure against yet
    trades = [(10000 + d, round(10 * math.exp(-2 * d / 100) * 10**6)) for d in (10, 50, 100)]
    t.add(20000, trades[:2])
    assert not t.ready
    t.add(20000, [(10000 - 100, trades[2][1])])  # a sell 1.00 below the mid counts the same
    alpha, kappa = t.fit()
    assert t.ready and alpha == pytest.approx(10, rel=1e-6) and kappa == pytest.approx(2, rel=1e-6)
    flat = TradingIntensity(1, 2, 6)
    flat.add(20000, [])
    flat.add(20000, [(10050, 10**6)])
    assert flat.fit() == (0.0, 0.0)  # one distance cannot fit: kept (initial) values


def test_one_distance_is_one_point_and_a_steep_fit_stays_in_range():
    """Regression (0.25 s ticks, 60 ms latency: OverflowError): distances measured in floats split
    one distance in two (0.05 and 0.0500000000029), and the fit through the pair was near vertical,
    its alpha past the float range. Exact distances make them one point; a fit that is steep
    and far anyway keeps ln(alpha), and alpha reads as inf, never an OverflowError."""
    t = TradingIntensity(2, 2, 3)
    t.add(12246889, [])  # mid 61234.445 (half a cent)
    # 61234.50 and 61234.39 are both 0.055 from the mid: one distance, their amounts summed
    t.add(12246889, [(6123450, 5), (6123439, 7)])
    t.add(12246889, [(6123450, 1)])
    assert t.fit() == (0.0, 0.0) and dict(t.buckets[0]) == {11: 12}  # one distance: no fit
    steep = TradingIntensity(1, 2, 0)
    steep.add(0, [])
    steep.add(0, [(100_000, 10**300), (100_001, 1)])  # 1000.00 and 1000.01 from the mid
    alpha, kappa = steep.fit()
    assert kappa > 60_000 and steep.log_alpha is not None and steep.log_alpha > 700 and alpha == math.inf


def test_model_prices_out_of_range_are_a_typed_error():
    ctl = AvellanedaStoikov(cfg(risk_factor=1e300), RULES)
    with pytest.raises(ModelRangeError, match="risk_factor"):
        warm(ctl)


def cfg(**kw):
    base = dict(order_amount=Decimal(1), risk_factor=0.5, volatility_buffer_size=3, trading_intensity_buffer_size=2,
                order_optimization_enabled=False, filled_order_delay=Decimal(0))
    return AvellanedaConfig(**{**base, **kw})


def warm(ctl, *, bal=None, start=1000):
    """Three ticks at mids 100.00, 100.20, 100.00 with trades 0.1 and 0.5 away."""
    mids = [("99.90", "100.10"), ("100.10", "100.30"), ("99.90", "100.10")]
    trades = [(), ((0, 10010, 5000), (0, 10050, 1000)), ((0, 9990, 5000), (0, 9950, 1000))]
    d = None
    for i, ((b, a), tr) in enumerate(zip(mids, trades)):
        d = ctl.decide(snapshot(book([(b, "10")], [(a, "10")]), now_s=start + i, bal=bal, trades=tr))
    return d


def test_controller_warms_up_then_quotes_around_the_reservation_price():
    ctl = AvellanedaStoikov(cfg(), RULES)
    d = ctl.decide(snapshot(book([("99.90", "10")], [("100.10", "10")])))
    assert d.proposal is None and d.reason.startswith("warming up")
    d = warm(ctl, bal=balances("15", "1000"))  # long: 15 base vs a 12.5 target
    m = ctl.model
    assert m is not None and m.q > 0 and m.reservation < 100.0
    tick = RULES.tick
    assert [q.price for q in d.proposal.buys] == [math.floor(m.bid * 100 / tick) * tick]
    assert [q.price for q in d.proposal.sells] == [math.floor(m.ask * 100 / tick) * tick]
    assert d.create and d.refresh


def test_shape_factor_shrinks_the_side_that_adds_inventory():
    ctl = AvellanedaStoikov(cfg(order_amount_shape_factor=1.0), RULES)
    d = warm(ctl, bal=balances("15", "1000"))
    q = ctl.model.q  # (15 - 12.5) / 25 = 0.1 -> buys x e^-0.1 = 0.9048 -> 0.904
    assert q == pytest.approx(0.1)
    assert [x.size for x in d.proposal.buys] == [904] and [x.size for x in d.proposal.sells] == [1000]


def test_levels_step_by_a_share_of_half_the_spread():
    ctl = AvellanedaStoikov(cfg(order_levels=2, level_distances=Decimal(100)), RULES)
    d = warm(ctl)
    m = ctl.model
    step = m.spread / 2  # 100 % of half the spread
    assert d.proposal.buys[1].price == math.floor((m.bid - step) * 100 / 10) * 10


def test_outside_the_execution_window_it_does_not_quote():
    ctl = AvellanedaStoikov(cfg(execution_timeframe="from_date_to_date", start_time_ns=int(2000e9), end_time_ns=int(3000e9)), RULES)
    d = warm(ctl)
    assert d.proposal is None and d.reason == "outside the execution timeframe"
    d = warm(AvellanedaStoikov(ctl.cfg, RULES), start=2500)  # tau = (3000 - 2502) / 1000
    assert d.proposal is not None


def test_daily_window_in_utc():
    import datetime as dt

    c = cfg(execution_timeframe="daily_between_times", start_time_of_day=dt.time(0, 10), end_time_of_day=dt.time(0, 30))
    ctl = AvellanedaStoikov(c, RULES)
    day = 86_400 * 19_000  # a midnight, in seconds
    assert ctl._tau(int((day + 600) * 1e9)) == 1.0  # 00:10: the whole window is left
    assert ctl._tau(int((day + 1500) * 1e9)) == 0.25  # 00:25: 5 of 20 minutes left
    assert ctl._tau(int((day + 1800) * 1e9)) is None and ctl._tau(int((day + 86_400 + 300) * 1e9)) is None
    with pytest.raises(ValueError, match="daily_between_times"):
        cfg(execution_timeframe="daily_between_times", start_time_of_day=dt.time(1), end_time_of_day=dt.time(0, 30))


def test_not_synced_book_is_not_quoted():
    ctl = AvellanedaStoikov(cfg(), RULES)
    d = ctl.decide(snapshot(None, not_ready="book DESYNCED: gap"))
    assert d.proposal is None and d.reason == "book DESYNCED: gap"


def test_window_config_is_validated():
    with pytest.raises(ValueError, match="start_time_ns < end_time_ns"):
        cfg(execution_timeframe="from_date_to_date", start_time_ns=5, end_time_ns=5)


def test_order_optimization_moves_quotes_to_one_tick_inside_the_best_prices():
    # After the warm-up the model quotes about 99.7 / 100.3; on a book at 99.00 / 101.00 the
    # bid is lowered to one tick above the best bid (99.10), the ask raised to 100.90.
    ctl = AvellanedaStoikov(cfg(order_optimization_enabled=True), RULES)
    warm(ctl)
    d = ctl.decide(snapshot(book([("99.00", "10")], [("101.00", "10")]), now_s=1003))
    m = ctl.model
    assert 99.1 < m.bid < 100.0 < m.ask < 100.9  # the model alone would quote inside
    assert [q.price for q in d.proposal.buys] == [9910] and [q.price for q in d.proposal.sells] == [10090]
