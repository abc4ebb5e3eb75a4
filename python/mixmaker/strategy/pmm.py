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
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from mixmaker.strategy.config import NS, PMMConfig, pct_to_fraction, seconds_to_ns, to_units
from mixmaker.strategy.decision import HANGING_LEVEL, Decision, Proposal, Quote
from mixmaker.strategy.kernel import SCALE, propose
from mixmaker.strategy.market import MarketRules, MarketSnapshot, OwnOrder
from mixmaker.strategy.timers import RefreshTimers

log = logging.getLogger("mixmaker.strategy.pmm")

_EMPTY = np.empty(0, dtype=np.int64)


class InventoryCost:
    """Average cost of the base we hold (price_type = inventory_cost), exact."""

    def __init__(self, base: int, price: int) -> None:
        self.base = base
        self.cost = base * price  # value units

    def on_fill(self, side: str, price: int, qty: int) -> None:
        if side == "buy":
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
        self.level_of: dict[str, tuple[str, int]] = {}  # live non-hanging order -> (side, level)
        self.candidates: set[str] = set()  # partner of a filled pair member; hanging at next refresh
        self.hanging: set[str] = set()
        self.renewals: dict[str, Quote] = {}  # hanging order cancelled for its age -> its copy
        self.last_reason: str | None = None

    # ------------------------------------------------------------------ the tick
    def decide(self, snap: MarketSnapshot) -> Decision:
        now = snap.now_ns
        live = {o.client_id: o for o in snap.own_orders}
        # Renew (place again as they were) old hanging orders whose cancel has been confirmed.
        renew = tuple(q for cid, q in sorted(self.renewals.items()) if cid not in live)
        self.renewals = {cid: q for cid, q in self.renewals.items() if cid in live}
        self.hanging &= live.keys()
        self.candidates &= live.keys()
        book = snap.external_book if self.cfg.price_source == "external_market" else snap.book
        if snap.book is None:
            return self._idle(snap.not_ready or "book not synced", live, cancel_all=self.cfg.cancel_on_desync)
        if book is None:
            return self._idle("external price source not synced", live, cancel_all=self.cfg.cancel_on_desync)
        ref = self._reference(snap, book)
        if ref is None:
            return self._idle("empty book side: no reference price", live, cancel_all=self.cfg.cancel_on_desync)
        ref_buy, ref_sell = ref
        price = ref_buy  # Hummingbot's get_price(): the band, skew and cancel rules use it
        cancels: list[tuple[str, str]] = []
        # Our ordinary quotes: neither hanging nor about to hang (a filled order's partner).
        non_hanging = [o for o in live.values() if o.client_id not in self.hanging and o.client_id not in self.candidates]

        proposal = None
        if self.timers.may_create(now):
            proposal = self._proposal(snap, ref_buy, ref_sell, price, non_hanging)

        # Ratio rules in integers: price = pn / pd, so (x - price) / price = (x pd - pn) / pn.
        pn, pd = price.numerator, price.denominator
        hc, ms = self.hanging_cancel, self.min_spread
        # hanging orders: too far from the price, or too old
        for cid in sorted(self.hanging):
            o = live[cid]
            if abs(o.price * pd - pn) * hc.denominator > hc.numerator * pn:
                cancels.append((cid, "hanging order too far from the price"))
            elif (now - o.created_ns) // NS > self.max_age_s:
                cancels.append((cid, "hanging order renewed after max_order_age"))
                self.renewals[cid] = Quote(o.side, HANGING_LEVEL, o.price, o.remaining)
        # max order age: one old order refreshes them all
        oldest = min((o.created_ns for o in non_hanging), default=now)
        if (now - oldest) // NS > self.max_age_s:
            cancels += [(o.client_id, "max_order_age") for o in non_hanging]
        else:
            for o in non_hanging:
                sign = -1 if o.side == "buy" else 1
                if sign * (o.price * pd - pn) * ms.denominator < ms.numerator * pn:
                    cancels.append((o.client_id, "below minimum_spread"))

        refresh = self.timers.refresh_due(now)
        if refresh and self.cfg.hanging_orders_enabled:
            # Candidates still live when the refresh comes are kept as hanging orders.
            for cid in sorted(self.candidates):
                self.hanging.add(cid)
                self.level_of.pop(cid, None)
            self.candidates.clear()
        waiting = self.cfg.should_wait_order_cancel_confirmation and snap.cancels_in_flight > 0
        create = proposal is not None and not waiting
        reason = None
        if proposal is None and self.timers.after_fill:
            reason = f"filled_order_delay: no new orders before {self.timers.create_ts} ns"
        elif proposal is not None and not len(proposal):
            reason = "proposal is empty (budget, bands, or every quote would take)"
        self.last_reason = reason
        hold = frozenset(self.hanging | self.candidates)
        return Decision(proposal, tuple(cancels), refresh, create, self.tolerance, hold, reason, renew)

    def _idle(self, reason: str, live: dict[str, OwnOrder], *, cancel_all: bool) -> Decision:
        if reason != self.last_reason:
            log.info("%s: %s", self.rules.symbol, reason)
        self.last_reason = reason
        cancels = tuple((cid, reason) for cid in sorted(live)) if cancel_all else ()
        return Decision.idle(reason, cancels)

    def _reference(self, snap: MarketSnapshot, book) -> tuple[Fraction, Fraction] | None:
        bid, ask = book.best_bid_raw(), book.best_ask_raw()
        if bid is None or ask is None:
            return None
        mid = Fraction(bid[0] + ask[0], 2)
        t = self.cfg.price_type
        if t == "last_price" and snap.last_trade_price is not None:
            return Fraction(snap.last_trade_price), Fraction(snap.last_trade_price)
        if t == "last_own_trade_price" and self.last_own_trade_price is not None:
            return Fraction(self.last_own_trade_price), Fraction(self.last_own_trade_price)
        if t == "best_bid":
            return Fraction(bid[0]), Fraction(bid[0])
        if t == "best_ask":
            return Fraction(ask[0]), Fraction(ask[0])
        if t == "inventory_cost":
            cost = self.inventory_cost.price()
            return mid, max(cost, mid) if cost is not None else mid
        return mid, mid

    def _sides_allowed(self, now: int, price: Fraction) -> tuple[bool, bool]:
        buys = sells = True
        if self.ceiling is not None and price >= self.ceiling:
            buys = False
        if self.floor is not None and price <= self.floor:
            sells = False
        if self.cfg.moving_price_band_enabled:
            if self.band_set_ns is None or now >= self.band_set_ns + self.band_refresh_ns:
                self.band = (price * (100 + Fraction(self.cfg.price_floor_pct)) / 100,
                             price * (100 + Fraction(self.cfg.price_ceiling_pct)) / 100)
                self.band_set_ns = now
            floor, ceiling = self.band
            if price >= ceiling:
                buys = False
            if price <= floor:
                sells = False
        return buys, sells

    def _proposal(self, snap: MarketSnapshot, ref_buy: Fraction, ref_sell: Fraction, price: Fraction,
                  non_hanging: list[OwnOrder]) -> Proposal:
        allow_buys, allow_sells = self._sides_allowed(snap.now_ns, price)
        drop_buys = drop_sells = 0
        if self.cfg.ping_pong_enabled:
            drop_buys, drop_sells = self.filled_buys, self.filled_sells
        n = self.cfg.optimization_book_levels
        bp, bs, ap, as_ = snap.book.top_raw(n) if self.params.optimize or not self.params.take_if_crossed else (_EMPTY,) * 4
        if not self.params.optimize:
            bp, bs, ap, as_ = bp[:1], bs[:1], ap[:1], as_[:1]  # only the taker filter reads them
        own_buy = sum(o.remaining for o in snap.own_orders if o.side == "buy")
        own_sell = sum(o.remaining for o in snap.own_orders if o.side == "sell")
        locked_quote = sum(o.remaining * o.price for o in snap.own_orders if o.side == "buy")
        locked_base = own_sell
        nh_quote = sum(o.remaining * o.price for o in non_hanging if o.side == "buy")
        nh_base = sum(o.remaining for o in non_hanging if o.side == "sell")
        b = snap.balances
        # A common denominator: the kernel takes (buy num, sell num, den).
        den = ref_buy.denominator * ref_sell.denominator
        rb, rs = ref_buy.numerator * ref_sell.denominator, ref_sell.numerator * ref_buy.denominator
        raw = self.propose(
            self.params, rb, rs, den, bp, bs, ap, as_,
            skew_base=b.base_free + locked_base, skew_quote=b.quote_free + locked_quote,
            budget_base=b.base_free + nh_base, budget_quote=b.quote_free + nh_quote,
            own_buy=own_buy, own_sell=own_sell, allow_buys=allow_buys, allow_sells=allow_sells,
            drop_buys=drop_buys, drop_sells=drop_sells,
        )
        return Proposal.from_lists(raw.buy_prices, raw.buy_sizes, raw.sell_prices, raw.sell_sizes)

    # ------------------------------------------------------------------ feedback from the executor
    def on_placed(self, client_id: str, quote: Quote, now_ns: int) -> None:
        """The executor placed `quote` as `client_id`: set the refresh timers (once per batch)."""
        if quote.level == HANGING_LEVEL:
            self.hanging.add(client_id)  # a renewed hanging order: no pair, no timers
            return
        self.level_of[client_id] = (quote.side, quote.level)
        self.timers.on_placed(now_ns)

    def on_fill(self, client_id: str, side: str, price: int, qty: int, fully_filled: bool, now_ns: int) -> None:
        """A fill of one of our orders (`fully_filled`: the order has nothing left)."""
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
            if side == "buy":
                self.filled_buys += 1
            else:
                self.filled_sells += 1
            if self.filled_buys == self.filled_sells:
                self.filled_buys = self.filled_sells = 0
        pos = self.level_of.pop(client_id, None)
        if self.cfg.hanging_orders_enabled and pos is not None:
            partner_side = "sell" if pos[0] == "buy" else "buy"
            for cid, other in self.level_of.items():
                if other == (partner_side, pos[1]):
                    self.candidates.add(cid)

    def on_closed(self, client_id: str) -> None:
        """An order left the book (cancelled, rejected, expired)."""
        self.level_of.pop(client_id, None)
        self.candidates.discard(client_id)
        self.hanging.discard(client_id)


__all__ = ["SCALE", "InventoryCost", "PureMarketMaking"]
