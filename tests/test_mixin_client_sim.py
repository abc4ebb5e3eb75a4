"""The client's retry rules and typed errors, and the server's transaction checks, both through
real HTTP on 127.0.0.1."""

from __future__ import annotations

import pytest
from mixin_world import make_world, run

from mixmaker.mixin import Keystore, MixinClient, kernel
from mixmaker.mixin.amounts import to_units
from mixmaker.mixin.errors import (
    FeeError,
    ForbiddenError,
    InvalidFieldError,
    NotRegisteredError,
    PinIncorrectError,
    RateLimitedError,
    RequestIdConflictError,
    RequestIdMismatchError,
    ServerError,
    WithdrawalMemoError,
    AmountLimitError,
)
from mixmaker.mixin.ids import kernel_asset_id, unique_object_id
from mixmaker.sim.mixin import FEE_USER_ID, FaultPlan, MixinSimServer, new_bot
from mixmaker.sim.mixin.setup import BTC, EOS, ETH

ETH_ADDR = "0x" + "cd" * 20


@pytest.fixture
def world():
    w = make_world(seed=21)
    w.state.deposit(w.bot["app_id"], ETH, to_units("1"))
    w.alice = w.state.add_user(full_name="alice")
    yield w
    w.server.stop()


# --- retries ---------------------------------------------------------------------------------


def test_idempotent_calls_retry_through_500_and_429(world):
    world.server.faults.add("500", "/safe/me", times=2)
    world.server.faults.add("429", "/safe/me")
    before = world.server.requests_seen

    async def main():
        async with world.client() as c:
            return await c.me()

    assert run(main())["user_id"] == world.bot["app_id"]
    assert world.server.requests_seen - before == 4


def test_retries_stop_after_the_limit_with_the_last_error(world):
    world.server.faults.add("429", "/safe/assets", times=10)

    async def main():
        async with world.client(retries=2) as c:
            with pytest.raises(RateLimitedError):
                await c.assets()

    run(main())
    assert len(world.server.faults.fired) == 3


def test_broadcast_is_never_retried_blindly(world):
    world.server.faults.add("500", "/safe/transactions", method="POST", times=5)

    async def main():
        async with world.client() as c:
            with pytest.raises(ServerError):
                await c.broadcast([(unique_object_id("x"), "7777")])

    run(main())
    assert len(world.server.faults.fired) == 1


def test_pin_errors_are_never_retried(world):
    world.server.faults.add("api_error", "/safe/me", code=20119, times=5)

    async def main():
        async with world.client() as c:
            with pytest.raises(PinIncorrectError) as e:
                await c.me()
            return e.value

    err = run(main())
    assert err.code == 20119 and "PIN" in str(err)
    assert len(world.server.faults.fired) == 1


def test_a_foreign_request_id_is_a_failed_call(world):
    world.server.faults.add("wrong_request_id", "/safe/me")
    world.server.faults.add("wrong_request_id", "/safe/transactions", method="POST")

    async def main():
        async with world.client() as c:
            assert (await c.me())["user_id"] == world.bot["app_id"]  # retried, idempotent
            with pytest.raises(RequestIdMismatchError):
                await c.broadcast([(unique_object_id("y"), "7777")])

    run(main())


def test_a_bot_not_on_the_sequencer_is_told_so(world):
    ks = Keystore.from_dict(new_bot(world.state, safe_registered=False))

    async def main():
        async with MixinClient(ks, world.server.url) as c:
            with pytest.raises(NotRegisteredError) as e:
                await c.me()
            return e.value

    assert run(main()).code == 10404


def test_faults_are_deterministic_under_a_seed():
    def fired(seed: int) -> list[bool]:
        plan = FaultPlan(seed)
        plan.add_random("500", 0.3, "/safe/")
        return [plan.take("GET", "/safe/me") is not None for _ in range(50)]

    assert fired(4) == fired(4) and fired(4) != fired(5) and any(fired(4))


# --- the server's transaction checks -----------------------------------------------------------


async def build(c, w, outputs_spec, *, request_id="t-1", extra=b"", asset=ETH):
    """A transaction from the bot's outputs; outputs_spec: [(receiver or ("wd", address, tag), units)]."""
    inputs = [o async for o in c.iter_outputs(asset=asset)]
    outs = []
    for n, (who, units) in enumerate(outputs_spec):
        if isinstance(who, tuple):
            outs.append(kernel.Output(kernel.OUTPUT_WITHDRAWAL_SUBMIT, units, withdrawal=kernel.Withdrawal(who[1], who[2])))
        else:
            [g] = await c.ghost_keys([([who], n, unique_object_id(request_id, str(n)))])
            outs.append(kernel.Output(kernel.OUTPUT_SCRIPT, units, tuple(bytes.fromhex(k) for k in g["keys"]),
                                      bytes.fromhex(g["mask"]), kernel.threshold_script(1)))
    return kernel.Transaction(bytes.fromhex(kernel_asset_id(asset)),
                              tuple(kernel.Input(bytes.fromhex(o.transaction_hash), o.output_index) for o in inputs),
                              tuple(outs), extra=extra)


