"""Avellaneda-Stoikov market making (reference A6) as a controller.

    r = s - q * gamma * sigma * tau                      reservation price
    delta = gamma * sigma * tau + (2 / gamma) * ln(1 + gamma / kappa)   optimal spread
    ask = max(r + delta/2, s + m/2),  bid = min(r - delta/2, s - m/2),  m = s * min_spread %

s is the mid, q = (base - q_target) / inventory in units of total inventory, tau = 1 in the
infinite mode and the share of the window left in from_date_to_date and daily_between_times. Like Hummingbot it uses
sigma (not sigma^2). The model runs in floats; the resulting prices are floored onto the tick
and everything after (sizes, costs, budget, taker filter) is the exact kernel.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass

import numpy as np

from mixmaker._core import Side
from mixmaker.book import OrderBook
from mixmaker.strategy.config import NS, AvellanedaConfig, pct_to_fraction, seconds_to_ns, to_units
from mixmaker.strategy.decision import Decision, Proposal, Quote
from mixmaker.strategy.errors import ModelRangeError
from mixmaker.strategy.estimators import InstantVolatility, TradingIntensity
from mixmaker.strategy.kernel import ProposalParams, finish
from mixmaker.strategy.market import MarketRules, MarketSnapshot
from mixmaker.strategy.reason import IdleKind, Reason
from mixmaker.strategy.timers import RefreshTimers

log = logging.getLogger("mixmaker.strategy.avellaneda")
_MAX_RAW = float(1 << 62)  # raw prices are int64; a tick count past this is no market's price


@dataclass(frozen=True, slots=True)
class ModelPrices:
    reservation: float
    spread: float
    bid: float
    ask: float
    q: float


def optimal_prices(mid: float, q: float, gamma: float, sigma: float, kappa: float, tau: float,
                   min_spread_pct: float = 0.0) -> ModelPrices:
    """Reservation price, optimal spread and the optimal bid/ask (reference A6.3)."""
    r = mid - q * gamma * sigma * tau
    delta = gamma * sigma * tau + (2.0 / gamma) * math.log(1.0 + gamma / kappa)
    m = mid / 100.0 * min_spread_pct
    return ModelPrices(r, delta, min(r - delta / 2, mid - m / 2), max(r + delta / 2, mid + m / 2), q)


def inventory_q(base: float, quote: float, mid: float, target_pct: float, lot: float) -> float:
    """q = (base - q_target) / inventory, with inventory and target in base units."""
    inventory = (base * mid + quote) / mid
    if inventory == 0:
        return 0.0
    q_target = math.floor((base * mid + quote) * target_pct / 100.0 / mid / lot) * lot
    return (base - q_target) / inventory


class AvellanedaStoikov:
    reads_public_trades = True  # the intensity fit reads every public trade

    def __init__(self, cfg: AvellanedaConfig, rules: MarketRules) -> None:
        self.cfg = cfg
        self.rules = rules
        self.params = ProposalParams(
            tick=rules.tick, lot=rules.lot, min_size=rules.min_size, bid_spread=0, ask_spread=0,
            order_amount=to_units(cfg.order_amount, rules.size_decimals, "order_amount"),
            add_costs=cfg.add_transaction_costs, fee=pct_to_fraction(cfg.fee_pct, "fee_pct"))
        self.timers = RefreshTimers(seconds_to_ns(cfg.order_refresh_time), seconds_to_ns(cfg.filled_order_delay))
        self.tolerance = pct_to_fraction(cfg.order_refresh_tolerance_pct, "order_refresh_tolerance_pct")
        self.volatility = InstantVolatility(cfg.volatility_buffer_size)
        self.intensity = TradingIntensity(cfg.trading_intensity_buffer_size, rules.price_decimals, rules.size_decimals)
        self.alpha = self.kappa = 0.0
        self.model: ModelPrices | None = None
        self.last_reason: str | None = None
        self._px = 10.0 ** rules.price_decimals
        self._sz = 10.0 ** rules.size_decimals

    # ------------------------------------------------------------------ the tick
    def decide(self, snap: MarketSnapshot) -> Decision:
        now = snap.now_ns
        live = sorted(o.client_id for o in snap.own_orders)
        if snap.book is None:
            return self._idle(snap.not_ready or Reason(IdleKind.BOOK_NOT_SYNCED), live)
        mid_f = snap.mid_fraction()
        if mid_f is None:
            return self._idle(Reason(IdleKind.EMPTY_BOOK_SIDE, "no mid"), live)
        mid = mid_f[0] / mid_f[1] / self._px
        self.volatility.add(mid)
        self.intensity.add(mid_f[0], [(p, q) for _, p, q in snap.trades])
        if not (self.volatility.ready and self.intensity.ready):
            return self._idle(
                Reason(IdleKind.WARMING_UP,
                       f"volatility {len(self.volatility.samples)}/{self.volatility.samples.maxlen}, "
                       f"intensity {len(self.intensity.buckets)}/{self.intensity.buckets.maxlen} ticks"), [])
        tau = self._tau(now)
        if tau is None:
            return self._idle(Reason(IdleKind.OUTSIDE_TIMEFRAME), live)
        cancels = [(o.client_id, "max_order_age") for o in snap.own_orders
                   if (now - o.created_ns) // NS > self.cfg.max_order_age]
        proposal = None
        if self.timers.may_create(now):
            self.alpha, self.kappa = self.intensity.fit()
            proposal = self._proposal(snap, snap.book, mid, tau)
        reason = None
        if self.model is None:
            reason = Reason(IdleKind.NO_MODEL_PRICES)
        elif proposal is None and self.timers.after_fill:
            reason = Reason(IdleKind.FILLED_ORDER_DELAY, f"no new orders before {self.timers.create_ts} ns")
        waiting = snap.cancels_in_flight > 0
        return Decision(proposal, tuple(cancels), self.timers.refresh_due(now), proposal is not None and not waiting,
                        self.tolerance, frozenset(), reason)

    def _idle(self, reason: str, cancel: list[str]) -> Decision:
        if reason != self.last_reason:
            log.info("%s: %s", self.rules.symbol, reason)
        self.last_reason = reason
        return Decision.idle(reason, tuple((c, reason) for c in cancel) if self.cfg.cancel_on_desync else ())

    def _tau(self, now: int) -> float | None:
        cfg = self.cfg
        if cfg.execution_timeframe == "infinite":
            return 1.0
        # The config's validator made sure the window's ends are set for its timeframe.
        if cfg.execution_timeframe == "from_date_to_date":
            assert cfg.start_time_ns is not None and cfg.end_time_ns is not None
            start, end = cfg.start_time_ns, cfg.end_time_ns
        else:  # daily_between_times, in UTC
            assert cfg.start_time_of_day is not None and cfg.end_time_of_day is not None
            midnight = now - now % (86_400 * NS)
            start, end = midnight + _ns_of_day(cfg.start_time_of_day), midnight + _ns_of_day(cfg.end_time_of_day)
        if not start <= now < end:
            return None
        return (end - now) / (end - start)

    def _proposal(self, snap: MarketSnapshot, book: OrderBook, mid: float, tau: float) -> Proposal | None:
        b = snap.balances
        base, quote = b.base_total / self._sz, b.quote_total / (self._px * self._sz)
        q = inventory_q(base, quote, mid, float(self.cfg.inventory_target_base_pct), self.rules.lot / self._sz)
        sigma, gamma = self.volatility.value, self.cfg.risk_factor
        if self.kappa > 0 and self.alpha != 0 and sigma != 0 and (base * mid + quote) != 0:
            self.model = optimal_prices(mid, q, gamma, sigma, self.kappa, tau, float(self.cfg.min_spread))
        if self.model is None:
            return None
        m, tick, lot = self.model, self.rules.tick, self.rules.lot
        step = m.spread / 2 / 100 * float(self.cfg.level_distances)
        levels = range(self.cfg.order_levels)
        bp = [self._on_tick(m.bid - i * step) for i in levels]
        sp = [self._on_tick(m.ask + i * step) for i in levels]
        size = self.params.order_amount
        eta = self.cfg.order_amount_shape_factor
        bsz = size if m.q <= 0 else math.floor(size * math.exp(-eta * m.q) / lot) * lot
        ssz = size if m.q >= 0 else math.floor(size * math.exp(eta * m.q) / lot) * lot
        bid_px, bid_sz, ask_px, ask_sz = book.top_raw(50)
        if self.cfg.order_optimization_enabled:
            own_buy = sum(o.remaining for o in snap.own_orders if o.side == Side.BUY)
            own_sell = sum(o.remaining for o in snap.own_orders if o.side == Side.SELL)
            top = _price_for_volume(bid_px, bid_sz, own_buy)
            if top is not None:
                above = (-(-top // tick) + 1) * tick
                bp = [min(p, above) for p in bp]
            top = _price_for_volume(ask_px, ask_sz, own_sell)
            if top is not None:
                below = (top // tick - 1) * tick
                sp = [max(p, below) for p in sp]
        nh_quote = sum(o.remaining * o.price for o in snap.own_orders if o.side == Side.BUY)
        nh_base = sum(o.remaining for o in snap.own_orders if o.side == Side.SELL)
        raw = finish(self.params, bp, [bsz] * len(bp), sp, [ssz] * len(sp), bid_px[:1], ask_px[:1],
                     b.base_free + nh_base, b.quote_free + nh_quote)
        return Proposal.from_lists(raw.buy_prices, raw.buy_sizes, raw.sell_prices, raw.sell_sizes)

    def _on_tick(self, price: float) -> int:
        """A model price floored onto the tick, in raw units. The model's floats are bounded by
        its inputs; a price that is not finite or does not fit a raw price (int64) comes only
        from inputs out of any market's range (a risk factor of 1e300, say): a ModelRangeError
        names them, rather than an OverflowError from deep in the arithmetic."""
        raw = price * self._px / self.rules.tick
        if not -_MAX_RAW < raw < _MAX_RAW:  # also False for nan
            m = self.model
            raise ModelRangeError(
                f"{self.rules.symbol}: the model price {price!r} is out of range (mid reservation "
                f"{m.reservation if m else None!r}, spread {m.spread if m else None!r}; risk_factor "
                f"{self.cfg.risk_factor}, sigma {self.volatility.value!r}, kappa {self.kappa!r})")
        return math.floor(raw) * self.rules.tick

    # ------------------------------------------------------------------ feedback from the executor
    def on_placed(self, client_id: str, quote: Quote, now_ns: int) -> None:
        self.timers.on_placed(now_ns)

    def on_fill(self, client_id: str, side: Side, price: int, qty: int, fully_filled: bool, now_ns: int) -> None:
        if fully_filled:
            self.timers.on_full_fill(now_ns)

    def on_closed(self, client_id: str) -> None:
        pass


def _ns_of_day(t: dt.time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * NS + t.microsecond * 1000


def _price_for_volume(px: np.ndarray, sz: np.ndarray, volume: int) -> int | None:
    cum = np.cumsum(sz)
    i = int(np.searchsorted(cum, volume, side="left"))
    return int(px[i]) if i < len(px) else None
