"""Pure market making: Hummingbot's PMM rules (reference A5) as a controller that decides once
per tick and leaves acting to the quote executor.

The proposal math (levels, order optimization, transaction costs, inventory skew, budget, taker
filter) is the Cython kernel `mixmaker._proposal`; this module owns the rules around it:
reference price, price bands, ping-pong, timers (refresh, filled-order delay, max order age),
minimum spread, and hanging orders. Ratios are exact: `Fraction`s once per tick, and
cross-multiplied integers per order.

Where this differs from Hummingbot, on purpose:
- the executor replaces only the quotes that left the tolerance, not every quote (fewest
  requests), so creation may happen on the tick the refresh falls due (`create_ts <= now`);
- own volume for order optimization is the sum of our resting orders on that side, not the
  size of the last one iterated;
- a book that is not synced is never quoted on, and (by default) our quotes are cancelled
  while it is not, since they rest at prices we can no longer check;
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from mixmaker._core import Side
from mixmaker.book import OrderBook
from mixmaker.strategy.config import NS, PMMConfig, pct_to_fraction, seconds_to_ns, to_units
from mixmaker.strategy.decision import HANGING_LEVEL, Decision, Proposal, Quote
from mixmaker.strategy.kernel import SCALE, propose
from mixmaker.strategy.market import Balances, MarketRules, MarketSnapshot, OwnOrder
from mixmaker.strategy.reason import IdleKind, Reason
from mixmaker.strategy.timers import RefreshTimers

log = logging.getLogger("mixmaker.strategy.pmm")

_EMPTY = np.empty(0, dtype=np.int64)
_NO_HOLD: frozenset[str] = frozenset()
_NO_LIVE: dict[str, OwnOrder] = {}  # read only
_NEVER = (1 << 63) - 1
_BUY, _SELL = Side.BUY, Side.SELL
# (until, own orders, events, cancels in flight, balances, last trade price or None, best bid,
#  best ask, the decision): see PureMarketMaking._hold
_Held = tuple[int, tuple[OwnOrder, ...], int, int, Balances, int | None, int, int, Decision]


class InventoryCost:
    """Average cost of the base we hold (price_type = inventory_cost), exact."""

    def __init__(self, base: int, price: int) -> None:
        self.base = base
        self.cost = base * price  # value units

    def on_fill(self, side: Side, price: int, qty: int) -> None:
        if side == _BUY:
            self.base += qty
            self.cost += price * qty
        elif self.base > 0:
            sold = min(qty, self.base)
            self.cost -= self.cost * sold // self.base
            self.base -= sold

    def price(self) -> Fraction | None:
        return Fraction(self.cost, self.base) if self.base > 0 and self.cost > 0 else None


class PureMarketMaking:
    """decide(snapshot) -> Decision; on_placed / on_fill keep its timers and pairs current."""

    reads_public_trades = False  # only `last_trade_price` (see `strategy.loop.Controller`)

    def __init__(self, cfg: PMMConfig, rules: MarketRules, *, initial_base: int = 0,
                 proposal_fn: Callable[..., Any] = propose) -> None:
        """`proposal_fn` is the kernel's `propose`; the benches swap in a Decimal peer."""
        self.cfg = cfg
        self.propose = proposal_fn
        self.rules = rules
        self.params = cfg.params(rules)
        pd = rules.price_decimals
        self.timers = RefreshTimers(seconds_to_ns(cfg.order_refresh_time), seconds_to_ns(cfg.filled_order_delay))
        self.max_age_s = cfg.max_order_age
        self.tolerance = pct_to_fraction(cfg.order_refresh_tolerance_pct, "order_refresh_tolerance_pct")
        self.min_spread = Fraction(cfg.minimum_spread) / 100
        self.hanging_cancel = Fraction(cfg.hanging_orders_cancel_pct) / 100
        self.ceiling = to_units(cfg.price_ceiling, pd, "price_ceiling") if cfg.price_ceiling > 0 else None
        self.floor = to_units(cfg.price_floor, pd, "price_floor") if cfg.price_floor > 0 else None
        self.band_refresh_ns = seconds_to_ns(cfg.price_band_refresh_time)
        self.band: tuple[Fraction, Fraction] | None = None  # (floor, ceiling) of the moving band
        self.band_set_ns: int | None = None
        self.filled_buys = 0
        self.filled_sells = 0
        self.last_own_trade_price: int | None = None
        self.inventory_cost = InventoryCost(initial_base, to_units(cfg.inventory_price, pd, "inventory_price"))
        self.level_of: dict[str, tuple[Side, int]] = {}  # live non-hanging order -> (side, level)
        self.candidates: set[str] = set()  # partner of a filled pair member; hanging at next refresh
        self.hanging: set[str] = set()
        self.renewals: dict[str, Quote] = {}  # hanging order cancelled for its age -> its copy
        self.last_reason: str | None = None
        # The per-tick rules read these as plain ints and flags (the config is frozen).
        self._hc = (self.hanging_cancel.numerator, self.hanging_cancel.denominator)
        self._ms = (self.min_spread.numerator, self.min_spread.denominator)
        # (now - oldest) // NS is an int, and for an int x: x > max_order_age <=> x > floor(max_order_age)
        self._max_age_whole = math.floor(cfg.max_order_age)
        self._external = cfg.price_source == "external_market"
        self._wait_cancels = cfg.should_wait_order_cancel_confirmation
        self._bounded = self.ceiling is not None or self.floor is not None or cfg.moving_price_band_enabled
        self._book_levels = cfg.optimization_book_levels if self.params.optimize else 1
        self._read_book = self.params.optimize or not self.params.take_if_crossed
        self._ping_pong = cfg.ping_pong_enabled
        self._last_raw: Any = None  # the kernel's last answer and the Proposal made of it
        self._last_decision: Decision | None = None  # reused while a tick decides the same
        self._memo_key: tuple[object, ...] | None = None  # the scalar inputs of the last kernel call (None: not memoised)
        self._last_proposal = Proposal()
        self._best = tuple(np.zeros(1, dtype=np.int64) for _ in range(4))  # best bid, size, ask, size
        # The last decision and what it was decided from (see `_hold`); None: decide afresh.
        self._quiet: _Held | None = None
        self._events = 0  # calls of on_placed / on_fill / on_closed: the controller's state changed
        # Decisions that depend on nothing but the inputs `_hold` keys them by: no order-book
        # depth (order optimization), no external book, no moving band (it moves with time).
        self._holdable = not self.params.optimize and not self._external and not cfg.moving_price_band_enabled

    # ------------------------------------------------------------------ the tick
    # Prices of the rules are exact ratios kept as (numerator, denominator) int pairs in lowest
    # terms (what a Fraction would hold, without building one per tick).
    def decide(self, snap: MarketSnapshot) -> Decision:
        now = snap.now_ns
        own = snap.own_orders
        q = self._quiet
        if q is not None:
            # The last decision holds while every input it read is the same and no timer or
            # age boundary has passed (see `_hold_until`): the same decision, not recomputed.
            book = snap.book
            if (now < q[0] and book is not None and own is q[1] and self._events == q[2]
                    and snap.cancels_in_flight == q[3] and (snap.balances is q[4] or snap.balances == q[4])
                    and (q[5] is None or snap.last_trade_price == q[5])):
                bid, ask = book.best_bid_raw(), book.best_ask_raw()
                if bid is not None and ask is not None and bid[0] == q[6] and ask[0] == q[7]:
                    return q[8]
            self._quiet = None
        # Our live orders by id, built when a rule below reads them (renewals, hanging orders,
        # cancelling everything when idle).
        need_live = bool(own) and bool(self.renewals or self.hanging or self.candidates)
        live = {o.client_id: o for o in own} if need_live else _NO_LIVE
        # Renew (place again as they were) old hanging orders whose cancel has been confirmed.
        renew: tuple[Quote, ...] = ()
        if self.renewals:
            renew = tuple(q for cid, q in sorted(self.renewals.items()) if cid not in live)
            self.renewals = {cid: q for cid, q in self.renewals.items() if cid in live}
        hanging, candidates = self.hanging, self.candidates
        # `set & dict_keys` is a new set: keep the attribute and the local the same object.
        if hanging:
            self.hanging = hanging = hanging & live.keys()
        if candidates:
            self.candidates = candidates = candidates & live.keys()
        book = snap.external_book if self._external else snap.book
        if snap.book is None:
            return self._idle(snap.not_ready or Reason(IdleKind.BOOK_NOT_SYNCED), {o.client_id: o for o in own}, cancel_all=self.cfg.cancel_on_desync)
        if book is None:
            return self._idle(Reason(IdleKind.EXTERNAL_NOT_SYNCED), {o.client_id: o for o in own}, cancel_all=self.cfg.cancel_on_desync)
        ref = self._reference(snap, book)
        if ref is None:
            return self._idle(Reason(IdleKind.EMPTY_BOOK_SIDE, "no reference price"), {o.client_id: o for o in own}, cancel_all=self.cfg.cancel_on_desync)
        ref_buy, ref_sell = ref
        price = ref_buy  # Hummingbot's get_price(): the band, skew and cancel rules use it
        cancels: list[tuple[str, str]] = []
        # Our ordinary quotes: neither hanging nor about to hang (a filled order's partner).
        if hanging or candidates:
            non_hanging: tuple[OwnOrder, ...] | list[OwnOrder] = [
                o for o in own if o.client_id not in hanging and o.client_id not in candidates]
        else:
            non_hanging = own

        timers = self.timers
        proposal = None
        if timers.create_ts <= now:
            proposal = self._proposal(snap, snap.book, ref_buy, ref_sell, price, non_hanging)

        # Ratio rules in integers: price = pn / pd, so (x - price) / price = (x pd - pn) / pn.
        pn, pd = price
        # hanging orders: too far from the price, or too old
        if hanging:
            hc_n, hc_d = self._hc
            for cid in sorted(hanging):
                o = live[cid]
                if abs(o.price * pd - pn) * hc_d > hc_n * pn:
                    cancels.append((cid, "hanging order too far from the price"))
                elif (now - o.created_ns) // NS > self._max_age_whole:
                    cancels.append((cid, "hanging order renewed after max_order_age"))
                    self.renewals[cid] = Quote(o.side, HANGING_LEVEL, o.price, o.remaining)
        # max order age: one old order refreshes them all
        if non_hanging:
            oldest = now
            for o in non_hanging:
                if o.created_ns < oldest:
                    oldest = o.created_ns
            if (now - oldest) // NS > self._max_age_whole:
                cancels += [(o.client_id, "max_order_age") for o in non_hanging]
            else:
                ms_n, ms_d = self._ms
                for o in non_hanging:
                    if o.side == _BUY:
                        below = -(o.price * pd - pn) * ms_d < ms_n * pn
                    else:
                        below = (o.price * pd - pn) * ms_d < ms_n * pn
                    if below:
                        cancels.append((o.client_id, "below minimum_spread"))

        refresh = timers.cancel_ts <= now
        if refresh and candidates and self.cfg.hanging_orders_enabled:
            # Candidates still live when the refresh comes are kept as hanging orders.
            for cid in sorted(candidates):
                hanging.add(cid)
                self.level_of.pop(cid, None)
            candidates.clear()
        waiting = self._wait_cancels and snap.cancels_in_flight > 0
        create = proposal is not None and not waiting
        reason = None
        if proposal is None and timers.after_fill:
            reason = Reason(IdleKind.FILLED_ORDER_DELAY, f"no new orders before {timers.create_ts} ns")
        elif proposal is not None and not proposal.buys and not proposal.sells:
            reason = Reason(IdleKind.EMPTY_PROPOSAL)
        self.last_reason = reason
        hold = frozenset(hanging | candidates) if hanging or candidates else _NO_HOLD
        last = self._last_decision
        if (last is not None and not cancels and not renew and last.proposal is proposal and not last.cancel
                and not last.renew and last.refresh == refresh and last.create == create and last.hold == hold
                and last.reason == reason):
            d = last  # the same decision as last tick: the same (immutable) object
        else:
            d = self._last_decision = Decision(proposal, tuple(cancels), refresh, create, self.tolerance, hold, reason,
                                               renew)
        if self._holdable and not cancels and not renew and not hold and not self.renewals:
            self._hold(snap, book, non_hanging, d)
        return d

    def _hold(self, snap: MarketSnapshot, book: OrderBook, non_hanging: tuple[OwnOrder, ...] | list[OwnOrder],
              d: Decision) -> None:
        """Remember what `d` was decided from, and until when it stays the answer to the same inputs.

        A decision is a function of: the best prices (not their sizes: without order optimization
        the kernel reads only prices), our live orders (the executor's tuple is rebuilt on every
        change to them), balances, cancels in flight, the last public trade price (when it is the
        reference), this controller's own state (every change to it comes through `on_placed`,
        `on_fill` or `on_closed`, which count `_events`), and the time, only through the timers
        and the order-age limit: those give the first time it could differ."""
        now = snap.now_ns
        until = _NEVER
        timers = self.timers
        if timers.create_ts > now:
            until = timers.create_ts
        if now < timers.cancel_ts < until:
            until = timers.cancel_ts
        if non_hanging:
            # (t - oldest) // NS > W  <=>  t >= oldest + (W + 1) * NS
            aged = min(o.created_ns for o in non_hanging) + (self._max_age_whole + 1) * NS
            if aged < until:
                until = aged
        bid, ask = book.best_bid_raw(), book.best_ask_raw()
        if bid is None or ask is None:
            return
        ltp = snap.last_trade_price if self.cfg.price_type == "last_price" else None
        self._quiet = (until, snap.own_orders, self._events, snap.cancels_in_flight, snap.balances, ltp,
                       bid[0], ask[0], d)

    def held(self, own_orders: tuple[OwnOrder, ...], cancels_in_flight: int,
             balances: Balances) -> tuple[int, int, int, int | None, Decision] | None:
        """The last decision, while it is the answer for these orders, cancels in flight and
        balances: (until, best bid, best ask, last trade price or None, the decision). Every tick
        before `until` whose book is synced with those best prices (and whose last trade is at
        that price, when one is given) decides it again, unchanged (see `_hold`). None: decide afresh."""
        q = self._quiet
        if (q is None or own_orders is not q[1] or self._events != q[2] or cancels_in_flight != q[3]
                or not (balances is q[4] or balances == q[4])):
            return None
        return q[0], q[6], q[7], q[5], q[8]

    def _idle(self, reason: str, live: dict[str, OwnOrder], *, cancel_all: bool) -> Decision:
        if reason != self.last_reason:
            log.info("%s: %s", self.rules.symbol, reason)
        self.last_reason = reason
        cancels = tuple((cid, reason) for cid in sorted(live)) if cancel_all else ()
        return Decision.idle(reason, cancels)

    def _reference(self, snap: MarketSnapshot, book: OrderBook) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """(buy reference, sell reference) as (num, den) in lowest terms."""
        bid, ask = book.best_bid_raw(), book.best_ask_raw()
        if bid is None or ask is None:
            return None
        m = bid[0] + ask[0]
        mid = (m >> 1, 1) if not m & 1 else (m, 2)
        t = self.cfg.price_type
        if t == "mid_price":
            return mid, mid
        if t == "last_price" and snap.last_trade_price is not None:
            return (snap.last_trade_price, 1), (snap.last_trade_price, 1)
        if t == "last_own_trade_price" and self.last_own_trade_price is not None:
            return (self.last_own_trade_price, 1), (self.last_own_trade_price, 1)
        if t == "best_bid":
            return (bid[0], 1), (bid[0], 1)
        if t == "best_ask":
            return (ask[0], 1), (ask[0], 1)
        if t == "inventory_cost":
            cost = self.inventory_cost.price()
            if cost is None:
                return mid, mid
            top = max(cost, Fraction(*mid))
            return mid, (top.numerator, top.denominator)
        return mid, mid

    def _sides_allowed(self, now: int, price: tuple[int, int]) -> tuple[bool, bool]:
        if not self._bounded:
            return True, True
        buys = sells = True
        pn, pd = price
        if self.ceiling is not None and pn >= self.ceiling * pd:
            buys = False
        if self.floor is not None and pn <= self.floor * pd:
            sells = False
        if self.cfg.moving_price_band_enabled:
            p = Fraction(pn, pd)
            if self.band_set_ns is None or now >= self.band_set_ns + self.band_refresh_ns:
                self.band = (p * (100 + Fraction(self.cfg.price_floor_pct)) / 100,
                             p * (100 + Fraction(self.cfg.price_ceiling_pct)) / 100)
                self.band_set_ns = now
            assert self.band is not None  # set just above
            floor, ceiling = self.band
            if p >= ceiling:
                buys = False
            if p <= floor:
                sells = False
        return buys, sells

    def _proposal(self, snap: MarketSnapshot, market_book: OrderBook, ref_buy: tuple[int, int], ref_sell: tuple[int, int],
                  price: tuple[int, int], non_hanging: tuple[OwnOrder, ...] | list[OwnOrder]) -> Proposal:
        allow_buys, allow_sells = self._sides_allowed(snap.now_ns, price) if self._bounded else (True, True)
        drop_buys = drop_sells = 0
        if self._ping_pong:
            drop_buys, drop_sells = self.filled_buys, self.filled_sells
        # Without order optimization only the taker filter reads the book: its best levels,
        # copied into arrays kept for it (what top_raw(1) would return, without four new arrays).
        # The proposal is memoised on the kernel's inputs when they are scalars (the book read
        # is its best levels, or nothing); with order optimization it reads a depth array.
        memo = True
        bid = ask = None
        if not self._read_book:
            bp = bs = ap = as_ = _EMPTY
        elif self.params.optimize:
            bp, bs, ap, as_ = market_book.top_raw(self._book_levels)
            memo = False
        else:
            bid, ask = market_book.best_bid_raw(), market_book.best_ask_raw()
        own_buy = own_sell = locked_quote = 0
        for o in snap.own_orders:
            if o.side == _BUY:
                own_buy += o.remaining
                locked_quote += o.remaining * o.price
            else:
                own_sell += o.remaining
        locked_base = own_sell
        if len(non_hanging) == len(snap.own_orders):  # nothing hangs: the same orders
            nh_quote, nh_base = locked_quote, own_sell
        else:
            nh_quote = sum(o.remaining * o.price for o in non_hanging if o.side == _BUY)
            nh_base = sum(o.remaining for o in non_hanging if o.side == _SELL)
        b = snap.balances
        # A common denominator: the kernel takes (buy num, sell num, den).
        (bn, bd), (sn, sd) = ref_buy, ref_sell
        args = (bn * sd, sn * bd, bd * sd, b.base_free + locked_base, b.quote_free + locked_quote,
                b.base_free + nh_base, b.quote_free + nh_quote, own_buy, own_sell, allow_buys, allow_sells,
                drop_buys, drop_sells,
                # without optimization the kernel reads only the best prices (its taker filter)
                bid[0] if bid is not None else None, ask[0] if ask is not None else None)
        if memo:
            if args == self._memo_key:
                return self._last_proposal  # the kernel is a pure function of these inputs
        if self._read_book and memo:
            bp, bs, ap, as_ = self._best
            if bid is None:
                bp = bs = _EMPTY
            else:
                bp[0], bs[0] = bid
            if ask is None:
                ap = as_ = _EMPTY
            else:
                ap[0], as_[0] = ask
        raw = self.propose(  # positionally: skew base, quote; budget base, quote; own buy, sell; allow; drop
            self.params, args[0], args[1], args[2], bp, bs, ap, as_, *args[3:13])
        self._memo_key = args if memo else None
        last = self._last_raw
        if (last is not None and raw.buy_prices == last.buy_prices and raw.sell_prices == last.sell_prices
                and raw.buy_sizes == last.buy_sizes and raw.sell_sizes == last.sell_sizes):
            return self._last_proposal  # the same quotes as last tick: the same (immutable) proposal
        self._last_raw = raw
        self._last_proposal = p = Proposal.from_lists(raw.buy_prices, raw.buy_sizes, raw.sell_prices, raw.sell_sizes)
        return p

    # ------------------------------------------------------------------ feedback from the executor
    def on_placed(self, client_id: str, quote: Quote, now_ns: int) -> None:
        """The executor placed `quote` as `client_id`: set the refresh timers (once per batch)."""
        self._events += 1
        if quote.level == HANGING_LEVEL:
            self.hanging.add(client_id)  # a renewed hanging order: no pair, no timers
            return
        self.level_of[client_id] = (quote.side, quote.level)
        self.timers.on_placed(now_ns)

    def on_fill(self, client_id: str, side: Side, price: int, qty: int, fully_filled: bool, now_ns: int) -> None:
        """A fill of one of our orders (`fully_filled`: the order has nothing left)."""
        self._events += 1
        self.inventory_cost.on_fill(side, price, qty)
        if not fully_filled:
            return
        if client_id in self.hanging:
            self.hanging.discard(client_id)  # hanging fills change no timers
            self.renewals.pop(client_id, None)  # filled before its cancel landed: nothing to renew
            return
        self.timers.on_full_fill(now_ns)
        self.last_own_trade_price = price
        if self.cfg.ping_pong_enabled:
            if side == _BUY:
                self.filled_buys += 1
            else:
                self.filled_sells += 1
            if self.filled_buys == self.filled_sells:
                self.filled_buys = self.filled_sells = 0
        pos = self.level_of.pop(client_id, None)
        if self.cfg.hanging_orders_enabled and pos is not None:
            partner_side = _SELL if pos[0] == _BUY else _BUY
            for cid, other in self.level_of.items():
                if other == (partner_side, pos[1]):
                    self.candidates.add(cid)

    def on_closed(self, client_id: str) -> None:
        """An order left the book (cancelled, rejected, expired)."""
        self._events += 1
        self.level_of.pop(client_id, None)
        self.candidates.discard(client_id)
        self.hanging.discard(client_id)


__all__ = ["SCALE", "InventoryCost", "PureMarketMaking"]
