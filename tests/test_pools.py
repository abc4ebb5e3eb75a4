"""Share arithmetic on the ledger: mint and burn against an independent Fraction model, the
invariants members rely on, and idempotency by order id."""

from __future__ import annotations

from fractions import Fraction
from math import floor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixmaker.funds.accounts import BOT_SHARE, ROUNDING, WALLET, Flow, exchange, inflow, outflow, pool, user_order
from mixmaker.funds.ledger import Ledger
from mixmaker.store import SqliteStore
from mixmaker.users.pools import SHARE_SCALE, PoolError, PoolLedger, PoolTerms, mid_units

PID = "binance:BTC/USDT:tight"
EX = exchange("binance")


def setup(bot_share: Fraction = Fraction(1, 10)) -> tuple[SqliteStore, Ledger, PoolLedger]:
    store = SqliteStore()
    ledger = Ledger(store)
    ledger.register_asset("BTC", 8)
    ledger.register_asset("USDT", 8)
    return store, ledger, PoolLedger(store, ledger, [PoolTerms(PID, "BTC", "USDT", bot_share)])


def pay(ledger: Ledger, order: str, n: int, btc: int, usdt: int) -> None:
    entries = []
    for asset, units in (("BTC", btc), ("USDT", usdt)):
        if units:
            entries += inflow(Flow.PAYMENT, asset, units, WALLET, user_order(order))
    ledger.post_now(f"payment:{order}-{n}", entries, ref=order)


def trade(ledger: Ledger, n: int, d_btc: int, d_usdt: int) -> None:
    """The pool bought (d_btc > 0) or sold base for quote on the exchange (no fee)."""
    entries = []
    for asset, d in (("BTC", d_btc), ("USDT", d_usdt)):
        if d > 0:
            entries += inflow(Flow.TRADE, asset, d, EX, pool(PID))
        elif d < 0:
            entries += outflow(Flow.TRADE, asset, -d, EX, pool(PID))
    if entries:
        ledger.post_now(f"fill:binance:BTCUSDT:{n}", entries, ref=PID)


def move_to_exchange(ledger: Ledger, order: str, btc: int, usdt: int) -> None:
    """The test's stand-in for the allocator: wallet -> exchange (holdings only)."""
    from mixmaker.funds.accounts import transfer

    entries = []
    for asset, units in (("BTC", btc), ("USDT", usdt)):
        if units:
            entries += transfer(Flow.MOVE, asset, units, WALLET, EX)
    ledger.post_now(f"move-arrived:{order}", entries, ref=order)


def test_two_members_trade_and_leave_to_the_unit():
    store, ledger, pools = setup(Fraction(1, 10))
    mid = Fraction(60_000)  # 60000 USDT/BTC: same scale for both assets (8 decimals)
    pay(ledger, "a", 1, 100_000_000, 0)  # 1 BTC
    move_to_exchange(ledger, "a", 100_000_000, 0)
    with store.transaction() as tx:
        ma = pools.mint(tx, "a", PID, mid, {"BTC": 100_000_000})
    assert ma.shares == 60_000 * 10**8 * SHARE_SCALE and ma.value == 60_000 * 10**8
    assert ledger.owed(pool(PID), "BTC") == 10**8 and ledger.owed(user_order("a"), "BTC") == 0
    pay(ledger, "b", 1, 0, 30_000 * 10**8)  # 30000 USDT
    move_to_exchange(ledger, "b", 0, 30_000 * 10**8)
    with store.transaction() as tx:
        mb = pools.mint(tx, "b", PID, mid, {"USDT": 30_000 * 10**8})
    assert mb.shares == ma.shares // 2
    # the pool sells 0.5 BTC at 62000: +31000 USDT; then the mid is 62000
    trade(ledger, 1, -50_000_000, 31_000 * 10**8)
    mid2 = Fraction(62_000)
    # a owns 2/3: 1/3 BTC and 2/3 * 61000 USDT; value 2/3 * (0.5*62000 + 61000) = 61333.33..
    with store.transaction() as tx:
        ba = pools.burn(tx, "a", mid2)
    ent_btc, ent_usdt = Fraction(50_000_000 * 2, 3), Fraction(61_000 * 10**8 * 2, 3)
    value_now = ent_btc * mid2 + ent_usdt
    gain = value_now - 60_000 * 10**8
    cut = Fraction(1, 10) * gain / value_now
    assert ba.to_order == {"BTC": floor(ent_btc - ent_btc * cut), "USDT": floor(ent_usdt - ent_usdt * cut)}
    assert ba.to_bot == {"BTC": floor(ent_btc * cut), "USDT": floor(ent_usdt * cut)}
    assert ba.value_now == value_now and ba.gain == gain
    assert ledger.owed(BOT_SHARE, "USDT") == ba.to_bot["USDT"]
    assert ledger.owed(user_order("a"), "USDT") == ba.to_order["USDT"]
    # b, alone now, gets everything the pool has left; b lost (its 30000 is worth 30666 - no: check)
    with store.transaction() as tx:
        bb = pools.burn(tx, "b", mid2)
    assert ledger.holdings_of(pool(PID)) == {}
    assert bb.value_now == ledger.owed(user_order("b"), "BTC") * mid2 + ledger.owed(user_order("b"), "USDT") + sum(
        bb.to_bot[a] * (mid2 if a == "BTC" else 1) for a in bb.to_bot) + sum(
        bb.to_rounding[a] * (mid2 if a == "BTC" else 1) for a in bb.to_rounding)
    assert ledger.verify() == []


