"""Two real payer processes on one database (an overlap during a redeploy) pay each cause once,
never call a paid cause `failed`, and end agreeing; a payer killed while it holds the asset's
lease is taken over once the lease expires, and nothing is paid twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mixin_world import make_world

from mixmaker.mixin.amounts import to_units
from mixmaker.mixin.ids import unique_object_id
from mixmaker.sim.mixin.setup import BTC, ETH, USDT_ERC20
from mixmaker.store import SqliteStore

WORKER = Path(__file__).with_name("mixin_pay_worker.py")
ETH_ADDR = "0x" + "cd" * 20


def start_world(seed: int, **state_kw):
    w = make_world(seed=seed, **state_kw)
    bot = w.bot["app_id"]
    for _ in range(10):
        w.state.deposit(bot, BTC, to_units("0.1"))
    for _ in range(3):
        w.state.deposit(bot, ETH, to_units("0.5"))
    w.state.deposit(bot, USDT_ERC20, to_units("50"))
    return w


def causes(w, tag: str) -> list[dict[str, str]]:
    users = [w.state.add_user(full_name=f"u{i}").user_id for i in range(6)]
    pays = [{"cause": f"{tag}:t{i}", "kind": "transfer", "asset": BTC, "amount": "0.15", "to": u}
            for i, u in enumerate(users)]
    pays += [{"cause": f"{tag}:w{i}", "kind": "withdrawal", "asset": ETH, "amount": "0.3", "to": ETH_ADDR}
             for i in range(2)]
    pays.append({"cause": f"{tag}:usdt", "kind": "withdrawal", "asset": USDT_ERC20, "amount": "10", "to": ETH_ADDR})
    return pays


def spec_file(w, tmp_path: Path, name: str, payments, **extra) -> Path:
    ks = tmp_path / "keystore.json"
    if not ks.exists():
        ks.write_text(json.dumps(w.bot))
        os.chmod(ks, 0o600)
    spec = {"keystore": str(ks), "url": w.server.url, "db": str(tmp_path / "pay.db"), "payments": payments,
            "ready_file": str(tmp_path / f"{name}.ready"), **extra}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec))
    return path


def start(spec: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(spec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early: {proc.stderr.read()}")
        assert time.monotonic() < end, f"{path.name} never appeared"
        time.sleep(0.01)


def finish(proc: subprocess.Popen) -> dict[str, dict[str, str]]:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def paid_count(w, p: dict[str, str]) -> int:
    """How many times the simulated Mixin moved money for this cause (snapshots of the payee)."""
    rid = unique_object_id(p["cause"], p["kind"])
    with w.state.lock:
        w.state._advance()  # finality that came due since the last request
        if p["kind"] == "transfer":
            return sum(1 for s in w.state.snapshots if s.request_id == rid and s.user_id == p["to"])
        return sum(1 for s in w.state.snapshots if s.request_id == rid and s.withdrawal is not None)


def assert_each_paid_once(w, payments, *views) -> None:
    bot = w.bot["app_id"]
    assert {p["cause"]: paid_count(w, p) for p in payments} == {p["cause"]: 1 for p in payments}, views
    assert w.state.balance(bot, BTC) == to_units("1") - 6 * to_units("0.15")
    assert w.state.balance(bot, ETH) == to_units("1.5") - 2 * to_units("0.302") - to_units("0.003")
    assert w.state.balance(bot, USDT_ERC20) == to_units("40")
    for view in views:  # every process ends with the same, true answer
        assert {c: v["state"] for c, v in view.items()} == {p["cause"]: "sent" for p in payments}, view


@pytest.mark.parametrize("trial", range(8))
def test_two_processes_paying_the_same_causes_pay_each_once(tmp_path, trial):
    # Odd trials keep broadcast outputs `signed` for a while (10105 for anyone spending them);
    # random slow answers widen the windows where the two payers interleave.
    w = start_world(seed=100 + trial, finality_delay_s=0.15 if trial % 2 else 0.0)
    try:
        for path in ("/safe/transaction/requests", "/safe/transactions", "/safe/outputs"):
            w.server.faults.add_random("slow", 0.25, path, delay_s=0.02 + 0.01 * (trial % 3))
        payments = causes(w, f"trial{trial}")
        go = tmp_path / "go"
        specs = [spec_file(w, tmp_path, name, payments, seed=trial * 10 + n, go_file=str(go),
                           concurrent=(trial + n) % 3 == 0)
                 for n, name in enumerate(("a", "b"))]
        procs = [start(s) for s in specs]
        for s, p in zip(specs, procs):
            wait_for(Path(json.loads(s.read_text())["ready_file"]), p)
        go.write_text("go")
        views = [finish(p) for p in procs]
        time.sleep(0.3)  # let a `signed` broadcast become final before counting balances
        assert_each_paid_once(w, payments, *views)
        rows = SqliteStore(tmp_path / "pay.db").query("SELECT cause, state FROM mixin_payments ORDER BY cause")
        assert rows == sorted((p["cause"], "sent") for p in payments)
    finally:
        w.server.stop()


@pytest.mark.parametrize("step", ["verified", "signed", "broadcast"])
def test_a_payer_killed_holding_the_lease_is_taken_over_after_expiry(tmp_path, step):
    """A dies (SIGKILL) holding BTC's lease: after Mixin verified its transfer, after signing it,
    or after broadcasting it without writing that down. B waits for the lease to expire, takes
    it over, and finishes everything: A's transfer once (B reads that A broadcast it)."""
    w = start_world(seed=77)
    try:
        payments = causes(w, "kill")
        marker = tmp_path / "paused"
        victim_cause = payments[0]["cause"]  # a BTC transfer
        a = start(spec_file(w, tmp_path, "a", payments[:1], seed=1, lease_ttl_s=1.5,
                            pause_at={"step": step, "cause": victim_cause, "marker": str(marker)}))
        wait_for(marker, a)
        # A holds BTC's lease and dies without a word.
        db = SqliteStore(tmp_path / "pay.db")
        [(owner_a, _, fence_a)] = db.query(
            "SELECT owner, expires_at_ns, fence FROM leases WHERE name = ?", (f"mixin-payments:{w.bot['app_id']}:{BTC}",))
        os.kill(a.pid, signal.SIGKILL)
        a.wait(30)
        assert db.query("SELECT state FROM mixin_payments") == [("pending" if step == "verified" else "signed",)]
        b = start(spec_file(w, tmp_path, "b", payments, seed=2, lease_ttl_s=1.5))
        view = finish(b)
        assert_each_paid_once(w, payments, view)
        [(owner_b, _, fence_b)] = db.query(
            "SELECT owner, expires_at_ns, fence FROM leases WHERE name = ?", (f"mixin-payments:{w.bot['app_id']}:{BTC}",))
        # B took BTC's lease over from A (a new holder, a higher fence), not alongside it.
        assert owner_b != owner_a and fence_b > fence_a
    finally:
        w.server.stop()
