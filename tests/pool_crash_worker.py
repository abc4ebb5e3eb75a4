"""Run as a child process by test_pool_crash.py: two members join a pool, the pool's orders fill,
one member leaves; the process dies with os._exit (no cleanup, no commit) at the step named on the
command line. Run again without a step, it resumes and finishes: every step is idempotent, so the
ledger must end exactly as a run that never died.

The venue is the tracker tests' FakeVenue, pickled after every call (it outlives the process)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pickle
import sys
from fractions import Fraction

from kill_worker import SavedVenue, _saving

from mixmaker._core import Side
from mixmaker.funds.accounts import Flow, exchange, inflow, user_order
from mixmaker.funds.ledger import Ledger
from mixmaker.orders import ClientOrderTracker
from mixmaker.store import SqliteStore
from mixmaker.users.pool_fills import FillBook, FillMarket
from mixmaker.users.pool_runtime import PoolOrders, PoolVenue, SelfTradeGuard
from mixmaker.users.pools import PoolLedger, PoolTerms

POOL = "fakex:BTC/USDT:p"
MID = Fraction(60_000)  # quote units per base unit: BTC and USDT both at 8 decimals
# Prices in cents, sizes in 1e-5 BTC; fees in 1e-12 of USDT, finer than a ledger unit (1e-8): each is
# booked at its ceiling and the second fill makes the over-booking a whole unit, given back to rounding.
FEES = (7_300_004_321, 4_000_001_000)  # the first fill, the second
MARKET = FillMarket("fakex", "BTCUSDT", "BTC", "USDT", price_decimals=2, size_decimals=5)


def main(db: str, venue_path: str, step: str, nth: int) -> None:
    seen: dict[str, int] = {}

    def die(s: str, _what: str = "") -> None:
        seen[s] = seen.get(s, 0) + 1
        if s == step and seen[s] == nth:
            os._exit(137)

    venue = SavedVenue(venue_path)
    if os.path.exists(venue_path):
        with open(venue_path, "rb") as f:
            venue.__dict__.update(pickle.load(f))
    for name in ("create_order", "cancel_order", "fetch_order", "fetch_open_orders", "fetch_my_trades"):
        setattr(venue, name, _saving(venue, name))
    fake_fill = venue.fill

    def fill(cid: str, qty: int):
        t = dataclasses.replace(fake_fill(cid, qty), fee_asset="USDT", fee=FEES[len(venue.trades) - 1])
        venue.trades[-1] = venue.stream[-1] = t
        return t

    venue.fill = fill  # type: ignore[method-assign]
    store = SqliteStore(db)
    ledger = Ledger(store)
    ledger.register_asset("BTC", 8)
    ledger.register_asset("USDT", 8)
    book = PoolLedger(store, ledger, [PoolTerms(POOL, "BTC", "USDT", Fraction(1, 5))])
    fills = FillBook(store, ledger, [MARKET])

    real_post = ledger.post

    def post(tx, key, entries, **kw):  # dies inside the store transaction, after the ledger's writes
        out = real_post(tx, key, entries, **kw)
        die(f"{key.partition(':')[0]}:inside")
        return out

    ledger.post = post  # type: ignore[method-assign]

    def sink(fill) -> None:
        fills.book(fill)
        die("fill:booked")  # committed, not yet marked delivered in the tracker's outbox

    guard = SelfTradeGuard(fills, venue.name)
    tracker = ClientOrderTracker(PoolVenue(venue, fills, guard), store, fill_sink=sink, inflight_timeout=0.0,
                                 crash_hook=lambda s, cid: die(f"tracker:{s}"))
    guard.tracker = tracker
    orders = PoolOrders(tracker, POOL)

    for oid, btc, usdt in (("a", 10**6, 0), ("b", 0, 600 * 10**8)):
        entries = []
        for asset, units in (("BTC", btc), ("USDT", usdt)):
            if units:
                entries += inflow(Flow.PAYMENT, asset, units, exchange("fakex"), user_order(oid))
        ledger.post_now(f"payment:{oid}", entries, ref=oid)

    def mint(oid: str, amounts: dict[str, int]) -> None:
        with store.transaction() as tx:
            book.mint(tx, oid, POOL, MID, amounts)
        die(f"mint-{oid}:after")

    async def trade() -> None:
        await tracker.start()
        for side, price, qty in ((Side.SELL, 6_000_100, 600), (Side.BUY, 5_999_900, 500)):  # 0.006 at 60001, 0.005 at 59999
            if not [c for c in fills.orders_of(POOL) if c in venue.orders and venue.orders[c].side == side]:
                await orders.create("BTCUSDT", side, price, qty)
        mine = [c for c in fills.orders_of(POOL) if c in venue.orders]  # sent (a kill may have stopped one before)
        for cid, qty in zip(sorted(mine, key=lambda c: venue.orders[c].side != Side.BUY), (300, 400)):  # buy 300, sell 400
            o = venue.orders[cid]
            if o.filled < qty:
                venue.fill(cid, qty - o.filled)
                venue.save()
        tracker.apply_trades(list(venue.stream))
        for _ in range(2):
            await tracker.poll()

    mint("a", {"BTC": 10**6})
    mint("b", {"USDT": 600 * 10**8})
    asyncio.run(trade())
    with store.transaction() as tx:
        book.burn(tx, "a", Fraction(61_000))
    die("burn-a:after")
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "", int(sys.argv[4]) if len(sys.argv) > 4 else 0)
