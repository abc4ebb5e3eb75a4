"""The crash test of issue 16: the engine process (not the simulators: they run as `mixmaker sim all
--state DIR`, a process of their own) is killed with SIGKILL at seeded random points of the whole
flow (users pay by memo, funds go to the exchange by chain, shares are minted, the pools trade,
users stop, funds come back by chain, users are paid) and started again on the same database.

Each seed kills it once at a named step (the mover's, Payments', the order worker's, the payout
worker's, intake's: `funds_engine.py`'s STEP:N) and one to three more times at random moments.
At the end: no snapshot credited twice, no withdrawal or payout paid twice, nothing lost, every
user settled, and the identity (payments + trading = payouts + refunds + fees + bot share + held)
holds to the unit with the ledger equal to what the simulators hold.

12 seeds by default; `MIXMAKER_CRASH_SEEDS=N` runs more (`MIXMAKER_CRASH_SEED0` moves the range).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mixmaker

pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the exchange simulator needs picows")

from funds_checks import check_books, venue_holdings  # noqa: E402
from funds_flow import People  # noqa: E402
from sim_all_helpers import wait_ready  # noqa: E402

HERE = Path(__file__).parent
SEEDS = int(os.environ.get("MIXMAKER_CRASH_SEEDS", "12"))
SEED0 = int(os.environ.get("MIXMAKER_CRASH_SEED0", "0"))
# Named kill points: the mover and confirmation worker (planned, sent, seen, arrived), Payments
# (signed, broadcast), the order worker (to_exchange, minted, released, to_mixin), the payout worker
# (paid), intake (inside a page's transaction).
STEPS = ["sent", "planned", "broadcast", "seen", "to_exchange", "arrived", "minted", "signed", "released",
         "to_mixin", "paid", "intake"]
# The children import mixmaker from where this process did (the installed wheel in CI, the source
# tree with its built extension in development), and the test helpers from here.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(mixmaker.__file__).parent.parent), str(HERE)])}


def start_sims(state: Path, seed: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mixmaker.cli", "sim", "all", "--state", str(state), "--seed", str(seed),
           "--symbols", "BTCUSDT", "--send-delay", "0.2", "--block-time", "0.1", "--confirmations", "2",
           "--jitter", "0.3", "--duplicate", "0.2"]
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


class EngineProcess:
    """The engine as a process; started again whenever it died."""

    def __init__(self, sims_file: Path, db: Path, fee_payer: str, log: Path) -> None:
        self.sims_file, self.db, self.fee_payer, self.log = sims_file, db, fee_payer, log
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    def start(self, kill: str = "") -> None:
        """`kill` (STEP:N) goes to every start until the engine has killed itself there once."""
        self.kill_step = kill or getattr(self, "kill_step", "")
        args = [sys.executable, str(HERE / "funds_engine.py"), str(self.sims_file), str(self.db), self.fee_payer]
        if self.kill_step and not self.killed_itself():
            args.append(self.kill_step)
        out = self.log.open("a")
        out.write(f"--- start {self.starts} {kill}\n")
        out.flush()
        self.proc = subprocess.Popen(args, env=ENV, stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1

    def killed_itself(self) -> bool:
        return self.log.exists() and "killing myself" in self.log.read_text()

    def ready(self) -> bool:
        return self.log.exists() and "ready" in self.log.read_text()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.kills += 1

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def db_state(db: Path) -> tuple[dict[str, int], int, int]:
    """(user orders by state, queued payouts, fills booked), read-only while the engine runs."""
    if not db.exists():
        return {}, 0, 0
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            states = dict(c.execute("SELECT state, COUNT(*) FROM user_orders GROUP BY state")) \
                if "user_orders" in tables else {}
            queued = c.execute("SELECT COUNT(*) FROM user_payouts WHERE state = 'queued'").fetchone()[0] \
                if "user_payouts" in tables else 0
            fills = c.execute("SELECT COUNT(*) FROM ledger_transactions WHERE cause = 'fill'").fetchone()[0] \
                if "ledger_transactions" in tables else 0
        finally:
            c.close()
    except sqlite3.Error:
        return {}, 0, 0
    return states, queued, fills


@pytest.mark.parametrize("seed", range(SEED0, SEED0 + SEEDS))
def test_the_engine_killed_anywhere_in_the_flow_ends_with_every_user_paid_once_and_every_unit_accounted(tmp_path, seed):
    rng = random.Random(seed)
    state = tmp_path / "sims"
    sims_proc = start_sims(state, seed + 100)
    engine = EngineProcess(state / "sims.json", tmp_path / "mixmaker.db", "", tmp_path / "engine.log")
    try:
        sims = wait_ready(sims_proc, state)

        async def flow() -> None:
            people = await People.new(sims)
            engine.fee_payer = people.operator
            step = STEPS[seed % len(STEPS)]
            engine.start(f"{step}:{rng.randint(1, 2)}")
            # Random moments, counted from the first time the engine is ready (its start is a
            # kill point too: a restart may be killed again before it is ready).
            moments = sorted(rng.uniform(0.3, 12.0) for _ in range(rng.randint(1, 3)))
            began: list[float] = []

            async def keep_alive() -> None:
                while True:
                    if not began and engine.ready():
                        began.append(time.monotonic())
                    if moments and began and time.monotonic() - began[0] >= moments[0]:
                        moments.pop(0)
                        engine.kill()
                    if not engine.alive():
                        engine.start()
                    await asyncio.sleep(0.05)

            watcher = asyncio.create_task(keep_alive())

            async def until(check, what: str, timeout: float = 120) -> None:
                end = time.monotonic() + timeout
                while not check(*db_state(engine.db)):
                    if time.monotonic() > end:
                        raise AssertionError(f"seed {seed}: timed out waiting for {what}: {db_state(engine.db)}; "
                                             f"{engine.starts} starts; log {engine.log.read_text()[-3000:]}")
                    await asyncio.sleep(0.1)

            try:
                await people.standard_flow_payments()
                await until(lambda s, q, f: s.get("active", 0) == 3, "every order active")
                await until(lambda s, q, f: f >= 2, "the pools to trade", timeout=60)
                await people.standard_flow_stops()
                await until(lambda s, q, f: s.get("settled", 0) == 3 and not q, "every order settled and paid")
                if moments:  # a kill planned for later still happens, and the engine comes back
                    engine.kill()
                    moments.clear()
            finally:
                watcher.cancel()
            # once more from a restart: the start-up comparison on a finished world finds nothing to do
            readies = engine.log.read_text().count("\nready")
            if not engine.alive():
                engine.start()
            else:
                engine.kill()
                engine.start()
            end = time.monotonic() + 60
            while engine.log.read_text().count("\nready") == readies:
                assert engine.alive() and time.monotonic() < end, engine.log.read_text()[-3000:]
                await asyncio.sleep(0.1)
            for _ in range(10):  # a few rounds on a finished world: nothing to do, nothing paid again
                await asyncio.sleep(0.1)
            engine.stop()
            paid, received, sends = await people.observed(sims["mixin"]["keystore"])
            assert set(sends.values()) == {1}, f"seed {seed}: a payment sent twice: {sends}"
            wallet, exchange, ex_withdrawals = await venue_holdings(sims)
            check_books(str(engine.db), sims, wallet, exchange, paid_in=paid, received=received, orders_expected=3,
                                  mixin_withdrawals=sum(1 for k in sends if k[0] == "withdrawal"),
                                  exchange_withdrawals=ex_withdrawals)
            assert engine.killed_itself(), f"seed {seed}: the engine never reached {step}"
            assert engine.kills >= 1, f"seed {seed}: no random kill happened"

        asyncio.run(asyncio.wait_for(flow(), 280))
    finally:
        engine.stop()
        sims_proc.send_signal(signal.SIGTERM)
        try:
            sims_proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sims_proc.kill()
