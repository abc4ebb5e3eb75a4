"""Depth messages per second from the socket to a synced book: mixmaker's picows DepthStream
(frame bytes straight into the Rust BookSync) against ccxt.pro's `watch_order_book`, on the
same simulated Binance stream, in one run.

The simulator runs in a child process (its own core on a 2-core box), replays the USD-M
recording into its engine, and prepares the diffs as one burst. Each contender, in turn, gets a
fresh simulator with the same seed and recording, connects and syncs, then the burst is sent at
socket speed and the clock runs from the go signal until the contender's book has applied the
burst's last update id. A contender that falls out of sync (a gap) is reported, not hidden.

    python benches/bench_depth_stream.py                  # 20,000 diffs, best of 3
    python benches/bench_depth_stream.py --diffs 5000 --repeat 1
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

from cpu_meter import CpuMeter

DATA = Path(os.environ.get("MIXMAKER_DATA", Path(__file__).resolve().parents[2] / "shared/data/market"))
FEED = DATA / "binance_usdm_btcusdt_20240808_hftbacktest.gz"
SYMBOL = "BTCUSDT"


# ---------------------------------------------------------------------------------- the simulator
def serve(conn, feed: str, diffs: int) -> None:
    """Child process: a simulator primed with the recording's snapshot, then one burst on "go"."""
    from mixmaker.sim.exchange.feed import RecordedFeed
    from mixmaker.sim.exchange.server import ExchangeSim, SimConfig

    async def main() -> None:
        sim = ExchangeSim(SimConfig(seed=1, publish_interval=3600.0))
        async with sim:
            steps = RecordedFeed(feed, SYMBOL, trades=False).steps(sim.venue)
            next(steps)  # the snapshot (and the diffs buffered before it)
            sim.publish_now()
            conn.send((sim.rest_url, sim.ws_url))
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, conn.recv) == "synced"
            payloads = sim.burst(SYMBOL, itertools.islice(steps, diffs))
            conn.send((len(payloads), json.loads(payloads[-1])["u"], sum(map(len, payloads))))
            assert await loop.run_in_executor(None, conn.recv) == "go"
            await sim.send_burst(SYMBOL, payloads)
            await loop.run_in_executor(None, conn.recv)  # "done"

    asyncio.run(main())


# ---------------------------------------------------------------------------------- contenders
async def mixmaker_stream(rest: str, ws: str):
    from mixmaker.book import BookState, BookSync
    from mixmaker.connectors import RateLimiter
    from mixmaker.connectors import binance_limits as bl
    from mixmaker.connectors.binance_depth import DepthStream

    sync = BookSync(rule="binance_spot", price_decimals=2, size_decimals=5, max_buffer=100_000)
    ds = DepthStream(sync, SYMBOL, ws_url=ws, rest_url=rest, limiter=RateLimiter(bl.spot_pools()))
    task = asyncio.create_task(ds.run())

    def state() -> tuple[bool, int]:
        return sync.state == BookState.SYNCED, sync.last_update_id or 0

    async def close() -> dict:
        ds.close()
        await asyncio.wait_for(task, 10)
        return {"gaps": sync.stats.gaps, "levels": (sync.book.bid_levels, sync.book.ask_levels)}

    return state, None, close


async def ccxt_pro_stream(rest: str, ws: str):
    import ccxt.pro as ccxtpro

    ex = ccxtpro.binance({
        "urls": {"api": {"public": f"{rest}/api/v3", "private": f"{rest}/api/v3",
                         "ws": {"spot": f"{ws}/stream/ws"}}},
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
        "enableRateLimit": False,
    })
    await ex.load_markets()
    box = {"nonce": 0, "errors": 0}

    async def watch() -> None:
        while True:
            try:
                ob = await ex.watch_order_book("BTC/USDT")
                box["nonce"] = ob["nonce"] or 0
            except Exception:  # noqa: BLE001 - ccxt resyncs on ChecksumError; count and go on
                box["errors"] += 1

    task = asyncio.create_task(watch())

    def state() -> tuple[bool, int]:
        return box["nonce"] > 0, box["nonce"]

    async def close() -> dict:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ex.close()
        return {"errors": box["errors"]}

    return state, task, close


CONTENDERS = {
    "mixmaker DepthStream (picows -> Rust BookSync)": mixmaker_stream,
    "ccxt.pro binance watch_order_book (aiohttp)": ccxt_pro_stream,
}


async def one_run(make, diffs: int, feed: str) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(child, feed, diffs), daemon=True)
    proc.start()
    loop = asyncio.get_running_loop()
    try:
        rest, ws = await loop.run_in_executor(None, parent.recv)
        state, _, close = await make(rest, ws)
        end = loop.time() + 30
        while not state()[0]:
            if loop.time() > end:
                raise RuntimeError("no first sync within 30 s")
            await asyncio.sleep(0.01)
        parent.send("synced")
        count, last_u, nbytes = await loop.run_in_executor(None, parent.recv)
        parent.send("go")
        t0 = time.perf_counter()
        while not (state()[0] and state()[1] >= last_u):
            if time.perf_counter() - t0 > 120:
                raise RuntimeError(f"the burst's last update {last_u} never applied (at {state()[1]})")
            await asyncio.sleep(0)
        elapsed = time.perf_counter() - t0
        extra = await close()
        parent.send("done")
        return {"msgs": count, "bytes": nbytes, "s": elapsed, **extra}
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--diffs", type=int, default=20_000, help="recorded diffs in the burst (default 20,000)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--feed", default=str(FEED))
    args = ap.parse_args(argv)
    if not Path(args.feed).exists():
        print(f"skipped: recording not found: {args.feed} (set MIXMAKER_DATA)", file=sys.stderr)
        return 2
    best: dict[str, dict] = {}
    meter = CpuMeter()
    for r in range(args.repeat):
        for name, make in CONTENDERS.items():
            res = asyncio.run(one_run(make, args.diffs, args.feed))
            print(f"  [round {r + 1}/{args.repeat}] {name}: {res['msgs'] / res['s']:,.0f} msgs/s {res}", file=sys.stderr)
            if name not in best or res["s"] < best[name]["s"]:
                best[name] = res
    others = meter.other_cores()
    first = next(iter(best.values()))
    print(f"depth stream, socket -> synced book  |  {first['msgs']:,} diffs ({first['bytes'] / 1e6:.1f} MB) of the "
          f"USD-M recording from the simulator in a child process  |  best of {args.repeat}")
    print("   (other processes' CPU includes the simulator child, by design)" if others is None else
          f"   CPU used by other processes, the simulator child included: {others:.2f} cores")
    mm = best[next(iter(CONTENDERS))]["s"]
    print(f"   {'contender':50} {'msgs/s':>10} {'ms':>8} {'x mixmaker':>11}  notes")
    for name, res in best.items():
        notes = {k: v for k, v in res.items() if k not in ("msgs", "bytes", "s")}
        print(f"   {name:50} {res['msgs'] / res['s']:10,.0f} {res['s'] * 1000:8.1f} {res['s'] / mm:11.2f}  {notes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