def rid(name: str) -> str:
    return unique_object_id("test", name)


def test_requests_are_idempotent_by_request_id_and_a_conflict_is_refused(world):
    bot, alice = world.bot["app_id"], world.alice.user_id

    async def main():
        async with world.client() as c:
            tx = await build(c, world, [(alice, to_units("0.4")), (bot, to_units("0.6"))])
            first = await c.create_transaction_requests([(rid("a"), kernel.encode(tx).hex())])
            again = await c.create_transaction_requests([(rid("a"), kernel.encode(tx).hex())])
            other = await build(c, world, [(alice, to_units("0.5")), (bot, to_units("0.5"))])
            with pytest.raises(RequestIdConflictError):
                await c.create_transaction_requests([(rid("a"), kernel.encode(other).hex())])
            signed = kernel.sign(tx, [bytes.fromhex(v) for v in first[0].views],
                                 world.keystore.spend_private_key.reveal())
            b1 = await c.broadcast([(rid("a"), kernel.encode(signed).hex())])
            b2 = await c.broadcast([(rid("a"), kernel.encode(signed).hex())])
            status = await c.transaction(rid("a"))
            by_hash = await c.transaction(tx.hash().hex())
            return first, again, b1, b2, status, by_hash, tx

    first, again, b1, b2, status, by_hash, tx = run(main())
    assert first[0].state == again[0].state == "unspent" and first[0].views == again[0].views
    assert b1[0].state == b2[0].state == status.state == "spent" and b1[0].snapshot_id == b2[0].snapshot_id
    assert status.transaction_hash == tx.hash().hex() == by_hash.transaction_hash
    assert world.state.balance(alice, ETH) == to_units("0.4") and world.state.balance(world.bot["app_id"], ETH) == to_units("0.6")


@pytest.mark.parametrize(
    "case,error,match",
    [
        ("unbalanced", InvalidFieldError, "inputs 100000000 != outputs 90000000"),
        ("keys_not_issued", InvalidFieldError, "not issued"),
        ("bad_signature", InvalidFieldError, "input 0 signature invalid"),
        ("no_fee", FeeError, "20124"),
        ("fee_too_small", FeeError, "20135"),
        ("withdraw_too_small", AmountLimitError, "20127"),
        ("tag_not_allowed", WithdrawalMemoError, "20131"),
        ("not_yours", ForbiddenError, "not yours"),
    ],
)
def test_the_server_refuses_bad_transactions_and_moves_nothing(world, case, error, match):
    bot, alice = world.bot["app_id"], world.alice.user_id
    world.state.deposit(alice, ETH, to_units("1"))
    u = to_units

    async def main():
        async with world.client() as c:
            spec = {
                "unbalanced": [(alice, u("0.4")), (bot, u("0.5"))],
                "keys_not_issued": [(alice, u("1"))],
                "bad_signature": [(alice, u("1"))],
                "no_fee": [(("wd", ETH_ADDR, ""), u("1"))],
                "fee_too_small": [(("wd", ETH_ADDR, ""), u("0.9")), (FEE_USER_ID, u("0.001")), (bot, u("0.099"))],
                "withdraw_too_small": [(("wd", ETH_ADDR, ""), u("0.0001")), (FEE_USER_ID, u("0.002")), (bot, u("0.9979"))],
                "tag_not_allowed": [(("wd", ETH_ADDR, "memo"), u("0.5")), (FEE_USER_ID, u("0.002")), (bot, u("0.498"))],
                "not_yours": [(alice, u("1"))],
            }[case]
            tx = await build(c, world, spec)
            if case == "keys_not_issued":
                o = tx.outputs[0]
                tx = kernel.Transaction(tx.asset, tx.inputs, (kernel.Output(o.type, o.amount, (bytes(range(32)),), o.mask,
                                                                            o.script),))
            if case == "not_yours":
                mine = [x for x in world.state.utxos.values() if x.receivers == (alice,)][0]
                tx = kernel.Transaction(tx.asset, (kernel.Input(bytes.fromhex(mine.transaction_hash), mine.output_index),),
                                        tx.outputs)
            with pytest.raises(error, match=match):
                [r] = await c.create_transaction_requests([(rid(case), kernel.encode(tx).hex())])
                views = [bytes(32)] * len(tx.inputs) if case == "bad_signature" else [bytes.fromhex(v) for v in r.views]
                signed = kernel.sign(tx, views, world.keystore.spend_private_key.reveal())
                await c.broadcast([(rid(case), kernel.encode(signed).hex())])

    run(main())
    assert world.state.balance(bot, ETH) == to_units("1")
    assert all(x.state == "unspent" for x in world.state.utxos.values())


