"""`mixmaker sim all`: the exchange simulator (moving market), the Mixin simulator and the chain
between them in one process, durable in a state folder; runs until SIGINT/SIGTERM.

    mixmaker sim all --state sims/                       # synthetic BTCUSDT and ETHUSDT markets
    mixmaker sim all --state sims/ --feed ../shared/data/market/binance_spot_btcusdt_20240808_hftbacktest.gz
    mixmaker sim all --state sims/ --send-delay 5 --stuck 0.1 --fail 0.05 --duplicate 0.1

Where they listen and the credentials (bot keystore, exchange API key and secret) go to
DIR/sims.json (mode 600), never to the terminal. The same command on the same folder resumes the
world as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mixmaker.sim.chain.cli import add_switches, config_from
from mixmaker.sim.chain.model import ChainError

PROG = "mixmaker sim all"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from mixmaker.sim.exchange.cli import _sim_commands

    p = _sim_commands(subparsers).add_parser(
        "all", help="exchange + Mixin simulators and the chain between them, durable in a folder",
        description="Start the exchange simulator (a moving market), the Mixin simulator and the simulated chain "
                    "in one process; write where they listen and how to log in to DIR/sims.json; keep their state "
                    "in DIR/state.json so the same command on the same folder resumes the world.")
    p.add_argument("--state", type=Path, metavar="DIR", help="state folder (default: a new temporary folder)")
    p.add_argument("--seed", type=int, default=1, help="seed of ids, markets and faults (default 1)")
    p.add_argument("--feed", default="synthetic", metavar="FILE|synthetic|none",
                   help="market activity: seeded synthetic markets (default), a recording for --feed-symbol, or none")
    p.add_argument("--feed-symbol", default="BTCUSDT", help="the symbol a recording drives (default BTCUSDT)")
    p.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="markets that move (default BTCUSDT,ETHUSDT)")
    p.add_argument("--speed", type=float, default=1.0, help="a recording's replay speed (0: as fast as possible)")
    p.add_argument("--mixin-port", type=int, default=0, help="Mixin API port (0: the last run's, else any free)")
    p.add_argument("--exchange-port", type=int, default=0, help="exchange REST port (0: the last run's, else any free)")
    p.add_argument("--exchange-ws-port", type=int, default=0, help="exchange WebSocket port (0: as above)")
    p.add_argument("--chain-port", type=int, default=0, help="chain control port (0: as above)")
    p.add_argument("--account", default="mm", help="the bot's exchange account name (default mm)")
    p.add_argument("--exchange-balances", default="", metavar="A=N,...",
                   help="the exchange account's balances at the very first start (default: empty; funds come by chain)")
    p.add_argument("--withdraw-fees", default="BTC=0.0002,ETH=0.002,USDT=1", metavar="A=N,...",
                   help="the exchange's network fee per withdrawal (default BTC=0.0002,ETH=0.002,USDT=1)")
    add_switches(p)
    p.set_defaults(run=_run)


def _amounts(text: str, what: str) -> dict[str, Decimal]:
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            amount = Decimal(value)
        except InvalidOperation:
            amount = Decimal(-1)
        if not sep or not name or not amount.is_finite() or amount < 0:
            raise ValueError(f"{what}: {item!r} is not ASSET=AMOUNT with an amount >= 0")
        out[name.strip()] = amount
    return out


def _run(args: argparse.Namespace) -> int:
    from mixmaker.sim.world import WorldConfig

    problems = []
    try:
        chain = config_from(args, args.seed)
    except ChainError as e:
        problems.append(str(e))
    amounts = {}
    for flag in ("exchange_balances", "withdraw_fees"):
        try:
            amounts[flag] = _amounts(getattr(args, flag), "--" + flag.replace("_", "-"))
        except ValueError as e:
            problems.append(str(e))
    for flag in ("mixin_port", "exchange_port", "exchange_ws_port", "chain_port"):
        if not 0 <= getattr(args, flag) <= 65535:
            problems.append(f"--{flag.replace('_', '-')} must be 0..65535")
    if problems:
        for p in problems:
            print(f"{PROG}: error: {p}", file=sys.stderr)
        return 2
    state_dir = args.state or Path(tempfile.mkdtemp(prefix="mixmaker-sims-"))
    config = WorldConfig(
        state_dir=state_dir, seed=args.seed, feed=args.feed, feed_symbol=args.feed_symbol,
        symbols=tuple(s.strip() for s in args.symbols.split(",") if s.strip()), speed=args.speed,
        mixin_port=args.mixin_port, exchange_port=args.exchange_port, exchange_ws_port=args.exchange_ws_port,
        chain_port=args.chain_port, account=args.account, balances=amounts["exchange_balances"],
        withdraw_fees=amounts["withdraw_fees"], chain=chain)
    try:
        return asyncio.run(_serve(config))
    except OSError as e:
        print(f"{PROG}: error: cannot listen: {e.strerror or e}", file=sys.stderr)
        return 2


async def _serve(config) -> int:  # type: ignore[no-untyped-def]
    from mixmaker.sim.world import CREDENTIALS_FILE, SimWorld, WorldError

    world = SimWorld(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await world.start()
    except WorldError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    try:
        d = world.describe()
        resumed = "resumed" if world.starts > 1 else "new"
        print(f"mixin     {d['mixin']['url']}  (bot {d['mixin']['keystore']['app_id']})", flush=True)
        print(f"exchange  {d['exchange']['rest_url']}  {d['exchange']['ws_url']}  (account {d['exchange']['account']}, "
              f"key {d['exchange']['api_key']})", flush=True)
        print(f"chain     {d['chain']['url']}/chain/status", flush=True)
        print(f"state     {world.dir} ({resumed}; credentials in {world.dir / CREDENTIALS_FILE}); Ctrl-C stops",
              flush=True)
        assert world.crashed is not None
        stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        watched: list[asyncio.Future[Any]] = [stopped, world.crashed]
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if world.crashed.done():
            print(f"{PROG}: error: {world.crashed.result()}", file=sys.stderr)
            return 1
    finally:
        await world.stop()
    return 0
