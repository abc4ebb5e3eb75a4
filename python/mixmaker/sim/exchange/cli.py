"""`mixmaker sim exchange`: run the Binance-compatible simulator standalone.

    mixmaker sim exchange --port 8080                      # REST :8080, WebSocket :8081, synthetic market
    mixmaker sim exchange --port 8080 --feed rec.gz --speed 10
    mixmaker sim exchange --port 0 --faults diff_skip=0.01,ack_delay=0.05@2 --seed 7

Prints one line per endpoint, then serves until SIGINT/SIGTERM (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from decimal import Decimal, InvalidOperation

from mixmaker.sim.exchange.faults import FAULTS

DEFAULT_ACCOUNT = "demo:demo-key:demo-secret"
DEFAULT_BALANCES = "BTC=10,ETH=100,USDT=1000000"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sim exchange` under a shared `sim` command (created here if nobody made it yet)."""
    p = _sim_commands(subparsers).add_parser(
        "exchange",
        help="a local Binance-spot-compatible exchange (REST + WebSocket)",
        description="Serve Binance spot REST (aiohttp) and WebSocket streams/API (picows) on 127.0.0.1, "
        "with a matching engine, market activity and fault injection. Faults: "
        + "; ".join(f"{k}: {v}" for k, v in FAULTS.items()),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="REST port; 0 picks a free one (default: 8080)")
    p.add_argument("--ws-port", type=int, default=None, help="WebSocket port (default: --port + 1, or free if --port 0)")
    p.add_argument("--feed", default="synthetic", metavar="FILE|synthetic|none",
                   help="market activity: a recording (`<ts_ns> <json>` lines, gzip ok), the seeded generator, or none")
    p.add_argument("--symbol", default="BTCUSDT", help="symbol the feed drives (default: BTCUSDT)")
    p.add_argument("--speed", type=float, default=1.0, help="recording replay speed; 0 = as fast as possible")
    p.add_argument("--seed", type=int, default=0, help="seed for faults and the synthetic market (default: 0)")
    p.add_argument("--faults", default="", metavar="SPEC", help="name=rate[@delay],... e.g. diff_skip=0.05,ack_delay=0.1@2")
    p.add_argument("--account", action="append", metavar="NAME:KEY:SECRET",
                   help=f"an API account (repeatable; default {DEFAULT_ACCOUNT})")
    p.add_argument("--balances", default=DEFAULT_BALANCES, metavar="A=N,...",
                   help=f"starting balances of every account (default {DEFAULT_BALANCES})")
    p.add_argument("--weight-limit", type=int, default=6000, help="REQUEST_WEIGHT per minute before 429")
    p.add_argument("--order-limit", type=int, default=100, help="new orders per account per 10 s before 429")
    p.add_argument("--clock-offset-ms", type=int, default=0, help="run the venue's clock this far ahead (negative: behind)")
    p.set_defaults(run=_run)


def _sim_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    sim = subparsers.choices.get("sim")
    if sim is None:
        sim = subparsers.add_parser("sim", help="local simulators of the venues mixmaker talks to")
        sim.set_defaults(run=lambda _args: _usage(sim))
    for action in sim._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return sim.add_subparsers(dest="simulator", metavar="SIMULATOR")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    try:
        balances = {a.strip(): Decimal(v) for a, _, v in (x.partition("=") for x in args.balances.split(",") if x)}
        specs: list[list[str]] = [spec.split(":", 2) for spec in (args.account or [DEFAULT_ACCOUNT])]
    except InvalidOperation:
        print(f"mixmaker sim exchange: error: bad --balances {args.balances!r}", file=sys.stderr)
        return 2
    if any(len(a) != 3 or not all(a) for a in specs):
        print("mixmaker sim exchange: error: --account wants NAME:KEY:SECRET", file=sys.stderr)
        return 2
    accounts = [(name, key, secret) for name, key, secret in specs]
    try:
        return asyncio.run(_serve(args, balances, accounts))
    except ValueError as e:  # a bad --faults spec
        print(f"mixmaker sim exchange: error: {e}", file=sys.stderr)
        return 2


async def _serve(args: argparse.Namespace, balances: dict[str, Decimal], accounts: list[tuple[str, str, str]]) -> int:
    from mixmaker.replay.recording import open_recording
    from mixmaker.sim.exchange.feed import RecordedFeed, SyntheticFeed
    from mixmaker.sim.exchange.server import ExchangeSim, MarketFeed, SimConfig

    feed: MarketFeed | None = None
    if args.feed == "synthetic":
        feed = SyntheticFeed(args.symbol, seed=args.seed)
    elif args.feed != "none":
        open_recording(args.feed)  # a missing or unreadable file stops here, not at shutdown
        feed = RecordedFeed(args.feed, args.symbol, speed=args.speed)
    ws_port = args.ws_port if args.ws_port is not None else (args.port + 1 if args.port else 0)
    config = SimConfig(host=args.host, rest_port=args.port, ws_port=ws_port, seed=args.seed,
                       faults=args.faults, weight_limit=args.weight_limit, order_limit=args.order_limit,
                       clock_offset_ms=args.clock_offset_ms, feed=feed)
    sim = ExchangeSim(config)
    for name, key, secret in accounts:
        sim.add_account(name, key, secret, balances)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with sim:
        print(f"rest   {sim.rest_url}/api/v3  (sapi: {sim.rest_url}/sapi/v1)", flush=True)
        print(f"ws     {sim.ws_url}/stream/ws  (market streams)", flush=True)
        print(f"ws-api {sim.ws_url}/ws-api/v3", flush=True)
        print(f"accounts {', '.join(f'{n} (key {k})' for n, k, _ in accounts)}; feed {args.feed}; "
              f"faults {args.faults or 'none'}", flush=True)
        await stop.wait()
    return 0
