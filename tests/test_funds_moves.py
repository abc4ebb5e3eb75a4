"""Moves of funds between the Mixin simulator and the exchange simulator through the simulated chain,
driven by the funds layer (mover, confirmation worker, intake seam) over the real clients."""

from __future__ import annotations

import asyncio
import uuid
from fractions import Fraction

import pytest

pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the exchange simulator needs picows")

from funds_world import ACCOUNT, POOL, fast_config, funds_world  # noqa: E402

from mixmaker.funds import accounts as acc  # noqa: E402
from mixmaker.funds import alerts  # noqa: E402
from mixmaker.funds.accounts import Flow  # noqa: E402
from mixmaker.funds.allocation import AllocationState  # noqa: E402
from mixmaker.funds.mover import MoverConfig  # noqa: E402
from mixmaker.funds.moves import (  # noqa: E402
    Direction,
    MoveEvent,
    MoveState,
    MoveTransitionError,
    move_id,
    next_state,
    retry_id,
    split_fee,
)
from mixmaker.funds.outcomes import RetryPolicy  # noqa: E402


def run(coro, timeout: float = 120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_every_state_decides_every_event_and_terminal_states_take_no_progress_back():
    for s in MoveState:
        for e in MoveEvent:
            next_state(s, e)  # decided: a state or None, never a KeyError
    assert next_state(MoveState.PLANNED, MoveEvent.SENT) is MoveState.SENT
    assert next_state(MoveState.SENT, MoveEvent.LATE) is MoveState.STUCK
    assert next_state(MoveState.STUCK, MoveEvent.SEEN) is MoveState.SEEN  # a stuck move goes on
    assert next_state(MoveState.STUCK, MoveEvent.CREDITED) is MoveState.ARRIVED
    assert next_state(MoveState.SEEN, MoveEvent.REVERSED) is None  # never reversed once on chain
    for e in (MoveEvent.REVERSED, MoveEvent.REFUSED, MoveEvent.LATE, MoveEvent.DOUBT):
        assert next_state(MoveState.ARRIVED, e) is None
    for e in (MoveEvent.SENT, MoveEvent.SEEN, MoveEvent.CREDITED, MoveEvent.LATE):
        assert next_state(MoveState.FAILED, e) is None


def test_ids_are_derived_and_fees_split_exactly():
    a = move_id(Direction.TO_EXCHANGE, ACCOUNT, "BTC", ["o2|x|BTC", "o1|x|BTC"])
    assert a == move_id(Direction.TO_EXCHANGE, ACCOUNT, "BTC", ["o1|x|BTC", "o2|x|BTC"])
    assert a != move_id(Direction.TO_MIXIN, ACCOUNT, "BTC", ["o1|x|BTC", "o2|x|BTC"])
    assert retry_id(a, 1) == f"{a}.r1" and retry_id(f"{a}.r1", 2) == f"{a}.r2"
    for total, parts in ((10, [("a", 1), ("b", 1), ("c", 1)]), (7, [("a", 5), ("b", 3)]), (0, [("a", 4)]),
                         (10_000, [("a", 123_456), ("b", 1), ("c", 77_777_777)])):
        shares = split_fee(total, parts)
        assert sum(shares.values()) == total
        units = sum(u for _, u in parts)
        for k, u in parts:
            assert abs(shares[k] - total * u / units) < 1


def test_an_order_goes_to_the_exchange_and_back_with_every_fee_booked_to_it(tmp_path):
    async def go():
        async with funds_world(tmp_path) as w:
            order = str(uuid.uuid4())
            w.user_pays(order, "BTC", "0.05")
            w.user_pays(order, "USDT", "300")
            w.fund_fees("0.1")
            await w.funds.start(w.poll)
            assert w.ledger.owed(acc.BOT_FEES, "ETH") == 10_000_000
            amounts = {"BTC": 5_000_000, "USDT": 30_000_000_000}
            assert await w.funds.mover.to_exchange(order, POOL, amounts) is AllocationState.PENDING

            states: list[AllocationState] = []

            async def poll_alloc():
                states.append(await w.funds.mover.to_exchange(order, POOL, amounts))

            loop = asyncio.get_running_loop()
            end = loop.time() + 30
            while not states or states[-1] is not AllocationState.DONE:
                assert loop.time() < end, [(m.move_id, m.state, m.last_signal) for m in w.funds.moves.all()]
                await w.cycle()
                await poll_alloc()
                await asyncio.sleep(0.05)
            moves = w.funds.moves.all()
            assert {(m.asset, m.state) for m in moves} == {("BTC", MoveState.ARRIVED), ("USDT", MoveState.ARRIVED)}
            events = {m.asset: [e for e, _, _ in w.funds.moves.events(m.move_id)] for m in moves}
            assert events["BTC"] == ["planned", "sent", "seen", "credited"]
            # Mixin's fee: 0.0001 BTC from the order's BTC; USDT's is 0.003 ETH, the bot's (bot:fees)
            claim = w.ledger.holdings_of(acc.user_order(order))
            assert claim == {"BTC": 5_000_000 - 10_000, "USDT": 30_000_000_000}
            assert w.ledger.owed(acc.BOT_FEES, "ETH") == 10_000_000 - 300_000
            assert w.ledger.fees("BTC")[Flow.FEE_NETWORK] == 10_000
            assert w.ledger.fees("ETH")[Flow.FEE_NETWORK] == 300_000
            assert w.ledger.owed(acc.exchange(ACCOUNT), "BTC") == 5_000_000 - 10_000
            for m in moves:
                assert w.ledger.holdings_of(m.transit) == {}
            w.assert_ledger_matches_venues()

            # and back: the exchange takes its withdrawal fee out of the amount
            back = dict(claim)
            while (r := await w.funds.mover.to_mixin(order, POOL, back)) is not AllocationState.DONE:
                assert r is AllocationState.PENDING
                await w.cycle()
                await asyncio.sleep(0.05)
            outs = [m for m in w.funds.moves.all() if m.direction is Direction.TO_MIXIN]
            assert {m.state for m in outs} == {MoveState.ARRIVED}
            assert w.ledger.holdings_of(acc.user_order(order)) == {"BTC": 4_990_000 - 20_000,
                                                                   "USDT": 30_000_000_000 - 100_000_000}
            assert w.ledger.fees("USDT")[Flow.FEE_WITHDRAWAL] == 100_000_000
            assert w.ledger.owed(acc.exchange(ACCOUNT), "BTC") == 0
            w.assert_ledger_matches_venues()
            check = await w.funds.reconcile()
            assert check.ok, check.differences

    run(go())


def test_a_batch_carries_several_orders_and_shares_its_fee_pro_rata(tmp_path):
    async def go():
        config = fast_config(mover=MoverConfig(batch_wait_s=0.3, retry=RetryPolicy(3, 0.2)))
        async with funds_world(tmp_path, config=config) as w:
            orders = [str(uuid.uuid4()) for _ in range(3)]
            for o, amount in zip(orders, ("0.01", "0.02", "0.03"), strict=True):
                w.user_pays(o, "BTC", amount)
            await w.funds.start(w.poll)
            for o, units in zip(orders, (1_000_000, 2_000_000, 3_000_000), strict=True):
                await w.funds.mover.to_exchange(o, POOL, {"BTC": units})
            await w.cycle_until(lambda: not w.funds.requests.unsettled(), "the batch to arrive")
            moves = w.funds.moves.all()
            assert len(moves) == 1 and len(w.funds.moves.parts(w.store, moves[0].move_id)) == 3
            fee = 10_000
            shares = [u - w.ledger.owed(acc.user_order(o), "BTC") for o, u in zip(orders, (1_000_000, 2_000_000, 3_000_000), strict=True)]
            assert sum(shares) == fee and shares == sorted(shares)
            w.assert_ledger_matches_venues()

    run(go())


def test_a_batch_whose_fee_eats_too_much_waits_alerted_and_goes_once_it_is_worth_it(tmp_path):
    async def go():
        config = fast_config(mover=MoverConfig(batch_wait_s=0.1, max_fee_fraction=Fraction(1, 50)))
        async with funds_world(tmp_path, config=config) as w:
            small, big = str(uuid.uuid4()), str(uuid.uuid4())
            w.user_pays(small, "BTC", "0.002")  # a fee of 0.0001 is 5 %: too much alone
            w.user_pays(big, "BTC", "0.01")
            await w.funds.start(w.poll)
            await w.funds.mover.to_exchange(small, POOL, {"BTC": 200_000})
            for _ in range(5):
                await w.cycle()
                await asyncio.sleep(0.05)
            assert w.funds.moves.all() == []
            assert alerts.alerts(w.store, alerts.FundsAlert.FEE_TOO_HIGH)
            await w.funds.mover.to_exchange(big, POOL, {"BTC": 1_000_000})
            await w.cycle_until(lambda: not w.funds.requests.unsettled(), "both to arrive in one move")
            assert len(w.funds.moves.all()) == 1
            w.assert_ledger_matches_venues()

    run(go())


def test_a_refused_transition_raises(tmp_path):
    async def go():
        async with funds_world(tmp_path) as w:
            order = str(uuid.uuid4())
            w.user_pays(order, "BTC", "0.01")
            await w.funds.start(w.poll)
            await w.funds.mover.to_exchange(order, POOL, {"BTC": 1_000_000})
            await w.cycle_until(lambda: not w.funds.requests.unsettled(), "the move to arrive")
            m = w.funds.moves.all()[0]
            with pytest.raises(MoveTransitionError), w.store.transaction() as tx:
                w.funds.moves.fire(tx, m.move_id, MoveEvent.REVERSED, "test")
            assert w.funds.moves.move(m.move_id).state is MoveState.ARRIVED

    run(go())


def test_a_token_move_waits_for_the_fee_float_says_what_it_needs_and_goes_once_funded(tmp_path):
    """USDT (ERC-20) pays Mixin's withdrawal fee in ETH from bot:fees: with the float empty the move
    waits, alerted, and the mover names it (asset, fee needed, what the float has) for /health;
    funded, it goes and the shortage is gone."""

    async def go():
        async with funds_world(tmp_path) as w:
            order = str(uuid.uuid4())
            w.user_pays(order, "USDT", "300")
            await w.funds.start(w.poll)
            await w.funds.mover.to_exchange(order, POOL, {"USDT": 30_000_000_000})
            for _ in range(6):
                await w.cycle()
                await asyncio.sleep(0.05)
            assert w.funds.moves.all() == []
            assert alerts.alerts(w.store, alerts.FundsAlert.FEE_FLOAT_SHORT)
            [short] = w.funds.mover.fee_short
            assert (short.asset, short.account, short.fee_asset, short.needed, short.held) == \
                ("USDT", ACCOUNT, "ETH", 300_000, 0)
            w.fund_fees("0.1")
            await w.cycle_until(lambda: not w.funds.requests.unsettled(), "the USDT move to arrive")
            assert w.funds.mover.fee_short == []
            w.assert_ledger_matches_venues()

    run(go())