def test_mint_and_burn_are_idempotent_by_order_id():
    store, ledger, pools = setup()
    pay(ledger, "a", 1, 10**8, 10**8)
    with store.transaction() as tx:
        first = pools.mint(tx, "a", PID, Fraction(3), {"BTC": 10**8, "USDT": 10**8})
    with store.transaction() as tx:
        again = pools.mint(tx, "a", PID, Fraction(5), {"BTC": 1})  # another mid: the first mint stands
    assert again.shares == first.shares and again.mid == first.mid and again.units == first.units
    with store.transaction() as tx:
        b1 = pools.burn(tx, "a", Fraction(4))
    with store.transaction() as tx:
        b2 = pools.burn(tx, "a", Fraction(9))
    assert b1 == b2
    assert len(ledger.transactions(ref="a")) == 3 and ledger.verify() == []


def test_refusals():
    store, ledger, pools = setup()
    with store.transaction() as tx, pytest.raises(PoolError, match="not owed"):
        pools.mint(tx, "empty", PID, Fraction(1), {"BTC": 5})
    with store.transaction() as tx, pytest.raises(PoolError, match="nothing to mint"):
        pools.mint(tx, "empty", PID, Fraction(1), {})
    ledger.register_asset("ETH", 8)
    ledger.post_now("payment:x", inflow(Flow.PAYMENT, "ETH", 5, WALLET, user_order("x")))
    with store.transaction() as tx, pytest.raises(PoolError, match="does not trade"):
        pools.mint(tx, "x", PID, Fraction(1), {"ETH": 5})
    with store.transaction() as tx, pytest.raises(PoolError, match="unknown pool"):
        pools.mint(tx, "x", "nope", Fraction(1), {"BTC": 5})
    with store.transaction() as tx, pytest.raises(PoolError, match="no shares"):
        pools.burn(tx, "x", Fraction(1))
    with pytest.raises(PoolError, match="bot_share"):
        PoolTerms("p", "BTC", "USDT", Fraction(1))


def test_mid_units_scales_prices_to_ledger_units():
    # a book mid of (6000001 + 6000003) / 2 cents, BTC at 8 decimals and USDT at 6
    m = mid_units(12_000_004, 2, 2, 8, 6)
    assert m == Fraction(6_000_002 * 10**6, 10**2 * 10**8)


# --- the Fraction model ----------------------------------------------------------------------------

