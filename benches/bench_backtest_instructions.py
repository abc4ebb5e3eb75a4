"""Instructions per run of the 20-decisions-a-second maker (benches/maker_20hz.toml) on the USD-M
recording, counted by valgrind's callgrind: a figure that does not drift with the machine's
speed, for telling whether a change to the decision path made it cheaper (wall time on a shared
VM moves by a fifth from one minute to the next).

A child process runs the backtest three times; callgrind starts a new count each time a
`TapePlayer` is created, so the second count is one whole run (replay, decisions, report) and the
next run's set-up, with imports and the first load of the tape left out. Needs `valgrind`
(`apt-get install valgrind`); about a minute.

    python benches/bench_backtest_instructions.py            # millions of instructions per run
    python benches/bench_backtest_instructions.py --no-kept  # the tape read from its file every run
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILE = "binance_usdm_btcusdt_20240808_hftbacktest.gz"


def child(runs: int, kept: bool) -> None:
    import gc

    import mixmaker.backtest.feed as feed_module
    from mixmaker.backtest.feed import open_feed
    from mixmaker.backtest.runner import run_backtest
    from mixmaker.strategy import load_config

    if not kept:
        feed_module.KEPT_TAPES_MAX = 0
    cfg = load_config(HERE / "maker_20hz.toml")
    path = Path(os.environ.get("MIXMAKER_DATA", "../shared/data/market")) / FILE
    for _ in range(runs):
        gc.collect()
        run_backtest(cfg, open_feed(path, cache=True), samples=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-kept", action="store_true", help="read the tape from its file on every run")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, not args.no_kept)
        return 0
    if shutil.which("valgrind") is None:
        print("skipped: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    if not (Path(os.environ.get("MIXMAKER_DATA", "../shared/data/market")) / FILE).is_file():
        print(f"skipped: {FILE} not found (set MIXMAKER_DATA)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "cg"
        cmd = ["valgrind", "--tool=callgrind", "--dump-before=*PyTapePlayer*pymethod___new__*",
               f"--callgrind-out-file={out}", sys.executable, __file__, "--child", "3"]
        if args.no_kept:
            cmd.append("--no-kept")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-2000:], file=sys.stderr)
            return done.returncode
        dumps = sorted(Path(d).glob("cg.*"), key=lambda p: int(p.suffix[1:]))
        if len(dumps) < 2:
            print("no per-run counts: the TapePlayer symbol was not found in the extension", file=sys.stderr)
            return 1
        m = re.search(r"^summary: (\d+)", dumps[1].read_text(), re.M)
        assert m is not None, "callgrind wrote no summary"
        print(f"maker_20hz on {FILE}, tape {'read every run' if args.no_kept else 'kept'}: "
              f"{int(m.group(1)) / 1e6:.1f} million instructions per run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
