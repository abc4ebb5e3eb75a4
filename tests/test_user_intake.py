"""Snapshot intake, user orders, refunds and payouts against the Mixin simulator: simulated users
pay the bot by memo; the bot refunds with a reason, funds orders in parts, times out, stops, adds,
keeps dust and unknown money aside, and the ledger balances after every step."""

from __future__ import annotations

import time

import aiohttp
import pytest
from mixin_world import run
from users_catalog import POOL_TIGHT, catalog
from users_world import Clock, bal, create_text, new_layer, oid, pay, two_payers

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import Flow
from mixmaker.mixin.amounts import to_units
from mixmaker.sim.mixin.setup import BTC, ETH, USDT_ERC20
from mixmaker.users import memo as m
from mixmaker.users.alerts import alerts
from mixmaker.users.orders import OrderState
from mixmaker.users.payouts import PayoutState
from mixmaker.users.statement import statement

SEC = 1_000_000_000


@pytest.fixture
def world():
    w = two_payers(seed=21)
    yield w
    w.server.stop()


def check_books(layer, w) -> None:
    """The ledger balances, and what the bot's Mixin wallet really holds is what the ledger says
    is in the wallet plus what the fake allocator 'moved' (it moves nothing on Mixin)."""
    assert layer.ledger.verify() == []
    for symbol, asset_id in (("BTC", BTC), ("USDT", USDT_ERC20)):
        held = sum(u for (a, s), u in layer.ledger.balances().items()
                   if s == symbol and a.kind in (acc.AccountKind.WALLET, acc.AccountKind.EXCHANGE))
        assert w.state.balance(w.bot["app_id"], asset_id) == held, symbol