class Model:
    """The rules of the design, written out independently: integer holdings, exact shares."""

    def __init__(self, bot_share: Fraction) -> None:
        self.bot_share = bot_share
        self.pool = {"BTC": 0, "USDT": 0}
        self.shares: dict[str, int] = {}
        self.value_at_mint: dict[str, Fraction] = {}
        self.rounding = {"BTC": 0, "USDT": 0}

    def value(self, h, mid):
        return h["BTC"] * mid + h["USDT"]

    def mint(self, order, btc, usdt, mid):
        v = btc * mid + usdt
        total = sum(self.shares.values())
        if total == 0:
            s = floor(v * SHARE_SCALE)
            for a in self.pool:
                self.rounding[a] += self.pool[a]
                self.pool[a] = 0
        else:
            s = floor(total * v / self.value(self.pool, mid))
        self.pool["BTC"] += btc
        self.pool["USDT"] += usdt
        self.shares[order] = s
        self.value_at_mint[order] = v
        return s

    def burn(self, order, mid):
        s, total = self.shares.pop(order), sum(self.shares.values()) + self.shares.get(order, 0)
        total += s
        ent = {a: Fraction(self.pool[a] * s, total) for a in self.pool}
        vn = self.value(ent, mid)
        gain = vn - self.value_at_mint.pop(order)
        share = self.bot_share * gain / vn if gain > 0 and vn > 0 else 0
        out = {}
        for a in ent:
            cut = ent[a] * share
            mine, bots = floor(ent[a] - cut), floor(cut)
            rest = floor(ent[a]) - mine - bots
            assert rest in (0, 1)
            self.pool[a] -= floor(ent[a])
            self.rounding[a] += rest
            out[a] = (mine, bots, rest)
        return out

    def entitlement(self, order):
        total = sum(self.shares.values())
        return {a: Fraction(self.pool[a] * self.shares[order], total) for a in self.pool}


amounts = st.integers(min_value=0, max_value=10**12)
prices = st.fractions(min_value=Fraction(1, 1000), max_value=Fraction(10**6), max_denominator=10**4)
ops = st.lists(st.one_of(
    st.tuples(st.just("mint"), amounts, amounts),
    st.tuples(st.just("burn"), st.integers(0, 50)),
    st.tuples(st.just("trade"), st.integers(-10**11, 10**11), st.integers(-10**11, 10**11)),
    st.tuples(st.just("mid"), prices),
), min_size=1, max_size=40)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops, bot=st.fractions(min_value=0, max_value=Fraction(99, 100), max_denominator=100), mid0=prices)
def test_mint_burn_match_the_fraction_model(ops, bot, mid0):
    store, ledger, pools = setup(bot)
    model = Model(bot)
    mid = mid0
    members: list[str] = []
    n = 0
    for op in ops:
        n += 1
        if op[0] == "mid":
            mid = op[1]
        elif op[0] == "mint":
            _, btc, usdt = op
            order = f"o{n}"
            if btc * mid + usdt <= 0:
                continue
            total = sum(model.shares.values())
            if total and model.value(model.pool, mid) <= 0:
                continue
            expect = floor(total * (btc * mid + usdt) / model.value(model.pool, mid)) if total else floor(
                (btc * mid + usdt) * SHARE_SCALE)
            pay(ledger, order, 1, btc, usdt)
            before = {m: model.value(model.entitlement(m), mid) for m in members}
            if expect <= 0:
                with store.transaction() as tx, pytest.raises(PoolError, match="too small"):
                    pools.mint(tx, order, PID, mid, {"BTC": btc, "USDT": usdt})
                continue
            with store.transaction() as tx:
                got = pools.mint(tx, order, PID, mid, {"BTC": btc, "USDT": usdt})
            assert got.shares == model.mint(order, btc, usdt, mid)
            members.append(order)
            # joining never shrinks anyone's value at the mint's mid
            for m, v in before.items():
                assert model.value(model.entitlement(m), mid) >= v
        elif op[0] == "burn":
            if not members:
                continue
            order = members.pop(op[1] % len(members))
            before = {m: model.entitlement(m) for m in members}
            with store.transaction() as tx:
                got = pools.burn(tx, order, mid)
            want = model.burn(order, mid)
            for a, (mine, bots, rest) in want.items():
                assert (got.to_order[a], got.to_bot[a], got.to_rounding[a]) == (mine, bots, rest)
            # those who stay keep exactly their part, plus less than one unit
            for m, e in before.items():
                after = model.entitlement(m)
                assert all(0 <= after[a] - e[a] < 1 for a in e)
                assert pools.entitlement(m) == after
        else:
            _, d_btc, d_usdt = op
            if not members or model.pool["BTC"] + d_btc < 0 or model.pool["USDT"] + d_usdt < 0:
                continue
            trade(ledger, n, d_btc, d_usdt)
            model.pool["BTC"] += d_btc
            model.pool["USDT"] += d_usdt
        assert ledger.holdings_of(pool(PID)) == {a: u for a, u in model.pool.items() if u}
        assert ledger.holdings_of(ROUNDING) == {a: u for a, u in model.rounding.items() if u}
        assert pools.total_shares(PID) == sum(model.shares.values())
    assert ledger.verify() == []
    store.close()


