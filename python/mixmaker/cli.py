"""The `mixmaker` command.

    mixmaker replay                 # the built-in synthetic Binance futures feed
    mixmaker replay FILE [--json]   # a recording; venue and decimals detected from its content
    mixmaker sim mixin --port N     # a Mixin-compatible server on 127.0.0.1
    mixmaker sim exchange --port N  # a Binance-spot-compatible exchange on 127.0.0.1
    mixmaker sim chain --mixin URL --exchange URL   # the simulated chain between them
    mixmaker sim all --state DIR    # all three in one process, durable in DIR
    mixmaker backtest --feed FILE --config pmm.toml [--json] [--plot out.png]
    mixmaker memo create --market binance:BTC/USDT --preset NAME [--base AMOUNT] [--quote AMOUNT]
    mixmaker memo decode HEX|BASE64 # any memo explained in words
    mixmaker status [--db PATH]     # user orders, pools, balances, last reconciliation
    mixmaker demo [--headless] [--json PATH] [--state DIR]   # the whole money cycle on the simulators
    mixmaker run [--paper] CONFIG   # the engine on a config (examples/live.toml, examples/paper.toml)

Exit codes: 0 clean replay; 1 the replay ran but something is wrong (bookTicker mismatches,
book not synced at the end, crossed book, unreadable messages); 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from mixmaker.replay.detect import RULES
from mixmaker.replay.errors import ReplayError

PROG = "mixmaker"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except ReplayError as e:
        print(f"{PROG} {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit-time flush
        # of stdout from raising again.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="mixmaker market-making engine tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    rp = sub.add_parser(
        "replay",
        help="replay an order-book feed through the Rust BookSync and check it",
        description="Replay a recorded feed (gzip/plain `<ts_ns> <json>` lines, or a zip of JSON "
        "lines) through BookSync. Without FILE, replays a deterministic synthetic Binance "
        "futures feed.",
    )
    rp.add_argument("file", nargs="?", metavar="FILE", help="recording to replay (default: synthetic feed)")
    rp.add_argument("--rule", choices=RULES, help="sync rule (default: detected)")
    rp.add_argument("--price-decimals", type=_decimals, metavar="N", help="price scale (default: detected)")
    rp.add_argument("--size-decimals", type=_decimals, metavar="N", help="size scale (default: detected)")
    rp.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    rp.add_argument("--seed", type=int, default=7, help="synthetic feed seed (default: 7)")
    rp.add_argument("--max-buffer", type=_positive, default=10_000, metavar="N", help="diffs buffered while not synced")
    prog = rp.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress on stderr")
    prog.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")
    rp.set_defaults(run=_replay)
    from mixmaker.sim.mixin.cli import register as register_sim

    register_sim(sub)
    from mixmaker.backtest.cli import register as register_backtest

    register_backtest(sub)
    from mixmaker.sim.exchange.cli import register as register_sim_exchange

    register_sim_exchange(sub)
    from mixmaker.sim.chain.cli import register as register_sim_chain
    from mixmaker.sim.world_cli import register as register_sim_all

    register_sim_chain(sub)
    register_sim_all(sub)
    from mixmaker.users.cli import register as register_users

    register_users(sub)
    from mixmaker.funds.cli import register as register_funds

    register_funds(sub)
    from mixmaker.engine.cli import register as register_engine

    register_engine(sub)
    return parser


def _decimals(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= n <= 18:
        raise argparse.ArgumentTypeError(f"must be between 0 and 18, got {n}")
    return n


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _replay(args: argparse.Namespace) -> int:
    # Imported here so `mixmaker --help` works even when the compiled core is missing.
    from mixmaker.replay.detect import Detected, resolve
    from mixmaker.replay.recording import open_recording
    from mixmaker.replay.report import render_json, render_table
    from mixmaker.replay.runner import replay
    from mixmaker.replay.synthetic import synthetic_feed

    if args.file is None:
        feed = synthetic_feed(seed=args.seed)
        # Flags still apply: e.g. --rule sequential shows what a wrong rule does.
        base = Detected.from_spec(feed.spec)
        spec = resolve(base, "the synthetic feed", args.rule, args.price_decimals, args.size_decimals)
        messages = iter(feed.messages)
        source = f"synthetic feed (seed {args.seed}, {len(feed.messages):,} messages)"
    else:
        rec = open_recording(args.file)
        spec = rec.detect_venue(args.rule, args.price_decimals, args.size_decimals)
        messages = rec.messages()
        source = str(rec.path)
    result = replay(messages, spec, source=source, max_buffer=args.max_buffer, progress=args.progress)
    print(render_json(result) if args.json else render_table(result))
    if not result.ok:
        print(f"{PROG} replay: {'; '.join(result.problems)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
