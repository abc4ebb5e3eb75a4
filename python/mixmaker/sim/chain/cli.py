"""`mixmaker sim chain`: the simulated chain between a Mixin simulator and an exchange simulator
started separately (`mixmaker sim mixin`, `mixmaker sim exchange`), by their URLs.

    mixmaker sim chain --mixin http://127.0.0.1:7100 --exchange http://127.0.0.1:8080 --port 7300
    mixmaker sim chain ... --send-delay 5 --confirmations 3 --stuck 0.1 --fail 0.05 --duplicate 0.1 --seed 7

Serves its control API (`/chain/moves`, `/chain/status`, `/chain/release`, `/chain/faults`) and
runs until SIGINT/SIGTERM. With `--state DIR` the moves in flight survive a restart (DIR/chain.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from mixmaker.sim.chain.model import ChainConfig, ChainError, Fault

DEFAULT_PORT = 7300


def add_switches(p: argparse.ArgumentParser) -> None:
    """The chain's switches, shared by `sim chain` and `sim all`."""
    g = p.add_argument_group("chain")
    g.add_argument("--chain-seed", type=int, default=None, metavar="N", help="seed of the chain's faults (default: --seed)")
    g.add_argument("--send-delay", type=float, default=2.0, metavar="S",
                   help="seconds from a venue's withdrawal to its transaction on chain (default 2)")
    g.add_argument("--block-time", type=float, default=1.0, metavar="S", help="seconds between confirmations (default 1)")
    g.add_argument("--confirmations", type=int, default=2, metavar="N", help="a deposit is credited at N (default 2)")
    g.add_argument("--jitter", type=float, default=0.0, metavar="F", help="each delay grows by up to F of itself (seeded)")
    g.add_argument("--stuck", type=float, default=0.0, metavar="RATE", help="chance a move is stuck on chain")
    g.add_argument("--stuck-for", type=float, default=None, metavar="S",
                   help="a stuck move arrives after S seconds (default: only when released)")
    g.add_argument("--fail", type=float, default=0.0, metavar="RATE", help="chance a withdrawal fails before the chain")
    g.add_argument("--duplicate", type=float, default=0.0, metavar="RATE", help="chance a deposit is notified twice")
    g.add_argument("--exchange-fail-status", choices=("FAILURE", "REJECTED"), default="FAILURE",
                   help="how a failed exchange withdrawal ends (Binance status 5 or 3)")


def config_from(args: argparse.Namespace, seed: int) -> ChainConfig:
    """Raises ChainError naming every bad switch."""
    return ChainConfig(
        seed=args.chain_seed if args.chain_seed is not None else seed, send_delay_s=args.send_delay,
        block_time_s=args.block_time, confirmations=args.confirmations, jitter=args.jitter, stuck_for_s=args.stuck_for,
        rates={Fault.STUCK: args.stuck, Fault.FAIL: args.fail, Fault.DUPLICATE: args.duplicate},
        exchange_fail_status=args.exchange_fail_status)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from mixmaker.sim.exchange.cli import _sim_commands

    p = _sim_commands(subparsers).add_parser(
        "chain", help="the simulated chain between a Mixin simulator and an exchange simulator",
        description="Carry withdrawals between a Mixin simulator and an exchange simulator started separately: "
                    "after a delay and confirmations each becomes a deposit on the other side, with seeded faults.")
    p.add_argument("--mixin", required=True, metavar="URL", help="the Mixin simulator (e.g. http://127.0.0.1:7100)")
    p.add_argument("--exchange", required=True, metavar="URL", help="the exchange simulator's REST URL")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"control API port (default {DEFAULT_PORT}; 0: any)")
    p.add_argument("--seed", type=int, default=1, help="seed (default 1)")
    p.add_argument("--state", type=Path, metavar="DIR", help="keep the moves in DIR/chain.json across restarts")
    add_switches(p)
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        config = config_from(args, args.seed)
    except ChainError as e:
        print(f"mixmaker sim chain: error: {e}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args, config))
    except OSError as e:
        print(f"mixmaker sim chain: error: cannot listen on 127.0.0.1:{args.port}: {e.strerror}", file=sys.stderr)
        return 2
    except ChainError as e:
        print(f"mixmaker sim chain: error: {e}", file=sys.stderr)
        return 2


async def _serve(args: argparse.Namespace, config: ChainConfig) -> int:
    from mixmaker.sim import statefile
    from mixmaker.sim.chain import control
    from mixmaker.sim.chain.engine import Chain
    from mixmaker.sim.chain.sides import HttpExchange, HttpMixin, SideUnavailableError

    mixin, exchange = HttpMixin(args.mixin), HttpExchange(args.exchange, fail_status=config.exchange_fail_status)
    chain = Chain(mixin, exchange, config)
    path = args.state / "chain.json" if args.state else None
    if path is not None:
        args.state.mkdir(parents=True, exist_ok=True)
        if (doc := statefile.read(path)) is not None:
            chain.load(doc)
    runner, port = await control.serve(chain, "127.0.0.1", args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"chain  http://127.0.0.1:{port}/chain/status  between mixin {args.mixin} and exchange {args.exchange}",
          flush=True)

    async def loop_steps() -> None:
        saved = -1
        while True:
            try:
                await chain.attach()
                break
            except SideUnavailableError as e:  # a venue not up yet: try again
                print(f"chain: waiting for the venues ({e})", file=sys.stderr, flush=True)
                await asyncio.sleep(1)
        while True:
            await chain.step()
            if path is not None and chain.version != saved:
                statefile.write_atomic(path, chain.dump())  # after the venues acted: a repeat is harmless
                saved = chain.version
            await asyncio.sleep(config.poll_interval_s)

    task = asyncio.create_task(loop_steps())
    try:
        await stop.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if path is not None:
            statefile.write_atomic(path, chain.dump())
        await runner.cleanup()
        await mixin.close()
        await exchange.close()
    return 0