def test_a_bad_memo_is_refunded_to_the_payer_with_its_reason(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")
    before = bal(world, world.alice, BTC)
    snap = pay(world, world.alice, BTC, "0.01", b"please make me rich")
    run(layer.cycle(2))
    rec = layer.intake.record(snap.snapshot_id)
    assert rec["class"] == "user_payment" and rec["outcome"] == "refund" and rec["reason"] == "bad_memo"
    assert rec["detail"].startswith("not_base64url")
    assert bal(world, world.alice, BTC) == before
    back = [s for s in world.state.snapshots if s.user_id == world.alice.user_id and s.amount > 0 and s.opponent_id]
    assert [(s.amount, s.memo, s.opponent_id) for s in back] == [
        (to_units("0.01"), b"mixmaker refund: bad_memo", world.bot["app_id"])]
    [p] = layer.outbox.all()
    assert p.state is PayoutState.SENT and p.payout_id == f"refund:{snap.snapshot_id}"
    flows = layer.ledger.flows("BTC")
    assert flows[(Flow.PAYMENT, "BTC")] == to_units("0.01") == -flows[(Flow.REFUND, "BTC")]
    assert layer.ledger.owed(acc.refund(snap.snapshot_id), "BTC") == 0
    check_books(layer, world)


def test_an_order_funded_in_two_payments_becomes_active_and_pays_out_on_stop(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")
    o = oid()
    memo = create_text(o, base=to_units("0.5"), quote=to_units("1000"))
    pay(world, world.alice, BTC, "0.5", memo)
    run(layer.cycle(2))
    assert layer.orders.order(o).state is OrderState.AWAITING_FUNDS
    pay(world, world.alice, USDT_ERC20, "1000", memo)
    run(layer.cycle(2))
    assert layer.orders.order(o).state is OrderState.ACTIVE
    assert layer.ledger.holdings_of(acc.pool(POOL_TIGHT)) == {"BTC": to_units("0.5"), "USDT": to_units("1000")}
    btc, usdt = bal(world, world.alice, BTC), bal(world, world.alice, USDT_ERC20)
    pay(world, world.alice, BTC, "0.0001", m.to_extra(m.StopMemo(o)))
    run(layer.cycle(3))
    assert layer.orders.order(o).state is OrderState.SETTLED
    assert bal(world, world.alice, BTC) == btc + to_units("0.5")  # the stop's own payment came back too
    assert bal(world, world.alice, BTC) == to_units("10")
    assert bal(world, world.alice, USDT_ERC20) == usdt + to_units("1000")
    assert [e[0] for e in layer.orders.events(o)] == [
        "created", "payment", "payment", "funding_complete", "allocate", "allocated", "minted", "stop", "released",
        "burned", "returned", "paid"]
    st = statement(layer.ledger, layer.orders, layer.outbox, o)
    assert st.paid == {"BTC": to_units("0.5001"), "USDT": to_units("1000")}
    assert st.payouts == {"BTC": to_units("0.5001"), "USDT": to_units("1000")}
    assert st.owed_now == {} and st.problems() == []
    check_books(layer, world)


def test_an_order_not_funded_in_time_is_returned_as_it_arrived(world, tmp_path):
    clock = Clock()
    layer = new_layer(world, tmp_path / "u.db", catalog=catalog(timeout_s=60), clock=clock)
    o = oid()
    memo = create_text(o, base=to_units("0.5"))
    pay(world, world.alice, BTC, "0.2", memo)
    pay(world, world.alice, BTC, "0.1", memo)
    clock.t = time.time_ns()
    run(layer.cycle(2))
    assert layer.orders.order(o).state is OrderState.AWAITING_FUNDS
    clock.t = time.time_ns() + 61 * SEC
    run(layer.cycle(2))
    assert layer.orders.order(o).state is OrderState.REFUNDED
    assert bal(world, world.alice, BTC) == to_units("10")
    [p] = layer.outbox.of_order(o)
    assert (p.reason, p.units, p.state) == ("timeout", to_units("0.3"), PayoutState.SENT)
    # a late part after the refund is refunded on its own
    late = pay(world, world.alice, BTC, "0.2", memo)
    run(layer.cycle(2))
    assert layer.intake.record(late.snapshot_id)["reason"] == "order_closed"
    assert bal(world, world.alice, BTC) == to_units("10")
    check_books(layer, world)


def test_a_stop_before_funding_returns_what_arrived(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")
    o = oid()
    pay(world, world.alice, USDT_ERC20, "500", create_text(o, quote=to_units("2000")))
    pay(world, world.alice, USDT_ERC20, "0.5", m.to_extra(m.StopMemo(o)))
    run(layer.cycle(2))
    assert layer.orders.order(o).state is OrderState.REFUNDED
    assert bal(world, world.alice, USDT_ERC20) == to_units("100000")
    assert [(p.asset, p.units, p.reason) for p in layer.outbox.of_order(o)] == [("USDT", to_units("500.5"), "stopped")]
    assert layer.allocator.calls == []  # nothing ever went to the exchange
    check_books(layer, world)


def test_add_tops_up_an_active_order_in_a_second_tranche(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")
    o = oid()
    pay(world, world.alice, BTC, "1", create_text(o, base=to_units("1")))
    run(layer.cycle(2))
    assert layer.orders.order(o).state is OrderState.ACTIVE
    pay(world, world.alice, USDT_ERC20, "300", m.to_extra(m.AddMemo(o)))
    run(layer.cycle(2))
    order = layer.orders.order(o)
    assert order.state is OrderState.ACTIVE and order.tranche == 1
    assert [k for _, k in layer.allocator.calls] == [o, f"{o}.1"]
    assert layer.ledger.holdings_of(acc.pool(POOL_TIGHT)) == {"BTC": to_units("1"), "USDT": to_units("300")}
    # an add below the minimum is refunded, the order untouched
    small = pay(world, world.alice, USDT_ERC20, "1", m.to_extra(m.AddMemo(o)))
    run(layer.cycle(1))
    assert layer.intake.record(small.snapshot_id)["reason"] == "below_minimum"
    pay(world, world.alice, BTC, "0.0001", m.to_extra(m.StopMemo(o)))
    run(layer.cycle(3))
    assert layer.orders.order(o).state is OrderState.SETTLED
    assert bal(world, world.alice, BTC) == to_units("10") and bal(world, world.alice, USDT_ERC20) == to_units("100000")
    check_books(layer, world)


def test_other_payers_cannot_add_to_stop_or_reuse_an_order(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")
    o = oid()
    memo = create_text(o, base=to_units("0.5"))
    pay(world, world.alice, BTC, "0.5", memo)
    s_add = pay(world, world.bob, BTC, "0.1", m.to_extra(m.AddMemo(o)))
    s_stop = pay(world, world.bob, BTC, "0.001", m.to_extra(m.StopMemo(o)))
    s_create = pay(world, world.bob, BTC, "0.5", memo)
    s_unknown = pay(world, world.bob, BTC, "0.01", m.to_extra(m.StopMemo(oid())))
    run(layer.cycle(3))
    assert [layer.intake.record(s.snapshot_id)["reason"] for s in (s_add, s_stop, s_create, s_unknown)] == [
        "not_your_order", "not_your_order", "not_your_order", "unknown_order"]
    assert layer.orders.order(o).state is OrderState.ACTIVE and layer.orders.order(o).payer == world.alice.user_id
    assert bal(world, world.bob, BTC) == to_units("10")
    check_books(layer, world)


@pytest.mark.parametrize(("amount", "expect", "reason"), [
    ("0.0005", "0.0005", "below_minimum"),  # the memo expects less than the minimum
    ("3", "3", "above_cap"),  # more than one user may have in live orders
])
def test_minimum_and_cap_are_refunded(world, tmp_path, amount, expect, reason):
    layer = new_layer(world, tmp_path / "u.db")
    s = pay(world, world.alice, BTC, amount, create_text(oid(), base=to_units(expect)))
    run(layer.cycle(2))
    assert layer.intake.record(s.snapshot_id)["reason"] == reason
    assert bal(world, world.alice, BTC) == to_units("10") and layer.orders.all() == []
    check_books(layer, world)


def test_the_cap_counts_all_live_orders_of_the_payer(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")
    pay(world, world.alice, BTC, "1.5", create_text(oid(), base=to_units("1.5")))
    s2 = pay(world, world.alice, BTC, "1", create_text(oid(), base=to_units("1")))
    s3 = pay(world, world.bob, BTC, "1", create_text(oid(), base=to_units("1")))  # bob has his own cap
    run(layer.cycle(2))
    assert layer.intake.record(s2.snapshot_id)["reason"] == "above_cap"
    assert layer.intake.record(s3.snapshot_id)["outcome"] == "credited"
    check_books(layer, world)


def test_unknown_market_preset_asset_and_paused_pool_are_refunded(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db", catalog=catalog(paused=("binance:BTC/USDT:wide",)))
    cases = [
        (BTC, "0.01", create_text(oid(), base=1_000_000, market="okx:BTC/USDT"), "unknown_market"),
        (BTC, "0.01", create_text(oid(), base=1_000_000, preset="yolo"), "unknown_preset"),
        (ETH, "0.5", create_text(oid(), base=1_000_000), "asset_not_in_market"),
        (BTC, "0.01", create_text(oid(), base=1_000_000, preset="wide"), "pool_paused"),
    ]
    snaps = [(pay(world, world.alice, a, amount, extra), reason) for a, amount, extra, reason in cases]
    run(layer.cycle(2))
    assert [layer.intake.record(s.snapshot_id)["reason"] for s, _ in snaps] == [r for _, r in snaps]
    assert bal(world, world.alice, BTC) == to_units("10") and bal(world, world.alice, ETH) == to_units("10")
    # the asset the catalog does not know is kept under its Mixin id, refunded in full
    assert layer.ledger.flows(ETH)[(Flow.REFUND, ETH)] == -to_units("0.5")
    assert layer.ledger.verify() == []


def test_dust_is_kept_in_unclaimed_and_reported_not_sent(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")
    s = pay(world, world.alice, BTC, "0.000005", b"oops")  # below the 0.00001 BTC dust threshold
    run(layer.cycle(2))
    [p] = layer.outbox.all()
    assert p.state is PayoutState.DUST and p.units == 500
    assert layer.ledger.owed(acc.unclaimed("dust"), "BTC") == 500
    assert layer.ledger.owed(acc.refund(s.snapshot_id), "BTC") == 0
    assert bal(world, world.alice, BTC) == to_units("10") - 500
    check_books(layer, world)


def test_unknown_incoming_money_goes_to_unclaimed_with_an_alert(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")
    dep = world.state.deposit(world.bot["app_id"], BTC, to_units("0.7"))
    out = world.state.user_sends(world.bot["app_id"], world.bob.user_id, BTC, to_units("0.1"), b"")  # not ours
    run(layer.cycle(1))
    assert layer.intake.record(dep.snapshot_id)["class"] == "unknown"
    assert layer.ledger.owed(acc.unclaimed("unknown"), "BTC") == to_units("0.7")
    bot_out = next(s for s in world.state.snapshots if s.user_id == world.bot["app_id"] and s.amount < 0)
    assert layer.intake.record(bot_out.snapshot_id)["class"] == "our_outgoing"
    kinds = [(k, s) for k, s, _ in alerts(layer.store)]
    assert ("unknown_deposit", dep.snapshot_id) in kinds and ("unexpected_outgoing", bot_out.snapshot_id) in kinds
    assert out.amount == to_units("0.1")
    assert layer.ledger.verify() == []


def test_a_payment_through_the_simulators_http_transfer_endpoint(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")
    o = oid()

    async def send():
        async with aiohttp.ClientSession() as s:
            body = {"from": world.alice.user_id, "to": world.bot["app_id"], "asset_id": BTC, "amount": "0.25",
                    "memo_hex": create_text(o, base=to_units("0.25")).hex()}
            async with s.post(world.server.url + "/_sim/transfers", json=body) as r:
                return await r.json()

    assert "data" in run(send())
    run(layer.cycle(2))
    assert layer.orders.order(o).state is OrderState.ACTIVE


def test_each_snapshot_is_credited_once_across_rebuilds_and_rescans(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")
    o = oid()
    for _ in range(3):
        pay(world, world.alice, USDT_ERC20, "100", create_text(o, quote=to_units("1000")))
    run(layer.poll())
    layer.close()
    again = new_layer(world, tmp_path / "u.db")
    # a re-scan from the start finds the same snapshots: nothing is credited twice
    again.store.query("SELECT 1")
    with again.store.transaction() as tx:
        tx.execute("UPDATE mixin_snapshot_cursors SET offset_ns = 0")
        tx.execute("DELETE FROM mixin_snapshots_seen")
    run(again.poll())
    assert again.orders.paid(again.store, o) == {"USDT": to_units("300")}
    assert again.ledger.owed(acc.user_order(o), "USDT") == to_units("300")
    assert again.ledger.verify() == []


class CustodyReturns:
    """An OwnDeposits that knows one arrival: a transfer from the exchange's custody user."""

    def __init__(self, custody: str) -> None:
        self.custody, self.booked = custody, []

    def matches(self, tx, s) -> bool:
        return s.opponent_id == self.custody and s.memo == b"move-back:m1"

    def book(self, tx, s) -> None:
        self.booked.append(s.snapshot_id)


def test_our_own_funds_coming_back_are_asked_about_before_any_payment(world, tmp_path):
    custody = world.state.add_user(full_name="exchange custody")
    world.state.deposit(custody.user_id, BTC, to_units("1"))
    layer = new_layer(world, tmp_path / "u.db")
    own = CustodyReturns(custody.user_id)
    layer.intake.own_deposits = own
    back = world.state.user_sends(custody.user_id, world.bot["app_id"], BTC, to_units("0.4"), b"move-back:m1")
    other = world.state.user_sends(custody.user_id, world.bot["app_id"], BTC, to_units("0.1"), b"hello")
    run(layer.poll())
    assert layer.intake.record(back.snapshot_id)["class"] == "own_deposit" and own.booked == [back.snapshot_id]
    assert layer.intake.record(other.snapshot_id)["reason"] == "bad_memo"  # anything else is a payment as usual
