"""`mixmaker demo` and `mixmaker run`: the engine as a product.

    mixmaker demo [--duration S] [--users N] [--seed S] [--state DIR] [--headless] [--json PATH]
    mixmaker run CONFIG                       # live: the keystore and exchange keys of CONFIG
    mixmaker run --paper CONFIG [--sims DIR]  # the same, against `mixmaker sim all --state DIR`

Exit codes: 0 a clean run (the demo: every unit accounted for, every user paid); 1 a run that
went wrong; 2 a config or argument that cannot run (every problem listed); 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mixmaker.engine.config import EngineConfig
    from mixmaker.engine.signals import StopSignals


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = subparsers.add_parser(
        "demo", help="the whole money cycle on local simulators: users pay by memo, pools trade, users are paid",
        description="Starts the simulators (exchange with a moving market, Mixin, the chain) as their own process, "
                    "the engine on SQLite in a state folder, and simulated users who pay by memo into two pools (one "
                    "is refunded), stop, and are paid back. Ends with a summary; --json writes the ledger next to "
                    "what the simulators hold.")
    d.add_argument("--duration", type=_seconds, default=180.0, metavar="S", help="the users' timeline (default 180)")
    d.add_argument("--users", type=_users, default=5, metavar="N", help="simulated users, at least 3 (default 5)")
    d.add_argument("--seed", type=int, default=1, help="seed of the users, amounts and market (default 1)")
    d.add_argument("--state", type=Path, metavar="DIR",
                   help="state folder; the same command on it resumes a run (default: a new temporary folder)")
    d.add_argument("--headless", action="store_true", help="progress lines instead of the live dashboard")
    d.add_argument("--json", type=Path, metavar="PATH", help="write the report (ledger vs simulators) as JSON")
    d.add_argument("--report", type=Path, metavar="PNG", help="the run's picture (default DIR/demo-report.png)")
    d.add_argument("--feed", default="synthetic", metavar="FILE|synthetic",
                   help="the exchange's market: a seeded synthetic one (default) or a recording")
    d.add_argument("--keep-sims", action="store_true", help="leave the simulators running at the end")
    d.set_defaults(run=_demo)

    r = subparsers.add_parser(
        "run", help="the engine on a config: live venues, or --paper against the local simulators",
        description="Runs the engine (intake, user orders, pools, payouts) on CONFIG until SIGINT/SIGTERM: the "
                    "first stops gracefully (quoting stops, open orders are cancelled, steps in flight finish), a "
                    "second exits at once (the next start reconciles).")
    r.add_argument("config", type=Path, metavar="CONFIG", help="the TOML config (see examples/)")
    r.add_argument("--paper", action="store_true", help="run against the local simulators (`mixmaker sim all`)")
    r.add_argument("--sims", type=Path, metavar="DIR", help="--paper: the simulators' state folder or sims.json "
                   "(default: the config's [paper] sims)")
    r.add_argument("--db", type=Path, metavar="PATH", help="the database (default: the config's engine.database)")
    r.add_argument("--log-format", choices=("human", "json"), help="override the config's engine.log_format")
    r.add_argument("--metrics-port", type=int, metavar="N", help="override the config's engine.metrics_port (0: any)")
    r.add_argument("--report", type=Path, metavar="PNG", help="at the end, draw the run's picture here")
    r.set_defaults(run=_run)


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 5 <= v <= 86400:
        raise argparse.ArgumentTypeError("must be 5..86400 seconds")
    return v


def _users(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 3 <= n <= 200:
        raise argparse.ArgumentTypeError("must be 3..200 (one refunded, members in both pools)")
    return n


def _demo(args: argparse.Namespace) -> int:
    from mixmaker.engine.demo import DemoOptions, main

    return main(DemoOptions(duration_s=args.duration, users=args.users, seed=args.seed, state=args.state,
                            headless=args.headless, json_path=args.json, png_path=args.report, feed=args.feed,
                            keep_sims=args.keep_sims))


def _run(args: argparse.Namespace) -> int:
    from mixmaker.engine import config as c
    from mixmaker.engine.errors import ConfigInvalidError

    mode = c.Mode.PAPER if args.paper else c.Mode.LIVE
    try:
        cfg = c.load(args.config, mode=mode)
    except ConfigInvalidError as e:
        print(f"mixmaker run: {e}", file=sys.stderr)
        return 2
    changes = {}
    if args.db is not None:
        changes["database"] = args.db
    if args.log_format is not None:
        changes["log_format"] = c.LogFormat(args.log_format)
    if args.metrics_port is not None:
        changes["metrics_port"] = args.metrics_port
    if changes:
        cfg = cfg.with_engine(**changes)
    from mixmaker.engine.signals import StopSignals

    signals = StopSignals("mixmaker run")
    try:
        return asyncio.run(_serve(cfg, args, signals))
    except KeyboardInterrupt:
        return 130
    finally:
        signals.exit_at_once()


async def _serve(cfg: EngineConfig, args: argparse.Namespace, signals: StopSignals) -> int:
    import logging

    from mixmaker.engine.errors import EngineError
    from mixmaker.engine.logs import setup
    from mixmaker.engine.runtime import Engine
    from mixmaker.engine.sims import wait_for_sims
    from mixmaker.engine.venues import live_links, paper_links

    setup(cfg.engine.log_format, cfg.engine.log_level)
    log = logging.getLogger("mixmaker.run")
    signals.install()  # until the process ends: a second signal, even during the stop, exits at once
    try:
        if args.paper:
            links = paper_links(cfg, await wait_for_sims(args.sims or cfg.paper.sims, 60))
        else:
            links = live_links(cfg)
    except EngineError as e:
        print(f"mixmaker run: error: {e}", file=sys.stderr)
        return 2
    engine = Engine(cfg, links)
    code = 0
    try:
        start = asyncio.ensure_future(engine.start())
        stopped = asyncio.ensure_future(signals.stop.wait())
        await asyncio.wait({start, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if start.done():
            start.result()  # a failed start raises here
            await stopped
        else:
            start.cancel()
            await asyncio.gather(start, return_exceptions=True)
    except EngineError as e:
        log.error("%s", e)
        code = 1
    finally:
        clean = await engine.stop()
    if args.report is not None:
        from mixmaker.engine.report import plot_run

        try:
            print(f"run report: {plot_run(cfg.engine.database, args.report, title=str(args.config))}")
        except Exception as e:  # noqa: BLE001
            print(f"mixmaker run: no report: {e}", file=sys.stderr)
    return code if clean or code else 0
