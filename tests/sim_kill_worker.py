"""Run as a child process by test_fill_catchup.py and test_unsent_orders.py: an order tracker on a
real ccxt venue against the exchange simulator the test runs (its ccxt config is argv[2]). It
places the orders it is given (argv[3], JSON), prints their client ids, and then either dies with
os._exit (no cleanup, no flush, no finally blocks) at the step named in argv[4] (the tracker's
crash-hook steps, or "venue_acted": the venue acted on the create and its answer never reached
us), or waits to be killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter

import ccxt.async_support as ccxt
from mixmaker.connectors import RateLimiter
from mixmaker.connectors import binance_limits as bl
from mixmaker.connectors.ccxt_routing import route_through
from mixmaker.connectors.ccxt_account import CcxtVenue
from mixmaker.orders import ClientOrderTracker
from mixmaker.orders.protocol import OrderReport, OrderRequest
from mixmaker.store import SqliteStore


async def main(db: str, config: dict, orders: list[dict], step: str, nth: int) -> None:
    exchange = ccxt.binance(config)
    limiter = RateLimiter(bl.spot_pools())
    route_through(exchange, limiter, cost=bl.request_cost, usage=bl.usage_from_headers, retry_after=bl.retry_after_s)
    venue = CcxtVenue(exchange, limiter, name="binance")
    await venue.load_markets()
    seen: Counter[str] = Counter()

    def die(s: str, _cid: str) -> None:
        seen[s] += 1
        if s == step and seen[s] == nth:
            os._exit(137)

    sent = venue.create_order

    async def create_then_maybe_die(req: OrderRequest) -> OrderReport:
        rep = await sent(req)
        die("venue_acted", req.client_id)
        return rep

    venue.create_order = create_then_maybe_die  # type: ignore[method-assign]
    tracker = ClientOrderTracker(venue, SqliteStore(db), crash_hook=die, prefix="mm", trade_scan_interval_s=None)
    await tracker.start()
    cids = []
    for o in orders:
        m = venue.market(o["symbol"])
        cids.append(await tracker.create(o["symbol"], o["side"], m.price(o["price"]), m.size(o["qty"])))
    print(json.dumps(cids), flush=True)
    await asyncio.Event().wait()  # until the test kills us


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], int(sys.argv[5])))
