"""Issue 16 end to end, in one process over the real wire protocols: the world of `mixmaker sim all`
(the Mixin simulator, the exchange simulator with a moving market, the chain between them) and
the engine (intake, orders, pools, payouts, and the funds layer moving money through the chain).

Users pay by memo; the mover sends their funds to the exchange; they arrive; shares are minted;
the pools trade; users stop; the funds come back through the chain; users are paid. At the end,
for every asset, payments + trading result = payouts + refunds + fees + the bot's share + what is
still held, to the unit, and the ledger's wallet and exchange account equal what the simulators
hold."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the exchange simulator needs picows")

from funds_checks import check_books, venue_holdings  # noqa: E402
from funds_engine import Endpoints, Engine  # noqa: E402
from funds_flow import People  # noqa: E402

from mixmaker.funds.moves import Direction, MoveState  # noqa: E402
from mixmaker.sim.chain import ChainConfig  # noqa: E402
from mixmaker.sim.world import SimWorld, WorldConfig  # noqa: E402
from mixmaker.users.orders import OrderState  # noqa: E402


async def cycle_until(engine: Engine, check, what: str, timeout: float = 90) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}: {dict(engine.counts())} moves "
                                 f"{[(m.move_id, m.state.value, m.last_signal) for m in engine.funds.moves.in_flight()]}")
        await engine.cycle()
        await asyncio.sleep(0.05)


def test_users_pay_the_funds_travel_by_chain_the_pools_trade_and_every_unit_is_accounted_for(tmp_path):
    async def go() -> None:
        world = SimWorld(WorldConfig(tmp_path / "sims", seed=16, symbols=("BTCUSDT",), persist_interval_s=1.0,
                                     chain=ChainConfig(seed=16, send_delay_s=0.2, block_time_s=0.1, confirmations=2,
                                                       poll_interval_s=0.05)))
        await world.start()
        engine = None
        try:
            sims = world.describe()
            people = await People.new(sims)
            engine = Engine(tmp_path / "mixmaker.db", Endpoints.from_sims(sims), fee_payers=frozenset({people.operator}))
            await engine.start()
            await people.standard_flow_payments()
            o2, o3, o4 = (people.order(n) for n in ("o2", "o3", "o4"))
            await cycle_until(engine, lambda: all(engine.orders.order(o).state is OrderState.ACTIVE for o in (o2, o3, o4))
                              if all(engine.orders.get(engine.store, o) for o in (o2, o3, o4)) else False,
                              "every order active")
            # the funds went by chain, in moves that batched the orders of one asset
            ins = [m for m in engine.funds.moves.all() if m.direction is Direction.TO_EXCHANGE]
            assert ins and all(m.state is MoveState.ARRIVED and m.tx_hash for m in ins)

            def fills() -> int:
                return sum(1 for o in (o2, o4) for t in engine.ledger.transactions(ref=engine.orders.order(o).pool_id)
                           if t.cause == "fill")

            await cycle_until(engine, lambda: fills() >= 3, "the pools to trade", timeout=120)
            await people.standard_flow_stops()
            await cycle_until(engine, lambda: engine.settled(3), "every order settled and paid", timeout=120)
            outs = [m for m in engine.funds.moves.all() if m.direction is Direction.TO_MIXIN]
            assert outs and all(m.state is MoveState.ARRIVED for m in outs)
            assert await engine.runtime.stop()
            await engine.cycle()
            check = await engine.funds.reconcile()
            assert check.ok, check.differences
            paid, received, sends = await people.observed(sims["mixin"]["keystore"])
            assert set(sends.values()) == {1}  # every refund and payout sent once
            wallet, exchange, ex_withdrawals = await venue_holdings(sims)
            await engine.stop()
            engine = None
            figures = check_books(str(tmp_path / "mixmaker.db"), sims, wallet, exchange, paid_in=paid,
                                  received=received, orders_expected=3,
                                  mixin_withdrawals=sum(1 for k in sends if k[0] == "withdrawal"),
                                  exchange_withdrawals=ex_withdrawals)
            assert figures["BTC"]["fees"] > 0 and figures["USDT"]["fees"] > 0 and figures["ETH"]["fees"] > 0
        finally:
            if engine is not None:
                await engine.stop()
            await world.stop()

    asyncio.run(asyncio.wait_for(go(), 400))
