"""The quote executor against random sequences of proposals and fills (hypothesis): after each
step the executor, the tracker and the venue agree on what rests, every proposed quote is
covered by exactly one order within tolerance, and no request is spent on a quote that was
already covered."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from mixmaker.orders import OrderState, Side
from mixmaker.strategy import Decision, Proposal, Quote
from strategy_helpers import Rig

TICK = 10
# The venue's book is 99.90 / 100.10: buys at or below 99.80 and sells at or above 100.20 rest.
buy_prices = st.lists(st.integers(9700, 9980).map(lambda p: p // TICK * TICK), min_size=0, max_size=4, unique=True)
sell_prices = st.lists(st.integers(10020, 10300).map(lambda p: p // TICK * TICK), min_size=0, max_size=4, unique=True)
step = st.tuples(buy_prices, sell_prices, st.sampled_from([-1, 0, 100_000, 1_000_000]),  # tolerance
                 st.lists(st.tuples(st.booleans(), st.integers(9700, 10300), st.integers(1, 3000)), max_size=3))


def within(current: int, proposed: int, tol: int) -> bool:
    return tol >= 0 and abs(proposed - current) * 100_000_000 <= tol * current


@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=1, max_size=8))
def test_random_decisions_keep_executor_tracker_and_venue_in_step(steps):
    async def go():
        r = Rig(base="1000", quote="1000000")
        await r.start()
        for buys, sells, tol, trades in steps:
            before = {o.client_id: o.price for o in r.ex.own_orders()}
            creates_before = r.venue.stats["create"]
            prop = Proposal(tuple(Quote(Side.BUY, i, p, 1000) for i, p in enumerate(sorted(buys, reverse=True))),
                            tuple(Quote(Side.SELL, i, p, 1000) for i, p in enumerate(sorted(sells))))
            rep = await r.ex.apply(Decision(prop, refresh=True, create=True, tolerance=tol), r.now)
            # requests: one create per quote not covered by a kept order, nothing more
            assert r.venue.stats["create"] - creates_before == rep.created == len(prop) - rep.kept
            live = r.ex.own_orders()
            for side in (Side.BUY, Side.SELL):
                mine = sorted(o.price for o in live if o.side == side)
                wanted = sorted(q.price for q in prop.side(side))
                assert len(mine) == len(wanted)
                kept = [o for o in live if o.side == side and o.client_id in before]
                assert all(any(within(o.price, w, tol) for w in wanted) for o in kept)
            # the same decision again: nothing to do, unless tolerance < 0 (always replace)
            again = await r.ex.apply(Decision(prop, refresh=True, create=True, tolerance=tol), r.now)
            if tol >= 0:
                assert (again.created, again.cancelled, again.kept) == (0, 0, len(prop))
            else:
                assert (again.created, again.cancelled, again.kept) == (len(prop), len(prop), 0)
            # the three views of what rests agree
            assert {o.client_id for o in r.ex.own_orders()} == set(r.venue._open) == {
                c for c in r.tracker.orders.live_ids() if r.tracker.get(c).state != OrderState.FAILED}
            for hit_bids, price, qty in trades:
                r.venue.on_public_trade(price, qty, buyer_is_maker=hit_bids)
            await r.deliver()
            assert {o.client_id for o in r.ex.own_orders()} == set(r.venue._open)
            assert r.tracker.stats["anomalies"] == 0

    asyncio.run(go())
