"""A real process running intake and payouts is SIGKILLed at random moments (mid-page, mid-
payment) and started again: nothing is credited twice, nothing is paid twice, and every payer
gets back what they paid (refunds, returns, payouts), less dust."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from mixin_world import make_world
from users_world import create_text

from mixmaker.funds.ledger import Ledger
from mixmaker.mixin.amounts import to_units
from mixmaker.sim.mixin.setup import BTC, USDT_ERC20
from mixmaker.store import SqliteStore
from mixmaker.users import memo as m

WORKER = Path(__file__).with_name("users_kill_worker.py")


@pytest.fixture
def world():
    w = make_world(seed=91)
    yield w
    w.server.stop()


def start(args):
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_sigkill_during_intake_and_payouts_credits_and_pays_each_once(world, tmp_path):
    rng = random.Random(5)
    state, bot = world.state, world.bot["app_id"]
    users = [state.add_user(full_name=f"u{i}") for i in range(4)]
    for u in users:
        state.deposit(u.user_id, BTC, to_units("50"))
        state.deposit(u.user_id, USDT_ERC20, to_units("500000"))
    paid = Counter()

    def pay(u, asset, units, extra):
        state.user_sends(u.user_id, bot, asset, units, extra)
        paid[(u.user_id, asset)] += units

    orders = []
    for i in range(40):
        u = users[i % 4]
        if i % 3 == 0:
            pay(u, BTC, to_units("0.01") + i, b"bad memo %d" % i)  # refunded
        elif i % 3 == 1:
            o = str(uuid.uuid4())
            orders.append((u, o))
            pay(u, USDT_ERC20, to_units("100"), create_text(o, quote=to_units("100")))
        else:
            pay(u, BTC, to_units("0.000001"), b"dust")  # kept as dust
    for u, o in orders[: len(orders) // 2]:
        pay(u, BTC, to_units("0.0001"), m.to_extra(m.StopMemo(o)))  # stops the order (still awaiting? no: funded)

    ks = tmp_path / "bot.json"
    ks.write_text(json.dumps(world.bot))
    os.chmod(ks, 0o600)
    db = tmp_path / "users.db"
    args = [sys.executable, str(WORKER), str(ks), world.server.url, str(db)]
    kills = []
    # Killed at chosen steps (inside a page's transaction, between Mixin taking a payment and its
    # booking, inside the booking, in Payments' own steps), then at random moments.
    plan = ["intake:7", "paid:2", "booked:3", "verified:2", "signed:2", "broadcast:3", "sent:1", "intake:30", "", ""]
    for n, step in enumerate(plan):
        p = start(args + ([step] if step else []))
        if n == 7:  # the stops of the other orders arrive while it is down
            for u, o in orders[len(orders) // 2:]:
                pay(u, BTC, to_units("0.0001"), m.to_extra(m.StopMemo(o)))
        if not step and n < len(plan) - 1:
            time.sleep(rng.uniform(0.8, 1.6))  # mid-import or mid-work: wherever it is
            p.send_signal(signal.SIGKILL)
        out, err = p.communicate(timeout=120)
        if p.returncode == -signal.SIGKILL:
            kills.append(step or "random")
        else:
            assert p.returncode == 0, err
    assert p.returncode == 0 and out.strip().endswith("idle"), err
    assert len(kills) >= 7, kills
    store = SqliteStore(db)
    ledger = Ledger(store)
    assert ledger.verify() == []
    payments = store.query("SELECT snapshot_id FROM user_intake WHERE class = 'user_payment'")
    user_snaps = [s for s in state.snapshots if s.user_id == bot and s.amount > 0 and s.opponent_id]
    assert len(payments) == len(user_snaps)
    keys = [r[0] for r in store.query("SELECT tx_key FROM ledger_transactions WHERE cause = 'payment'")]
    assert sorted(keys) == sorted(f"payment:{s.snapshot_id}" for s in user_snaps)
    out = [s for s in state.snapshots if s.user_id == bot and s.amount < 0]
    assert len({s.request_id for s in out}) == len(out)  # no payment made twice
    rows = store.query("SELECT state, COUNT(*) FROM user_payouts GROUP BY state")
    assert dict(rows).keys() <= {"sent", "dust"}
    assert dict(rows)["sent"] == len(out)
    assert {r[0] for r in store.query("SELECT state FROM user_orders")} <= {"settled", "refunded"}
    dust = {a: -u for (acct, a), u in ledger.balances().items() if acct.name == "unclaimed:dust"}
    for u in users:
        for asset, sym in ((BTC, "BTC"), (USDT_ERC20, "USDT")):
            back = sum(s.amount for s in state.snapshots if s.user_id == u.user_id and s.opponent_id == bot and s.amount > 0
                       and s.asset_id == asset)
            assert back <= paid[(u.user_id, asset)]
    total_back = sum(s.amount for s in state.snapshots if s.opponent_id == bot and s.amount > 0 and s.asset_id == BTC)
    assert total_back == sum(v for (_, a), v in paid.items() if a == BTC) - dust.get("BTC", 0)
    assert state.balance(bot, BTC) == dust.get("BTC", 0)