def test_eos_withdrawals_may_carry_a_tag(world):
    # `possible` memo assets accept a tag: the same checks pass, the address rule is the chain's
    world.state.deposit(world.bot["app_id"], EOS, to_units("5"))
    from mixmaker.mixin.payments import Payments
    from mixmaker.store import SqliteStore

    async def main():
        async with world.client() as c:
            return await Payments(c, SqliteStore()).withdraw("eos-1", EOS, "1", "exchange1234", tag="4242")

    assert run(main()).state == "sent"
    assert world.state.balance(world.bot["app_id"], EOS) == to_units("3.9")


def test_the_server_runs_in_the_callers_loop_too():
    async def main():
        server = MixinSimServer(seed=1)
        from mixmaker.sim.mixin.setup import default_assets

        for a in default_assets():
            server.state.add_asset(a)
        ks = Keystore.from_dict(new_bot(server.state))
        await server.serve()
        try:
            async with MixinClient(ks, server.url) as c:
                return [a["symbol"] for a in await c.fetch_assets([BTC, ETH])]
        finally:
            await server.close()

    assert run(main()) == ["BTC", "ETH"]


def test_inputs_stay_locked_until_kernel_finality():
    """With a finality delay a broadcast request is `signed` and its inputs are locked: another
    request spending them gets 10105, and the money moves only at finality."""
    from mixmaker.mixin.errors import LockedByAnotherTransactionError
    from mixmaker.mixin.payments import Payments
    from mixmaker.mixin.utxo import InsufficientOutputsError
    from mixmaker.store import SqliteStore

    w = make_world(seed=22, finality_delay_s=30)
    try:
        bot = w.bot["app_id"]
        w.state.deposit(bot, ETH, to_units("1"))
        alice = w.state.add_user(full_name="alice")

        async def main():
            async with w.client() as c:
                pay = Payments(c, SqliteStore())
                tx = await build(c, w, [(alice.user_id, to_units("1"))], request_id="lock-2")  # built before: same input
                p = await pay.transfer("lock-1", ETH, "0.4", alice.user_id)
                status = await c.transaction(p.request_id)
                with pytest.raises(LockedByAnotherTransactionError):
                    await c.create_transaction_requests([(rid("lock-2"), kernel.encode(tx).hex())])
                with pytest.raises(InsufficientOutputsError):  # the change is not there before finality
                    await pay.transfer("lock-3", ETH, "0.1", alice.user_id)
                w.state.clock.advance(31)
                final = await c.transaction(p.request_id)
                later = await pay.transfer("lock-3", ETH, "0.1", alice.user_id)
                return status, final, later

        status, final, later = run(main())
        assert status.state == "signed" and final.state == "spent" and final.snapshot_id and later.state == "sent"
        w.state.clock.advance(31)
        assert w.state.balance(alice.user_id, ETH) == to_units("0.5") and w.state.balance(bot, ETH) == to_units("0.5")
    finally:
        w.server.stop()


def test_assets_fees_and_deposit_entries(world):
    async def main():
        async with world.client() as c:
            btc = await c.asset(BTC)
            fees = await c.withdrawal_fees(BTC, "bc1qexampleexampleexampleexample")
            first, second = await c.deposit_entry(BTC), await c.deposit_entry(BTC)
            with pytest.raises(ValueError, match="asset_id must be a UUID"):
                await c.asset("BTC")
            return btc, fees, first, second

    btc, fees, first, second = run(main())
    assert btc["symbol"] == "BTC" and btc["kernel_asset_id"] == kernel_asset_id(BTC) and "balance" not in btc
    assert fees == [{"type": "withdrawal_fee", "asset_id": BTC, "amount": "0.0001"}]
    assert first == second and first["members"] == [world.bot["app_id"]] and first["destination"]


def test_the_pin_iterator_strictly_increases_when_the_clock_does_not(monkeypatch):
    import time as _time

    from mixmaker.mixin.pin import Iterator

    monkeypatch.setattr(_time, "time_ns", lambda: 1_700_000_000_000_000_000)
    it = Iterator()
    seen = [it.next() for _ in range(3)]
    assert seen == [1_700_000_000_000_000_000, 1_700_000_000_000_000_001, 1_700_000_000_000_000_002]


def test_api_errors_never_carry_key_material(world):
    bad = dict(world.bot, session_private_key=bytes(range(32)).hex())

    async def main():
        async with MixinClient(Keystore.from_dict(bad), world.server.url) as c:
            try:
                await c.me()
            except Exception as e:  # noqa: BLE001 - the text of any error is what we inspect
                return e

    err = run(main())
    text = f"{err!r} {err} {err.extra}"
    for secret in (bad["session_private_key"], world.bot["spend_private_key"]):
        assert secret not in text
