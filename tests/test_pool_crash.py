"""A real process killed between any two steps of a mint, a fill's booking or a burn, then run
again: the ledger ends exactly as in a run that never died (nothing lost, nothing doubled)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mixmaker.funds.ledger import Ledger
from mixmaker.store import SqliteStore

HERE = Path(__file__).resolve().parent
STEPS = [
    ("mint:inside", 1), ("mint-a:after", 1), ("mint:inside", 2), ("mint-b:after", 1),
    ("tracker:recorded", 1), ("tracker:acked", 1), ("tracker:fill_recorded", 1), ("fill:inside", 1),
    ("fill:booked", 1), ("fill:inside", 2), ("fill:booked", 2), ("burn:inside", 1), ("burn-a:after", 1),
]


def _run(tmp: Path, *step: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(HERE / "pool_crash_worker.py"), str(tmp / "pools.db"),
                           str(tmp / "venue.pickle"), *step], env=env, capture_output=True, text=True, timeout=120)


def _books(tmp: Path) -> tuple[dict, list[str], int]:
    store = SqliteStore(tmp / "pools.db")
    ledger = Ledger(store)
    balances = {(a.name, s): u for (a, s), u in ledger.balances().items()}
    problems = ledger.verify()
    fills = len([k for (k,) in store.query("SELECT tx_key FROM ledger_transactions WHERE cause = 'fill'")])
    # the fee remainder is part of the books: a fill counted twice there would misplace a unit later
    balances.update({("fee-remainder", a): u for a, u in store.query("SELECT asset, over FROM pool_fee_remainders")})
    store.close()
    return balances, problems, fills


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[dict, list[str], int]:
    tmp = tmp_path_factory.mktemp("clean")
    proc = _run(tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _books(tmp)


@pytest.mark.parametrize("step,nth", STEPS)
def test_a_kill_between_any_two_steps_neither_loses_nor_doubles(tmp_path, clean, step, nth):
    died = _run(tmp_path, step, str(nth))
    assert died.returncode == 137, f"the worker did not die at {step}#{nth}: rc={died.returncode} {died.stderr[-3000:]}"
    again = _run(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    balances, problems, fills = _books(tmp_path)
    want_balances, want_problems, want_fills = clean
    assert problems == want_problems == []
    assert fills == want_fills == 2
    assert balances == want_balances
    assert want_balances[("rounding:", "USDT")] < 0  # the fees' over-booking came back as a whole unit
