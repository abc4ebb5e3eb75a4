"""Snapshots ingested and credited per second: the user layer's intake (`SnapshotReader` pages of
500, one store transaction per page holding the snapshots, their ledger postings, their user
orders and the cursor) against a naive loop that commits once per snapshot, same run, same
handler, same durability (SQLite on disk, WAL, synchronous=FULL).

    python benches/bench_intake.py [--n 3000] [--repeat 3] [--json]

Each snapshot is a user's payment with a valid CREATE memo for a new order: the full credit path
(classification, memo decoding, limits, the PAYMENT posting, the order row and its events, the
funding check). The Mixin simulator serves the pages over HTTP on 127.0.0.1 in this process, so
the figures include fetching and parsing the pages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the simulator world and the test catalog

from mixin_world import make_world  # noqa: E402
from users_catalog import catalog  # noqa: E402

from mixmaker.funds.ledger import Ledger  # noqa: E402
from mixmaker.mixin.amounts import to_units  # noqa: E402
from mixmaker.mixin.snapshots import SnapshotReader  # noqa: E402
from mixmaker.sim.mixin.setup import USDT_ERC20  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402
from mixmaker.users import memo as m  # noqa: E402
from mixmaker.users.intake import Intake  # noqa: E402
from mixmaker.users.orders import OrderBook  # noqa: E402
from mixmaker.users.payouts import Outbox  # noqa: E402


class CountingStore(SqliteStore):
    """Counts the transactions (each one commit, one fsync) after set-up."""

    commits = 0

    def transaction(self):  # type: ignore[override]
        self.commits += 1
        return super().transaction()


def build(world, path):
    store = CountingStore(path)
    ledger = Ledger(store)
    cat = catalog()
    orders = OrderBook(store)
    outbox = Outbox(store, ledger, cat.assets, cat.limits, orders)
    return store, Intake(store, ledger, cat, orders, outbox, app_id=world.bot["app_id"])


async def paged(world, path) -> tuple[int, int]:
    """mixmaker's intake: one transaction per page."""
    store, intake = build(world, path)
    async with world.client() as c:
        reader = SnapshotReader(c, store)
        store.commits = 0
        n = 0
        while True:
            got = await reader.poll(intake.handle)
            if not got:
                break
            n += got
    store.close()
    return n, store.commits


async def naive(world, path) -> tuple[int, int]:
    """The same pages, the same handler, one transaction (one fsync) per snapshot."""
    store, intake = build(world, path)
    n = 0
    async with world.client() as c:
        SnapshotReader(c, store)  # its tables and cursor row; the loop below replaces its poll
        store.commits = 0
        cursor = 0
        while True:
            page = await c.snapshots(offset_ns=cursor, limit=500, order="ASC")
            fresh = 0
            for s in page:
                with store.transaction() as tx:
                    if tx.execute("INSERT INTO mixin_snapshots_seen (name, snapshot_id, created_at_ns) VALUES "
                                  "('bot', ?, ?) ON CONFLICT DO NOTHING", (s.snapshot_id, s.created_at_ns)):
                        intake.handle(tx, s)
                        fresh += 1
                    tx.execute("UPDATE mixin_snapshot_cursors SET offset_ns = ? WHERE name = 'bot'", (s.created_at_ns,))
                cursor = max(cursor, s.created_at_ns)
            n += fresh
            if len(page) < 500:
                break
    store.close()
    return n, store.commits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="user payments to ingest (default 3000)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    world = make_world(seed=4)
    try:
        payers = [world.state.add_user(full_name=f"p{i}") for i in range(50)]
        for p in payers:
            world.state.deposit(p.user_id, USDT_ERC20, to_units("10000000"))
        t0 = time.perf_counter()
        for i in range(args.n):
            memo = m.to_extra(m.CreateMemo(str(uuid.UUID(int=i + 1)), "binance:BTC/USDT", "tight", 0, to_units("100")))
            world.state.user_sends(payers[i % len(payers)].user_id, world.bot["app_id"], USDT_ERC20, to_units("40"), memo)
        setup_s = time.perf_counter() - t0
        rows: dict[str, list[float]] = {"paged": [], "naive": []}
        commits: dict[str, int] = {}
        with tempfile.TemporaryDirectory(dir=HERE.parent) as d:
            for r in range(args.repeat):
                for name, fn in (("paged", paged), ("naive", naive)):
                    t = time.perf_counter()
                    n, c = asyncio.run(fn(world, Path(d) / f"{name}{r}.db"))
                    rows[name].append(n / (time.perf_counter() - t))
                    commits[name] = c
                    assert n == args.n, (name, n)
    finally:
        world.server.stop()
    best = {k: max(v) for k, v in rows.items()}
    med = {k: statistics.median(v) for k, v in rows.items()}
    if args.json:
        print(json.dumps({"n": args.n, "best": best, "median": med, "commits": commits}))
        return
    print(f"snapshot intake, {args.n} user payments, SQLite WAL synchronous=FULL on disk, "
          f"{args.repeat} runs (setup {setup_s:.1f} s); the machine was shared with other sessions")
    print(f"{'variant':<42} {'commits':>8} {'median/s':>10} {'best/s':>10}")
    print(f"{'mixmaker: one transaction per page (500)':<42} {commits['paged']:>8} {med['paged']:>10.0f} {best['paged']:>10.0f}")
    print(f"{'naive: one transaction per snapshot':<42} {commits['naive']:>8} {med['naive']:>10.0f} {best['naive']:>10.0f}")
    print(f"{'speed-up (median)':<42} {'':>8} {med['paged'] / med['naive']:>9.1f}x")


if __name__ == "__main__":
    main()
