"""The user layer probed as an attacker and an unlucky operator would: memos at the limits of
their fields, odd payers, a wallet short of funds, crashes between paying and booking. Each test
is named for the hole it closes (or the attack it shows holds)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from mixin_world import make_world, run
from users_catalog import assets
from users_world import create_text, new_layer

from mixmaker.funds import accounts as acc
from mixmaker.mixin.amounts import to_units
from mixmaker.sim.mixin.setup import BTC, ETH, USDT_ERC20
from mixmaker.strategy.config import PMMConfig
from mixmaker.users.catalog import Catalog, Limits, MarketSpec, Preset


@pytest.fixture
def world():
    w = make_world(seed=57)
    w.alice = w.state.add_user(full_name="alice")
    w.bob = w.state.add_user(full_name="bob")
    for u in (w.alice, w.bob):
        w.state.deposit(u.user_id, BTC, to_units("10"))
        w.state.deposit(u.user_id, USDT_ERC20, to_units("100000"))
        w.state.deposit(u.user_id, ETH, to_units("10"))
    yield w
    w.server.stop()


def pay(w, who, asset, amount: str, extra: bytes):
    return w.state.user_sends(who.user_id, w.bot["app_id"], asset, to_units(amount), extra)


def bal(w, who, asset) -> int:
    return w.state.balance(who.user_id, asset)


def oid() -> str:
    return str(uuid.uuid4())


def uncapped_catalog() -> Catalog:
    """No limits at all: nothing but the code itself stands between a memo and the store."""
    pmm = PMMConfig(bid_spread=Decimal("0.1"), ask_spread=Decimal("0.1"), order_amount=Decimal("0.001"))
    return Catalog(assets(), [MarketSpec("binance", "BTC/USDT", "BTC", "USDT", 2, 5)], [Preset("tight", pmm)],
                   Limits())


def test_a_memo_expecting_more_than_a_bigint_is_refunded_not_a_halt_of_intake(world, tmp_path):
    # u64 amounts past 2**63 raised OverflowError inside the page's transaction: intake stopped
    # for every user, at every poll, on one crafted memo.
    layer = new_layer(world, tmp_path / "u.db", catalog=uncapped_catalog())
    huge = pay(world, world.alice, BTC, "1", create_text(oid(), base=2**64 - 1))
    edge = pay(world, world.alice, BTC, "1", create_text(oid(), quote=2**63))
    after = pay(world, world.bob, BTC, "0.5", create_text(o := oid(), base=to_units("0.5")))
    run(layer.cycle(2))
    for s in (huge, edge):
        rec = layer.intake.record(s.snapshot_id)
        assert (rec["outcome"], rec["reason"]) == ("refund", "above_cap"), rec
    assert layer.intake.record(after.snapshot_id)["outcome"] == "credited"
    assert layer.orders.order(o).expect_base == to_units("0.5")
    assert bal(world, world.alice, BTC) == to_units("10")
    assert layer.ledger.verify() == []
    assert layer.ledger.owed(acc.pool("binance:BTC/USDT:tight"), "BTC") == to_units("0.5")
