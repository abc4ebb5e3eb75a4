"""The PMM proposal computed the way Hummingbot computes it: Python `Decimal` prices and sizes,
the book walked as Python rows of floats. Same signature as `mixmaker._proposal.propose`, so a
controller can run on either; the parity test and the benches compare the two.

It follows mixmaker's two documented deviations (level prices re-snapped after order
optimization; own volume summed over our orders), so both sides compute the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

SCALE = Decimal(100_000_000)


@dataclass
class DecimalProposal:
    buy_prices: list[int] = field(default_factory=list)
    buy_sizes: list[int] = field(default_factory=list)
    sell_prices: list[int] = field(default_factory=list)
    sell_sizes: list[int] = field(default_factory=list)


def _q(x: Decimal, step: Decimal) -> Decimal:
    return (x // step) * step


def _price_for_volume(rows, volume: float) -> Decimal | None:
    cum = 0.0
    for price, amount in rows:  # Hummingbot walks OrderBookRow objects holding floats
        cum += amount
        if cum >= volume:
            return Decimal(str(price))
    return None


def _ratios(base: Decimal, quote: Decimal, price: Decimal, target: Decimal, rng: Decimal) -> tuple[Decimal, Decimal]:
    total = base * price + quote
    if total <= 0 or rng <= 0:
        return Decimal(0), Decimal(0)
    base_value = base * price
    range_value = min(rng * price, total / 2)
    target_value = total * target
    left = max(target_value - range_value, Decimal(0))
    right = target_value + range_value

    def interp(x, x0, x1, y0, y1):
        if x <= x0:
            return y0
        if x >= x1:
            return y1
        return y0 + (x - x0) * (y1 - y0) / (x1 - x0)

    if base_value < target_value:
        bid = interp(interp(base_value, left, target_value, Decimal(0), Decimal("0.5")), Decimal(0), Decimal("0.5"), Decimal(2), Decimal(1))
    else:
        bid = interp(interp(base_value, target_value, right, Decimal("0.5"), Decimal(1)), Decimal("0.5"), Decimal(1), Decimal(1), Decimal(0))
    return bid, 2 - bid


def propose(p, ref_buy_num, ref_sell_num, ref_den, bid_px, bid_sz, ask_px, ask_sz,
            skew_base=0, skew_quote=0, budget_base=0, budget_quote=0, own_buy=0, own_sell=0,
            allow_buys=True, allow_sells=True, drop_buys=0, drop_sells=0, *, price_decimals=2, size_decimals=3):
    pd, sd = Decimal(10) ** price_decimals, Decimal(10) ** size_decimals
    tick, lot = Decimal(p.tick) / pd, Decimal(p.lot) / sd
    ref_buy, ref_sell = Decimal(ref_buy_num) / ref_den / pd, Decimal(ref_sell_num) / ref_den / pd
    bs_, as_, ls = Decimal(p.bid_spread) / SCALE, Decimal(p.ask_spread) / SCALE, Decimal(p.level_spread) / SCALE
    fee = Decimal(p.fee) / SCALE
    buys, sells = [], []
    for i in range(p.levels):
        size = _q(Decimal(p.order_amount) / sd + i * Decimal(p.level_amount) / sd, lot)
        if size <= 0:
            continue
        if allow_buys and i >= drop_buys:
            price = _q(ref_buy * (1 - bs_ - i * ls), tick)
            if price > 0:
                buys.append([price, size])
        if allow_sells and i >= drop_sells:
            price = _q(ref_sell * (1 + as_ + i * ls), tick)
            if price > 0:
                sells.append([price, size])
    if p.optimize:
        bids = [(float(x) / float(pd), float(y) / float(sd)) for x, y in zip(bid_px.tolist(), bid_sz.tolist())]
        asks = [(float(x) / float(pd), float(y) / float(sd)) for x, y in zip(ask_px.tolist(), ask_sz.tolist())]
        if buys:
            top = _price_for_volume(bids, float(Decimal(p.bid_depth + own_buy) / sd))
            if top is not None:
                above = ((top / tick).to_integral_value(ROUND_CEILING) + 1) * tick
                lower = _q(min(buys[0][0], above), tick)
                for i, b in enumerate(buys):
                    b[0] = _q(lower * (1 - ls * i), tick)
        if sells:
            top = _price_for_volume(asks, float(Decimal(p.ask_depth + own_sell) / sd))
            if top is not None:
                below = ((top / tick).to_integral_value(ROUND_FLOOR) - 1) * tick
                higher = _q(max(sells[0][0], below), tick)
                for i, s in enumerate(sells):
                    s[0] = _q(higher * (1 + ls * i), tick)
    if p.add_costs:
        for b in buys:
            b[0] = _q(b[0] * (1 - fee), tick)
        for s in sells:
            s[0] = _q(s[0] * (1 + fee), tick)
    if p.skew_enabled and (buys or sells):
        total = Decimal(p.total_order_size()) / sd * Decimal(p.range_multiplier) / SCALE
        bid_r, ask_r = _ratios(Decimal(skew_base) / sd, Decimal(skew_quote) / (pd * sd), ref_buy,
                               Decimal(p.target_base) / SCALE, total)
        for b in buys:
            b[1] = _q(b[1] * bid_r, lot)
        for s in sells:
            s[1] = _q(s[1] * ask_r, lot)
    quote, base = Decimal(budget_quote) / (pd * sd), Decimal(budget_base) / sd
    for b in buys:
        need = b[1] * b[0] * (1 + fee)
        if quote < need:
            b[1] = _q(quote / (b[0] * (1 + fee)), lot)
            quote = Decimal(0)
        elif quote == 0:
            b[1] = Decimal(0)
        else:
            quote -= need
    for s in sells:
        if base < s[1]:
            s[1] = _q(base, lot)
            base = Decimal(0)
        elif base == 0:
            s[1] = Decimal(0)
        else:
            base -= s[1]
    best_ask = Decimal(int(ask_px[0])) / pd if len(ask_px) else None
    best_bid = Decimal(int(bid_px[0])) / pd if len(bid_px) else None
    min_size = Decimal(p.min_size) / sd
    out = DecimalProposal()
    for price, size in buys:
        if size > 0 and size >= min_size and price > 0 and (p.take_if_crossed or best_ask is None or price < best_ask):
            out.buy_prices.append(int(price * pd))
            out.buy_sizes.append(int(size * sd))
    for price, size in sells:
        if size > 0 and size >= min_size and price > 0 and (p.take_if_crossed or best_bid is None or price > best_bid):
            out.sell_prices.append(int(price * pd))
            out.sell_sizes.append(int(size * sd))
    return out


def within_tolerance(current: list[Decimal], proposed: list[Decimal], tol: Decimal) -> bool:
    """Hummingbot's c_is_within_tolerance: same count, sorted pairs within tol of the current price."""
    if len(current) != len(proposed):
        return False
    return all(abs(p - c) / c <= tol for c, p in zip(sorted(current), sorted(proposed)))
