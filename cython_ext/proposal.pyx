# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The per-tick proposal math of pure market making, in exact integers (`mixmaker._proposal`).

Units: prices are the book's scaled integers (price_decimals), sizes are scaled base units
(size_decimals), values (quote amounts) are price x size, i.e. scaled by both. Rates (spreads,
fees, targets) are integer fractions of `SCALE` (1e-8 resolution: 0.1 % is 100_000). A
reference price is a fraction num/den (den 2 for a mid between two ticks), so nothing is rounded
before the formula rounds it. Intermediate products are 128-bit, so no realistic input overflows.

The steps, their order and their rounding are Hummingbot's PMM (see the reference,
section A5): levels -> order optimization -> transaction costs -> inventory skew -> budget ->
taker filter. Prices and sizes are floored to the market's tick and lot (Hummingbot floors asks
too). Two deliberate differences, both because an off-grid price cannot be sent: prices set by
order optimization are re-snapped to the tick; a side whose depth walk runs past the levels
given is left unoptimised (Hummingbot would compare against NaN).
"""

from math import gcd

from libc.stdint cimport int64_t

from mixmaker._core import MixmakerError  # registered before this module is initialised (see clock.pyx)

cdef extern from *:
    ctypedef long long int128 "__int128"

SCALE = 100_000_000
cdef int64_t _SCALE = 100_000_000
# Levels per side: the proposal's working arrays live on the C stack.
cdef enum:
    MAX_LEVELS = 64
MAX_LEVELS_PER_SIDE = MAX_LEVELS
# A skew ratio term below this times a size (< 2^63) stays inside 128 bits.
_FITS = 1 << 62


class ProposalInputError(MixmakerError, ValueError):
    """Parameters or inputs the proposal math cannot use (non-positive tick, bad ratio, ...)."""


cdef inline int128 _floor_to(int128 x, int128 step):
    # Floor to a multiple of step (step > 0), correct for negative x too.
    cdef int128 q = x / step
    if x < 0 and q * step != x:
        q -= 1
    return q * step


cdef inline int128 _min128(int128 a, int128 b):
    return a if a < b else b


cdef class ProposalParams:
    """A PMM configuration in the kernel's units; built once, used every tick."""

    cdef public int64_t tick, lot, min_size
    cdef public int64_t bid_spread, ask_spread, level_spread
    cdef public int64_t order_amount, level_amount, levels
    cdef public bint skew_enabled
    cdef public int64_t target_base, range_multiplier
    cdef public bint optimize
    cdef public int64_t bid_depth, ask_depth
    cdef public bint add_costs
    cdef public int64_t fee
    cdef public bint take_if_crossed

    def __init__(self, *, int64_t tick, int64_t lot, int64_t bid_spread, int64_t ask_spread,
                 int64_t order_amount, int64_t levels=1, int64_t level_spread=0,
                 int64_t level_amount=0, int64_t min_size=0, bint skew_enabled=False,
                 int64_t target_base=SCALE // 2, int64_t range_multiplier=SCALE,
                 bint optimize=False, int64_t bid_depth=0, int64_t ask_depth=0,
                 bint add_costs=False, int64_t fee=0, bint take_if_crossed=False):
        if tick <= 0 or lot <= 0:
            raise ProposalInputError(f"tick and lot must be positive, got tick={tick} lot={lot}")
        if not 0 <= levels <= MAX_LEVELS:
            raise ProposalInputError(f"levels must be between 0 and {MAX_LEVELS}, got {levels}")
        if order_amount < 0:
            raise ProposalInputError("order_amount must not be negative")
        if not 0 <= target_base <= _SCALE:
            raise ProposalInputError(f"target_base {target_base} is outside [0, {SCALE}]")
        if fee <= -_SCALE:
            raise ProposalInputError(f"fee {fee} is -100 % or less")
        self.tick, self.lot, self.min_size = tick, lot, min_size
        self.bid_spread, self.ask_spread, self.level_spread = bid_spread, ask_spread, level_spread
        self.order_amount, self.level_amount, self.levels = order_amount, level_amount, levels
        self.skew_enabled, self.target_base, self.range_multiplier = skew_enabled, target_base, range_multiplier
        self.optimize, self.bid_depth, self.ask_depth = optimize, bid_depth, ask_depth
        self.add_costs, self.fee, self.take_if_crossed = add_costs, fee, take_if_crossed

    def total_order_size(self):
        """2 x (L x order_amount + L(L-1)/2 x level_amount), in size units."""
        cdef int64_t L = self.levels
        return 2 * (L * self.order_amount + L * (L - 1) // 2 * self.level_amount)


cdef class RawProposal:
    """Buys (best first) and sells (best first) as parallel lists of ints."""

    cdef public list buy_prices, buy_sizes, sell_prices, sell_sizes

    def __init__(self, list buy_prices, list buy_sizes, list sell_prices, list sell_sizes):
        self.buy_prices, self.buy_sizes = buy_prices, buy_sizes
        self.sell_prices, self.sell_sizes = sell_prices, sell_sizes

    def __repr__(self):
        return (f"RawProposal(buys={list(zip(self.buy_prices, self.buy_sizes))}, "
                f"sells={list(zip(self.sell_prices, self.sell_sizes))})")


def inventory_skew(base, quote, price_num, price_den, target_base, range_base):
    """Hummingbot's inventory skew as exact fractions: (bid_num, ask_num, den).

    base in size units, quote in value units (price x size), price = price_num/price_den in
    price units, target_base a fraction of SCALE, range_base the tolerable range (total order
    size x range multiplier) in size units x SCALE. Both ratios are 0 when the portfolio or the
    range is worth nothing. Python integers: once per tick, and exact at any magnitude."""
    if price_den <= 0 or price_num <= 0:
        raise ProposalInputError("the skew price must be positive")
    # Every value below is multiplied by 2 x SCALE x price_den, so all stay integers.
    total = base * price_num + quote * price_den                # total value x den
    if total <= 0 or range_base <= 0:
        return (0, 0, 1)
    target = 2 * total * target_base
    base_value = 2 * base * price_num * SCALE
    range_value = min(2 * range_base * price_num, total * SCALE)
    if base_value < target:
        den = min(range_value, target)                          # target - left limit
        bid = den + min(target - base_value, den)               # 1 .. 2
    else:
        den = range_value
        bid = den - min(base_value - target, den)               # 0 .. 1
    return (bid, 2 * den - bid, den)


cdef int64_t _price_for_volume(const int64_t[:] px, const int64_t[:] sz, int128 volume):
    # First price where the cumulative size reaches `volume`; -1 if the levels run out.
    cdef Py_ssize_t i, n = px.shape[0]
    cdef int128 cum = 0
    for i in range(n):
        cum += sz[i]
        if cum >= volume:
            return px[i]
    return -1


def propose(ProposalParams p, ref_buy_num, ref_sell_num, ref_den,
            const int64_t[:] bid_px, const int64_t[:] bid_sz,
            const int64_t[:] ask_px, const int64_t[:] ask_sz,
            skew_base=0, skew_quote=0, budget_base=0, budget_quote=0,
            int64_t own_buy=0, int64_t own_sell=0,
            bint allow_buys=True, bint allow_sells=True,
            Py_ssize_t drop_buys=0, Py_ssize_t drop_sells=0):
    """One PMM proposal. `bid_*`/`ask_*` are the book's top levels (`OrderBook.top_raw`), best
    first. `skew_*` are base/quote holdings for the skew, `budget_*` what orders may lock.
    `allow_*` carry the price bands, `drop_*` ping-pong's innermost levels to leave out."""
    cdef int128 tick = p.tick, lot = p.lot, S = _SCALE, ls = p.level_spread
    cdef int128 rbn = <int64_t>ref_buy_num, rsn = <int64_t>ref_sell_num, rd = <int64_t>ref_den
    if rd <= 0 or rbn <= 0 or rsn <= 0:
        raise ProposalInputError("the reference price must be positive")
    cdef int64_t bp[MAX_LEVELS]
    cdef int64_t bs[MAX_LEVELS]
    cdef int64_t sp[MAX_LEVELS]
    cdef int64_t ss[MAX_LEVELS]
    cdef Py_ssize_t i, nb = 0, ns = 0, L = p.levels
    cdef int128 price, size, edge, top
    # 1. levels (ping-pong drops the innermost ones; bands drop a whole side)
    for i in range(L):
        size = _floor_to(<int128>p.order_amount + i * <int128>p.level_amount, lot)
        if size <= 0:
            continue
        if allow_buys and i >= drop_buys:
            price = _floor_to(rbn * (S - p.bid_spread - i * ls) / (rd * S), tick)
            if price > 0:
                bp[nb] = <int64_t>price; bs[nb] = <int64_t>size; nb += 1
        if allow_sells and i >= drop_sells:
            price = _floor_to(rsn * (S + p.ask_spread + i * ls) / (rd * S), tick)
            if price > 0:
                sp[ns] = <int64_t>price; ss[ns] = <int64_t>size; ns += 1
    # 2. order optimization: one tick inside the best price at depth (own size included, so we
    # never jump our own order), and only ever away from the mid.
    if p.optimize and nb:
        top = _price_for_volume(bid_px, bid_sz, <int128>p.bid_depth + own_buy)
        if top > 0:
            edge = ((top + tick - 1) / tick + 1) * tick
            edge = _floor_to(_min128(<int128>bp[0], edge), tick)
            for i in range(nb):
                bp[i] = <int64_t>_floor_to(edge * (S - i * ls) / S, tick)
    if p.optimize and ns:
        top = _price_for_volume(ask_px, ask_sz, <int128>p.ask_depth + own_sell)
        if top > 0:
            edge = (top / tick - 1) * tick
            if edge < sp[0]:
                edge = sp[0]
            edge = _floor_to(edge, tick)
            for i in range(ns):
                sp[i] = <int64_t>_floor_to(edge * (S + i * ls) / S, tick)
    return _finish(p, bp, bs, nb, sp, ss, ns, bid_px, ask_px, budget_base, budget_quote,
                   skew_base if p.skew_enabled else None, skew_quote, ref_buy_num, ref_den)


def finish(ProposalParams p, list buy_prices, list buy_sizes, list sell_prices, list sell_sizes,
           const int64_t[:] bid_px, const int64_t[:] ask_px, budget_base=0, budget_quote=0):
    """The last steps of a proposal (transaction costs, budget, taker filter) applied to levels
    priced elsewhere (Avellaneda-Stoikov)."""
    cdef int64_t bp[MAX_LEVELS]
    cdef int64_t bs[MAX_LEVELS]
    cdef int64_t sp[MAX_LEVELS]
    cdef int64_t ss[MAX_LEVELS]
    cdef Py_ssize_t i, nb = len(buy_prices), ns = len(sell_prices)
    if nb > MAX_LEVELS or ns > MAX_LEVELS or nb != len(buy_sizes) or ns != len(sell_sizes):
        raise ProposalInputError(f"at most {MAX_LEVELS} levels per side, with a size for each price")
    for i in range(nb):
        bp[i] = buy_prices[i]; bs[i] = buy_sizes[i]
    for i in range(ns):
        sp[i] = sell_prices[i]; ss[i] = sell_sizes[i]
    return _finish(p, bp, bs, nb, sp, ss, ns, bid_px, ask_px, budget_base, budget_quote, None, 0, 1, 1)


cdef RawProposal _finish(ProposalParams p, int64_t* bp, int64_t* bs, Py_ssize_t nb,
                         int64_t* sp, int64_t* ss, Py_ssize_t ns,
                         const int64_t[:] bid_px, const int64_t[:] ask_px,
                         budget_base, budget_quote, skew_base, skew_quote, ref_num, ref_den):
    cdef int128 tick = p.tick, lot = p.lot, S = _SCALE, fee = p.fee
    cdef Py_ssize_t i
    # 3. transaction costs
    if p.add_costs:
        for i in range(nb):
            bp[i] = <int64_t>_floor_to(<int128>bp[i] * (S - fee) / S, tick)
        for i in range(ns):
            sp[i] = <int64_t>_floor_to(<int128>sp[i] * (S + fee) / S, tick)
    # 4. inventory skew (sizes); the ratio is an exact fraction of Python integers, reduced,
    # and applied in 128-bit C arithmetic whenever its terms fit (they nearly always do)
    cdef int128 bn, an, dn
    if skew_base is not None and (nb or ns):
        bid_r, ask_r, den = inventory_skew(skew_base, skew_quote, ref_num, ref_den, p.target_base,
                                           p.total_order_size() * p.range_multiplier)
        g = gcd(gcd(bid_r, ask_r), den)
        bid_r, ask_r, den = bid_r // g, ask_r // g, den // g
        if bid_r < _FITS and ask_r < _FITS and den < _FITS:
            bn, an, dn = <int64_t>bid_r, <int64_t>ask_r, <int64_t>den
            for i in range(nb):
                bs[i] = <int64_t>_floor_to(<int128>bs[i] * bn / dn, lot)
            for i in range(ns):
                ss[i] = <int64_t>_floor_to(<int128>ss[i] * an / dn, lot)
        else:
            for i in range(nb):
                bs[i] = (bs[i] * bid_r // den) // p.lot * p.lot
            for i in range(ns):
                ss[i] = (ss[i] * ask_r // den) // p.lot * p.lot
    # 5. budget: buys lock price x size x (1 + fee) of quote, sells lock size of base
    cdef int128 quote = <int128>(<int64_t>budget_quote) * S, base = <int64_t>budget_base, need
    for i in range(nb):
        need = <int128>bs[i] * bp[i] * (S + fee)
        if quote < need:
            bs[i] = <int64_t>_floor_to(quote / (<int128>bp[i] * (S + fee)), lot)
            quote = 0
        elif quote == 0:
            bs[i] = 0
        else:
            quote -= need
    for i in range(ns):
        if base < ss[i]:
            ss[i] = <int64_t>_floor_to(base, lot)
            base = 0
        elif base == 0:
            ss[i] = 0
        else:
            base -= ss[i]
    # 6. drop empty or too small orders, and (unless allowed) orders that would take
    cdef int64_t best_ask = ask_px[0] if ask_px.shape[0] else -1
    cdef int64_t best_bid = bid_px[0] if bid_px.shape[0] else -1
    cdef list obp = [], obs = [], osp = [], oss = []
    for i in range(nb):
        if bs[i] <= 0 or bs[i] < p.min_size or bp[i] <= 0:
            continue
        if not p.take_if_crossed and best_ask > 0 and bp[i] >= best_ask:
            continue
        obp.append(bp[i]); obs.append(bs[i])
    for i in range(ns):
        if ss[i] <= 0 or ss[i] < p.min_size or sp[i] <= 0:
            continue
        if not p.take_if_crossed and best_bid > 0 and sp[i] <= best_bid:
            continue
        osp.append(sp[i]); oss.append(ss[i])
    return RawProposal(obp, obs, osp, oss)


cpdef bint within_tolerance(int64_t current, int64_t proposed, int64_t tolerance):
    """|proposed - current| / current <= tolerance (a fraction of SCALE); a negative
    tolerance means "always refresh"."""
    if tolerance < 0 or current <= 0:
        return False
    cdef int128 diff = <int128>proposed - current
    if diff < 0:
        diff = -diff
    return diff * _SCALE <= <int128>tolerance * current


def all_within_tolerance(list current, list proposed, int64_t tolerance):
    """Hummingbot's rule: same count, and the sorted lists pair up within tolerance."""
    if len(current) != len(proposed):
        return False
    cdef Py_ssize_t i
    cdef list c = sorted(current), q = sorted(proposed)
    for i in range(len(c)):
        if not within_tolerance(c[i], q[i], tolerance):
            return False
    return True