class FakeMarkets:
    """A runtime stand-in: a mid that can be missing, a release that can take a while."""

    def __init__(self) -> None:
        self.mid_now: Fraction | None = None
        self.hold = 0
        self.released: list[str] = []

    def mid(self, pool_id: str) -> Fraction | None:
        return self.mid_now

    async def release(self, order_id: str) -> bool:
        self.released.append(order_id)
        if self.hold:
            self.hold -= 1
            return False
        return True


def test_the_pool_book_waits_for_a_mid_and_repeats_each_step_identically():
    import asyncio

    from mixmaker.users.errors import PoolNotReadyError
    from mixmaker.users.pools import Pools

    store, ledger, book = setup()
    markets = FakeMarkets()
    pools = Pools(book, {"binance": markets})
    pay(ledger, "a", 1, 10**8, 60_000 * 10**8)
    assert not pools.ready(PID) and not pools.ready("nope:X/Y:z")
    with store.transaction() as tx, pytest.raises(PoolNotReadyError):
        pools.mint(tx, "a", PID, {"BTC": 10**8})
    assert ledger.transactions(ref="a")[-1].cause == "payment"  # nothing written
    markets.mid_now = Fraction(60_000)
    assert pools.ready(PID)
    with store.transaction() as tx:
        s0 = pools.mint(tx, "a", PID, {"BTC": 10**8})
    markets.mid_now = Fraction(70_000)
    with store.transaction() as tx:
        assert pools.mint(tx, "a", PID, {"BTC": 10**8}) == s0  # repeated after a crash: the same shares
        s1 = pools.mint(tx, "a", PID, {"USDT": 60_000 * 10**8}, tranche=1)  # a top-up, at today's value
    assert s1 == floor(s0 * Fraction(60_000 * 10**8, 70_000 * 10**8))
    assert ledger.transaction("mint:a:1") is not None and pools.shares("a") == s0 + s1
    markets.hold = 1
    assert not asyncio.run(pools.release("a")) and asyncio.run(pools.release("a"))
    with store.transaction() as tx:
        credited = pools.burn(tx, "a")
    markets.mid_now = None  # a repeated burn needs no mid: it answers what it did
    with store.transaction() as tx:
        assert pools.burn(tx, "a") == credited
        assert pools.burn(tx, "never-minted") == {}
    # worth 130000 at the burn's mid for 120000 brought: a tenth of the gain is the bot's, from each asset
    cut = Fraction(1, 10) * Fraction(10_000, 130_000)
    assert pools.shares("a") == 0 and credited == {"BTC": floor(10**8 * (1 - cut)),
                                                   "USDT": floor(60_000 * 10**8 * (1 - cut))}
    assert ledger.verify() == []


def test_member_figures_for_statements():
    store, ledger, pools = setup(Fraction(1, 10))
    pay(ledger, "a", 1, 10**8, 0)
    pay(ledger, "b", 1, 0, 60_000 * 10**8)
    with store.transaction() as tx:
        pools.mint(tx, "a", PID, Fraction(60_000), {"BTC": 10**8})
        pools.mint(tx, "b", PID, Fraction(60_000), {"USDT": 60_000 * 10**8})
    fa = pools.member("a", Fraction(66_000))
    assert fa.shares * 2 == fa.pool_shares and fa.value_at_mint == 60_000 * 10**8
    assert fa.entitlement == {"BTC": 5 * 10**7, "USDT": 30_000 * 10**8}
    assert fa.value_now == 5 * 10**7 * 66_000 + 30_000 * 10**8 and fa.burned is None
    with store.transaction() as tx:
        pools.burn(tx, "a", Fraction(66_000))
    fa = pools.member("a")
    assert fa.burned is not None and fa.value_now == 63_000 * 10**8 and fa.burned.gain == 3_000 * 10**8
    assert sum(fa.entitlement.values()) == sum(fa.burned.to_order.values()) + sum(fa.burned.to_bot.values()) + sum(
        fa.burned.to_rounding.values())
    assert pools.member("nobody") is None and pools.members(PID) == ["b"]
