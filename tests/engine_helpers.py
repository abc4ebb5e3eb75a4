"""Processes for the engine's tests: the simulators started exactly as the demo starts them, the
engine as `mixmaker run --paper`, and read-only looks at the engine's database."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mixmaker.engine.sims import sim_all_command

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "examples" / "paper.toml"


def env() -> dict[str, str]:
    """This process's environment and import path (the installed wheel under tests/run.sh, the
    source tree in development), for the processes a test starts."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def sims_process(folder: Path, seed: int) -> Iterator[subprocess.Popen[bytes]]:
    """`mixmaker sim all` on `folder` as its own process (as the demo starts it)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / "sims.log", "ab") as logf:
        proc = subprocess.Popen(sim_all_command(folder, seed=seed), stdout=logf, stderr=subprocess.STDOUT,
                                env=env(), start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def run_paper(db: Path, sims: Path, port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as logf:
        return subprocess.Popen([sys.executable, "-m", "mixmaker.cli", "run", "--paper", str(PAPER), "--sims", str(sims),
                                 "--db", str(db), "--metrics-port", str(port), *extra],
                                stdout=logf, stderr=subprocess.STDOUT, env=env())


def query(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
    """A read-only look at the engine's database while it runs (WAL: readers never block it)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # a table not made yet
        return []
    finally:
        conn.close()


def order_states(db: Path) -> dict[str, str]:
    return dict(query(db, "SELECT order_id, state FROM user_orders"))


def fills(db: Path) -> int:
    rows = query(db, "SELECT COUNT(*) FROM ledger_transactions WHERE cause = 'fill'")
    return rows[0][0] if rows else 0


def queued_payouts(db: Path) -> int:
    rows = query(db, "SELECT COUNT(*) FROM user_payouts WHERE state = 'queued'")
    return rows[0][0] if rows else 0


def wait_until(check, what: str, timeout: float) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
