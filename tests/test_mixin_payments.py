"""Paying exactly once: transfers and withdrawals through the real client against the local
server, across repeats, crashes (a killed process) and broadcast timeouts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mixin_world import make_world, run

from mixmaker.mixin.amounts import to_units
from mixmaker.mixin.errors import FeeError, InvalidAddressError, ServerError
from mixmaker.mixin.ids import unique_object_id
from mixmaker.mixin.payments import PaymentConflictError, PaymentFailedError, Payments
from mixmaker.mixin.utxo import InsufficientOutputsError
from mixmaker.sim.mixin import FEE_USER_ID
from mixmaker.sim.mixin.setup import BTC, ETH, USDT_ERC20
from mixmaker.store import SqliteStore

ETH_ADDR = "0x" + "ab" * 20
WORKER = Path(__file__).with_name("mixin_crash_worker.py")


@pytest.fixture
def world():
    w = make_world(seed=5)
    bot = w.bot["app_id"]
    w.state.deposit(bot, BTC, to_units("1"))
    w.state.deposit(bot, BTC, to_units("0.3"))
    w.state.deposit(bot, ETH, to_units("1"))
    w.state.deposit(bot, USDT_ERC20, to_units("100"))
    yield w
    w.server.stop()


def balance(w, asset, who=None) -> int:
    return w.state.balance(who or w.bot["app_id"], asset)


def withdrawal_snapshots(w, asset):
    return [s for s in w.state.snapshots if s.user_id == w.bot["app_id"] and s.asset_id == asset and s.withdrawal]


def test_transfer_pays_once_and_a_repeat_changes_nothing(world, tmp_path):
    alice = world.state.add_user(full_name="alice")

    async def main():
        async with world.client() as c:
            pay = Payments(c, SqliteStore(tmp_path / "p.db"))
            p = await pay.transfer("order-1:refund", BTC, "1.2", alice.user_id, b"refund")
            again = await pay.transfer("order-1:refund", BTC, "1.2", alice.user_id, b"refund")
            return p, again

    p, again = run(main())
    assert p.state == again.state == "sent" and again.request_id == p.request_id
    assert p.request_id == unique_object_id("order-1:refund", "transfer")
    assert balance(world, BTC) == to_units("0.1") and balance(world, BTC, alice.user_id) == to_units("1.2")
    got = [s for s in world.state.snapshots if s.user_id == alice.user_id]
    assert [(s.amount, s.memo, s.opponent_id, s.request_id) for s in got] == [
        (to_units("1.2"), b"refund", world.bot["app_id"], p.request_id)]


def test_withdrawal_pays_its_fee_in_the_same_asset(world, tmp_path):
    async def main():
        async with world.client() as c:
            return await Payments(c, SqliteStore(tmp_path / "p.db")).withdraw("w-1", ETH, "0.5", ETH_ADDR)

    p = run(main())
    assert p.state == "sent"
    assert balance(world, ETH) == to_units("1") - to_units("0.5") - to_units("0.002")
    assert balance(world, ETH, FEE_USER_ID) == to_units("0.002")
    [snap] = withdrawal_snapshots(world, ETH)
    assert snap.amount == -to_units("0.502") and snap.withdrawal["receiver"] == ETH_ADDR  # no delay: hash already set


def test_withdrawal_with_the_fee_in_another_asset_sends_two_linked_transactions(world, tmp_path):
    async def main():
        async with world.client() as c:
            pay = Payments(c, SqliteStore(tmp_path / "p.db"))
            p = await pay.withdraw("w-usdt", USDT_ERC20, "10", ETH_ADDR)
            return p, await c.transaction(unique_object_id(p.request_id, "FEE"))

    p, fee = run(main())
    assert p.state == "sent" and fee is not None and fee.state == "spent"
    assert balance(world, USDT_ERC20) == to_units("90")
    assert balance(world, ETH) == to_units("1") - to_units("0.003")
    assert balance(world, ETH, FEE_USER_ID) == to_units("0.003")


def test_the_withdrawal_hash_appears_after_the_delay(tmp_path):
    w = make_world(seed=6, withdrawal_delay_s=60)
    try:
        w.state.deposit(w.bot["app_id"], ETH, to_units("1"))

        async def main():
            async with w.client() as c:
                pay = Payments(c, SqliteStore(tmp_path / "p.db"))
                p = await pay.withdraw("w-2", ETH, "0.1", ETH_ADDR)
                pending = await pay.refresh_withdrawal(p.request_id)
                w.state.clock.advance(61)
                return pending, await pay.refresh_withdrawal(p.request_id)

        pending, confirmed = run(main())
        assert pending.state == "sent" and pending.withdrawal_hash is None
        assert confirmed.state == "confirmed" and len(confirmed.withdrawal_hash) == 64
        [snap] = withdrawal_snapshots(w, ETH)
        assert snap.withdrawal["withdrawal_hash"] == confirmed.withdrawal_hash
    finally:
        w.server.stop()


def test_a_failed_withdrawal_is_refunded_and_never_confirmed(tmp_path):
    w = make_world(seed=7, withdrawal_delay_s=5)
    try:
        w.state.deposit(w.bot["app_id"], ETH, to_units("1"))
        w.state.failing_addresses.add(ETH_ADDR)

        async def main():
            async with w.client() as c:
                pay = Payments(c, SqliteStore(tmp_path / "p.db"))
                p = await pay.withdraw("w-3", ETH, "0.4", ETH_ADDR)
                w.state.clock.advance(6)
                return await pay.refresh_withdrawal(p.request_id)

        p = run(main())
        assert p.state == "sent"  # never confirmed: no chain hash
        assert balance(w, ETH) == to_units("1") - to_units("0.002")  # the amount came back, the fee did not
    finally:
        w.server.stop()


def worker_args(world, tmp_path, cause: str) -> tuple[list[str], Path]:
    """The command line of a bot process withdrawing 0.25 ETH for `cause` (crash step appended by the test)."""
    ks = tmp_path / "keystore.json"
    ks.write_text(json.dumps(world.bot))
    os.chmod(ks, 0o600)
    db = tmp_path / "pay.db"
    return [sys.executable, str(WORKER), str(ks), world.server.url, str(db), "withdrawal", cause, ETH, "0.25", ETH_ADDR], db


def test_crash_between_signed_and_broadcast_pays_once(world, tmp_path):
    """A real process dies right after storing the signed withdrawal; the next run pays it once."""
    args, db = worker_args(world, tmp_path, "w-crash")
    dead = subprocess.run([*args, "signed"], capture_output=True, text=True, timeout=60)
    assert dead.returncode == 17, dead.stderr
    rows = SqliteStore(db).query("SELECT state, raws FROM mixin_payments")
    assert rows[0][0] == "signed" and rows[0][1]
    assert balance(world, ETH) == to_units("1") and not withdrawal_snapshots(world, ETH)  # nothing paid yet
    # The retry of the same call, in a new process, sends the stored bytes once...
    again = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stdout.strip() == "sent", again.stderr
    # ...and a third attempt (or a start-up recovery) changes nothing.
    third = subprocess.run([*args[:5], "recover", *args[6:]], capture_output=True, text=True, timeout=60)
    assert third.returncode == 0, third.stderr
    assert balance(world, ETH) == to_units("1") - to_units("0.252")
    assert len(withdrawal_snapshots(world, ETH)) == 1


def test_crash_after_broadcast_before_it_was_recorded_pays_once(world, tmp_path):
    args, db = worker_args(world, tmp_path, "w-b")
    assert subprocess.run([*args, "broadcast"], capture_output=True, timeout=60).returncode == 17
    assert SqliteStore(db).query("SELECT state FROM mixin_payments") == [("signed",)]
    rec = subprocess.run([*args[:5], "recover", *args[6:]], capture_output=True, text=True, timeout=60)
    assert rec.stdout.strip() == "sent", rec.stderr
    assert balance(world, ETH) == to_units("1") - to_units("0.252")
    assert len(withdrawal_snapshots(world, ETH)) == 1


@pytest.mark.parametrize("fault", ["drop_after_apply", "slow"])
def test_withdrawal_after_a_broadcast_timeout_pays_once(world, tmp_path, fault):
    """drop_after_apply: Mixin applied it but the answer never came. slow: Mixin applies it only
    after we gave up. Either way the outcome is read, and the same bytes are re-sent at most."""
    world.server.faults.add(fault, "/safe/transactions", method="POST", delay_s=1.0)

    async def main():
        async with world.client(timeout_s=0.3) as c:
            pay = Payments(c, SqliteStore(tmp_path / "p.db"), uncertain_backoff_s=0.4)
            p = await pay.withdraw("w-timeout", ETH, "0.3", ETH_ADDR)
            await asyncio.sleep(1.0)  # let a late broadcast land before counting
            return p

    p = run(main())
    assert p.state == "sent"
    assert world.server.faults.fired == [(fault, "/safe/transactions")]
    assert balance(world, ETH) == to_units("1") - to_units("0.302")
    assert len(withdrawal_snapshots(world, ETH)) == 1


def test_a_timeout_without_an_answer_leaves_the_payment_signed_for_later(world, tmp_path):
    world.server.faults.add("500", "/safe/transactions", method="POST", times=10)

    async def main():
        async with world.client() as c:
            pay = Payments(c, SqliteStore(tmp_path / "p.db"), uncertain_retries=2, uncertain_backoff_s=0.01)
            with pytest.raises(ServerError):
                await pay.withdraw("w-500", ETH, "0.1", ETH_ADDR)
            left = pay.unfinished()
            world.server.faults.clear()
            return left, await pay.recover()

    left, done = run(main())
    assert [p.state for p in left] == ["signed"] and [p.state for p in done] == ["sent"]
    assert balance(world, ETH) == to_units("1") - to_units("0.102")


def test_concurrent_payments_of_one_asset_are_serialized(world, tmp_path):
    users = [world.state.add_user(full_name=f"u{i}") for i in range(5)]

    async def main():
        async with world.client() as c:
            pay = Payments(c, SqliteStore(tmp_path / "p.db"))
            return await asyncio.gather(*(pay.transfer(f"batch:{i}", BTC, "0.2", u.user_id) for i, u in enumerate(users)))

    done = run(main())
    assert [p.state for p in done] == ["sent"] * 5
    assert balance(world, BTC) == to_units("0.3") and all(balance(world, BTC, u.user_id) == to_units("0.2") for u in users)


def test_not_enough_outputs_pays_nothing_and_can_be_retried(world, tmp_path):
    alice = world.state.add_user(full_name="alice")

    async def main():
        async with world.client() as c:
            pay = Payments(c, SqliteStore(tmp_path / "p.db"))
            with pytest.raises(InsufficientOutputsError, match="need 2, unspent outputs hold 1.3"):
                await pay.transfer("big", BTC, "2", alice.user_id)
            world.state.deposit(world.bot["app_id"], BTC, to_units("1"))
            return await pay.transfer("big", BTC, "2", alice.user_id)

    assert run(main()).state == "sent"
    assert balance(world, BTC, alice.user_id) == to_units("2") and balance(world, BTC) == to_units("0.3")


def test_a_cause_reused_with_other_parameters_is_refused(world, tmp_path):
    alice = world.state.add_user(full_name="alice")

    async def main():
        async with world.client() as c:
            pay = Payments(c, SqliteStore(tmp_path / "p.db"))
            await pay.transfer("c-1", BTC, "0.1", alice.user_id)
            with pytest.raises(PaymentConflictError):
                await pay.transfer("c-1", BTC, "0.2", alice.user_id)
            with pytest.raises(ValueError):
                await pay.transfer("c-2", BTC, 0.1, alice.user_id)  # a float amount

    run(main())
    assert balance(world, BTC, alice.user_id) == to_units("0.1")


def test_a_refused_withdrawal_fails_with_the_reason_and_pays_nothing(world, tmp_path):
    async def main():
        async with world.client() as c:
            pay = Payments(c, SqliteStore(tmp_path / "p.db"))
            with pytest.raises(PaymentFailedError) as e:
                await pay.withdraw("w-bad", ETH, "0.1", "not-an-address")
            return e.value, pay.payment(e.value.request_id)

    err, p = run(main())
    assert isinstance(err.api_error, InvalidAddressError) and err.api_error.code == 30102
    assert p.state == "failed" and "30102" in p.error
    assert balance(world, ETH) == to_units("1")


def test_a_request_mixin_forgot_is_verified_again_and_sent_once(world, tmp_path):
    """Crash after signing; meanwhile the server has dropped the unsigned request. The stored
    signed bytes are re-verified under the same request id and sent once."""
    args, db = worker_args(world, tmp_path, "w-forgot")
    assert subprocess.run([*args, "signed"], capture_output=True, timeout=60).returncode == 17
    with world.state.lock:
        [rid] = list(world.state.requests)
        forgotten = world.state.requests.pop(rid)
        world.state.requests_by_hash.pop(forgotten.hash)
    rec = subprocess.run([*args[:5], "recover", *args[6:]], capture_output=True, text=True, timeout=60)
    assert rec.stdout.strip() == "sent", rec.stderr
    assert balance(world, ETH) == to_units("1") - to_units("0.252")
    assert len(withdrawal_snapshots(world, ETH)) == 1


@pytest.mark.parametrize("step", ["verified", "signed"])
def test_a_new_payment_does_not_take_the_inputs_of_one_cut_short_by_a_crash(world, tmp_path, step):
    """A process dies after Mixin verified a withdrawal (or after signing it); the next run pays
    something else of the same asset first. The new payment leaves the old one's inputs alone, so
    the recovery can still send those bytes: both are paid once, neither is called failed."""
    args, db = worker_args(world, tmp_path, "w-first")
    assert subprocess.run([*args, step], capture_output=True, timeout=60).returncode == 17
    world.state.deposit(world.bot["app_id"], ETH, to_units("0.5"))  # the oldest output stays the signed one's
    alice = world.state.add_user(full_name="alice")

    async def main():
        async with world.client() as c:
            pay = Payments(c, SqliteStore(db), lease_ttl_s=1.0)
            other = await pay.transfer("after-crash", ETH, "0.3", alice.user_id)
            return other, await pay.recover()

    other, recovered = run(main())
    assert other.state == "sent" and [p.state for p in recovered] == ["sent"]
    assert balance(world, ETH, alice.user_id) == to_units("0.3")
    assert balance(world, ETH) == to_units("1.5") - to_units("0.3") - to_units("0.252")
    assert len(withdrawal_snapshots(world, ETH)) == 1


@pytest.mark.parametrize("code", [2000002, 10105])
def test_utxo_contention_is_retried_never_a_failure(world, tmp_path, code):
    """The outputs are locked by another transaction (kernel 2000002, 10105) for longer than the
    client's own retries: the payment reads its outputs again and pays; it is never `failed`."""
    world.server.faults.add("api_error", "/safe/transaction/requests", code=code, times=7)
    alice = world.state.add_user(full_name="alice")

    async def main():
        async with world.client() as c:
            pay = Payments(c, SqliteStore(tmp_path / "p.db"), contention_backoff_s=0.01)
            return await pay.transfer("locked", BTC, "0.5", alice.user_id)

    assert run(main()).state == "sent"
    assert balance(world, BTC, alice.user_id) == to_units("0.5")


def test_a_fee_refusal_leaves_the_payment_pending_for_a_retry(world, tmp_path):
    """20135 (fee too small: the fee table moved) refuses this build, not the payment: it stays
    pending, and the next attempt pays with the fee read again."""
    world.server.faults.add("api_error", "/safe/transaction/requests", code=20135)

    async def main():
        async with world.client() as c:
            pay = Payments(c, SqliteStore(tmp_path / "p.db"))
            with pytest.raises(FeeError):
                await pay.withdraw("w-fee", ETH, "0.1", ETH_ADDR)
            [left] = pay.unfinished()
            return left, await pay.withdraw("w-fee", ETH, "0.1", ETH_ADDR)

    left, p = run(main())
    assert left.state == "pending" and p.state == "sent"
    assert balance(world, ETH) == to_units("1") - to_units("0.102")
