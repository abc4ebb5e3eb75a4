"""`mixmaker sim mixin --port N`: run the Mixin-compatible server until interrupted.

It prints (or writes, mode 600) a keystore for a fresh bot, and serves `/_sim/users`,
`/_sim/deposits` and `/_sim/transfers` so a demo can make simulated users pay the bot."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Adds `sim` to the top-level command and `mixin` under it; returns the `sim` group so
    other simulators can add themselves with their own `add_to(group)`."""
    sim = subparsers.add_parser("sim", help="run a local simulator", description="Local simulators on 127.0.0.1.")
    kinds = sim.add_subparsers(dest="simulator", metavar="SIMULATOR", required=True)
    add_to(kinds)
    return kinds


def add_to(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mx = kinds.add_parser("mixin", help="a Mixin Safe API compatible server",
                          description="A Mixin Safe API compatible server on 127.0.0.1 (no real funds).")
    mx.add_argument("--port", type=int, default=7100, help="TCP port (default 7100; 0 = any free port)")
    mx.add_argument("--seed", type=int, default=1, help="seed for ids, keys and random faults (default 1)")
    mx.add_argument("--keystore-out", type=Path, metavar="PATH",
                    help="write the bot's keystore here (mode 600) instead of printing it")
    mx.add_argument("--withdrawal-delay", type=float, default=5.0, metavar="S",
                    help="seconds before a withdrawal gets its chain hash (default 5)")
    mx.add_argument("--snapshots-quirk", action="append", default=[], metavar="QUIRK",
                    choices=("ignore-offset", "ignore-order", "exclusive-offset"),
                    help="make /safe/snapshots misbehave (repeatable): ignore-offset, ignore-order (newest "
                         "first), exclusive-offset; a reader must notice or cope")
    mx.add_argument("--snapshot-time-step", type=float, default=0.0, metavar="S",
                    help="round snapshot times down to multiples of S seconds, so many share one created_at")
    mx.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mixmaker.sim.mixin import MixinSimServer, new_bot, seeded_world

    if not 0 <= args.port <= 65535:
        print(f"mixmaker sim mixin: error: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 2
    if args.snapshot_time_step < 0:
        print("mixmaker sim mixin: error: --snapshot-time-step must be >= 0", file=sys.stderr)
        return 2
    state = seeded_world(args.seed, withdrawal_delay_s=args.withdrawal_delay,
                         snapshot_time_step_ns=int(args.snapshot_time_step * 1_000_000_000))
    bot = new_bot(state)
    server = MixinSimServer(state, seed=args.seed, port=args.port)
    for quirk in args.snapshots_quirk:
        setattr(server.faults.snapshots, quirk.replace("-", "_"), True)

    async def serve() -> None:
        await server.serve()
        if args.keystore_out:
            fd = os.open(args.keystore_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(bot, f)
            print(f"keystore written to {args.keystore_out}", file=sys.stderr)
        else:
            print(json.dumps(bot), flush=True)
        print(f"Mixin simulator on {server.url} (bot {bot['app_id']}); Ctrl-C stops it", file=sys.stderr, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()

    try:
        asyncio.run(serve())
    except OSError as e:
        print(f"mixmaker sim mixin: error: cannot listen on 127.0.0.1:{args.port}: {e.strerror}", file=sys.stderr)
        return 2
    return 0
