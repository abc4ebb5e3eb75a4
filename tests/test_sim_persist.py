"""The simulators' state survives a dump to JSON and a load into fresh objects: money, orders,
requests in flight and id generators carry on exactly where they were."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from mixin_world import make_world, run

from mixmaker.mixin.amounts import to_units
from mixmaker.mixin.payments import Payments
from mixmaker.sim.exchange import persist as exchange_persist
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig
from mixmaker.sim.mixin import MixinSimServer
from mixmaker.sim.mixin import persist as mixin_persist
from mixmaker.sim.mixin.setup import BTC, ETH, USDT_ERC20, seeded_world
from mixmaker.sim.world import SimWorld, WorldConfig, WorldError
from mixmaker.store import SqliteStore

ETH_ADDR = "0x" + "cd" * 20


def through_json(doc):
    return json.loads(json.dumps(doc))


def test_the_mixin_state_round_trips_with_requests_in_flight_and_the_same_next_ids(tmp_path):
    w = make_world(seed=8, finality_delay_s=30)
    try:
        bot = w.bot["app_id"]
        alice = w.state.add_user(full_name="alice")
        w.state.deposit(bot, ETH, to_units("2"))
        w.state.deposit(alice.user_id, BTC, to_units("1"))
        w.state.user_sends(alice.user_id, bot, BTC, to_units("0.4"), b"memo")
        w.state.attach_chain()
        entry = w.state.deposit_entry(bot, ETH)
        w.state.chain_deposit(network="ETH", symbol="USDT", destination=entry["destination"], tag="", amount=to_units("7"),
                              deposit_hash="0xpending", confirmations=1, required=3)

        async def pay():
            async with w.client() as c:
                return await Payments(c, SqliteStore(tmp_path / "p.db")).withdraw("w-1", ETH, "0.5", ETH_ADDR)

        run(pay())  # signed, waiting 30 s for finality, then held for the chain
        doc = through_json(mixin_persist.dump(w.state))
        restored = mixin_persist.load(seeded_world(8, finality_delay_s=30), doc)
        assert through_json(mixin_persist.dump(restored)) == doc
        for s in (w.state, restored):
            s.clock.advance(31)
        assert restored.balance(bot, ETH) == w.state.balance(bot, ETH) == to_units("2") - to_units("0.5") - to_units("0.002")
        assert [x["request_id"] for x in restored.chain_withdrawals()] == [x["request_id"] for x in w.state.chain_withdrawals()]
        pending = [d.to_json(w.state) for d in w.state.pending_deposits(bot)]
        assert [d.to_json(restored) for d in restored.pending_deposits(bot)] == pending and pending
        assert restored.add_user().user_id == w.state.add_user().user_id  # the id generator carries on
        assert [x.snapshot_id for x in restored.snapshots] == [x.snapshot_id for x in w.state.snapshots]
        # The restored state serves the same bot with the same keys.
        server = MixinSimServer(restored).start()
        try:
            async def me():
                from mixmaker.mixin import MixinClient

                async with MixinClient(w.keystore, server.url) as c:
                    return (await c.me())["user_id"], sum(o.units for o in await c.outputs(asset=BTC))

            assert run(me()) == (bot, to_units("0.4"))
        finally:
            server.stop()
    finally:
        w.server.stop()


def test_the_exchange_state_round_trips_and_restored_orders_still_trade():
    async def go():
        def sim():
            s = ExchangeSim(SimConfig(seed=2, publish_interval=0.05, withdraw_fees={"BTC": "0.0002"}))
            s.add_account("mm", "mm-key", "mm-secret")
            s.add_account("taker", "tk-key", "tk-secret")
            return s

        a = sim()
        v = a.venue
        v.engine.accounts.credit("mm", "USDT", Decimal("10000"))
        v.engine.accounts.credit("mm", "BTC", Decimal("1"))
        v.engine.accounts.credit("taker", "BTC", Decimal("1"))
        v.engine.accounts.credit("taker", "USDT", Decimal("100000"))
        v.new_order("mm", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "50000",
                           "quantity": "0.1", "newClientOrderId": "bid-1"})
        v.new_order("mm", {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "price": "70000",
                           "quantity": "0.2", "newClientOrderId": "ask-1"})
        v.new_order("taker", {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "IOC", "price": "50000",
                              "quantity": "0.04"})
        v.deposit("mm", "USDT", "12.5")
        v.capital.attach_chain()
        v.withdraw("mm", {"coin": "BTC", "amount": "0.3", "address": "bc1qelsewhere00000000000000000", "withdrawOrderId": "w1"})
        address = v.deposit_address("mm", {"coin": "BTC"})["address"]
        doc = through_json(exchange_persist.dump(v))

        b = sim()
        exchange_persist.load(b.venue, doc)
        again = through_json(exchange_persist.dump(b.venue))
        assert {k: again[k] for k in again if k != "update_ids"} == {k: doc[k] for k in doc if k != "update_ids"}
        assert again["update_ids"]["BTCUSDT"] > doc["update_ids"]["BTCUSDT"]  # the book's ids never go back
        for account in ("mm", "taker"):
            assert b.venue.account_info(account)["balances"] == v.account_info(account)["balances"]
            assert b.venue.open_orders(account, {}) == v.open_orders(account, {})
            assert b.venue.my_trades(account, {"symbol": "BTCUSDT"}) == v.my_trades(account, {"symbol": "BTCUSDT"})
        assert b.venue.deposit_address("mm", {"coin": "BTC"})["address"] == address
        assert b.venue.capital.chain_withdrawals() == v.capital.chain_withdrawals()
        # The restored bid is on the book ahead of everyone and trades; ids carry on.
        assert b.book("BTCUSDT")[1][0] == (Decimal("50000"), Decimal("0.06"))
        b.venue.new_order("taker", {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "IOC",
                                    "price": "50000", "quantity": "0.06"})
        trades = b.venue.my_trades("mm", {"symbol": "BTCUSDT"})
        assert [t["qty"] for t in trades] == ["0.04000000", "0.06000000"] and trades[1]["id"] == trades[0]["id"] + 1
        assert b.venue.query_order("mm", {"symbol": "BTCUSDT", "origClientOrderId": "bid-1"})["status"] == "FILLED"
        b.venue.cancel_order("mm", {"symbol": "BTCUSDT", "origClientOrderId": "ask-1"})
        assert b.balance("mm", "BTC")[1] == 0 and b.balance("mm", "USDT")[1] == 0  # nothing stays locked
        with pytest.raises(ValueError):
            exchange_persist.load(b.venue, doc)  # never into a venue that already has orders

    asyncio.run(go())


def test_a_state_folder_with_an_unreadable_state_file_is_refused(tmp_path):
    (tmp_path / "state.json").write_text('{"format": 1, "mix')

    async def go():
        with pytest.raises(WorldError, match="not a readable state file"):
            await SimWorld(WorldConfig(state_dir=tmp_path, feed="none")).start()

    asyncio.run(go())
    assert (tmp_path / "state.json").read_text() == '{"format": 1, "mix'  # left as it was


def test_a_world_started_again_in_process_finds_its_accounts(tmp_path):
    async def go():
        async with SimWorld(WorldConfig(state_dir=tmp_path, feed="none", balances={"USDT": Decimal("5")})) as w:
            bot = w.credentials["mixin"]["keystore"]["app_id"]
            w.mixin_state.deposit(bot, USDT_ERC20, to_units("3"))
            key = w.credentials["exchange"]["api_key"]
        async with SimWorld(WorldConfig(state_dir=tmp_path, feed="none", balances={"USDT": Decimal("5")})) as w:
            assert w.starts == 2 and w.credentials["exchange"]["api_key"] == key
            assert w.mixin_state.balance(bot, USDT_ERC20) == to_units("3")
            assert w.exchange.balance("mm", "USDT") == (Decimal("5"), Decimal(0))  # first balances credited once

    asyncio.run(go())


def test_a_world_whose_chain_fails_says_so(tmp_path, monkeypatch):
    async def go():
        async with SimWorld(WorldConfig(state_dir=tmp_path, feed="none")) as w:
            async def broken():
                raise RuntimeError("boom")

            monkeypatch.setattr(w.chain, "step", broken)
            reason = await asyncio.wait_for(w.crashed, 10)
            assert "chain failed" in reason and "boom" in reason

    asyncio.run(go())
