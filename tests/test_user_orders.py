"""The user-order state machine (every pair decided, once), and the lifecycle worker across
allocator and pool delays, failures, and a crash between any two of its steps."""

from __future__ import annotations

import uuid

import pytest
from mixin_world import make_world, run
from users_world import create_text, new_layer

from mixmaker.funds import accounts as acc
from mixmaker.mixin.amounts import to_units
from mixmaker.sim.mixin.setup import BTC, USDT_ERC20
from mixmaker.users import memo as m
from mixmaker.users import orders as uo
from mixmaker.users.alerts import alerts
from mixmaker.users.errors import IllegalTransitionError
from mixmaker.users.orders import OrderEvent, OrderState, decide
from mixmaker.users.payouts import PayoutState
from mixmaker.users.statement import statement

S, E = OrderState, OrderEvent


def test_every_state_event_pair_is_decided_in_the_one_grid():
    pairs = [(s, e) for s in OrderState for e in OrderEvent]
    assert len(uo._TABLE) == len(pairs) == 11 * 15
    for s, e in pairs:
        out = decide(s, e)
        assert out is None or isinstance(out, OrderState)
    # terminal states accept nothing
    for s in (S.SETTLED, S.REFUNDED, S.FAILED):
        assert all(decide(s, e) is None for e in OrderEvent)
    # the happy path, and the two ways back before the funds are put to work
    path = [(S.AWAITING_FUNDS, E.FUNDING_COMPLETE, S.FUNDED), (S.FUNDED, E.ALLOCATE, S.ALLOCATING),
            (S.ALLOCATING, E.MINTED, S.ACTIVE), (S.ACTIVE, E.STOP, S.STOPPING), (S.STOPPING, E.BURNED, S.SETTLING),
            (S.SETTLING, E.RETURNED, S.PAYING), (S.PAYING, E.PAID, S.SETTLED),
            (S.AWAITING_FUNDS, E.TIMEOUT, S.REFUNDING), (S.AWAITING_FUNDS, E.STOP, S.REFUNDING),
            (S.FUNDED, E.STOP, S.REFUNDING), (S.REFUNDING, E.REFUND_SENT, S.REFUNDED),
            (S.ALLOCATING, E.STOP, S.ALLOCATING), (S.ACTIVE, E.ALLOCATE, S.ALLOCATING),
            (S.ALLOCATING, E.ALLOCATION_FAILED, S.STOPPING), (S.SETTLING, E.RETURN_FAILED, S.FAILED)]
    for s, e, nxt in path:
        assert decide(s, e) is nxt, (s, e)
    # payments are taken until the order is stopping; a stop only once
    assert [s for s in OrderState if decide(s, E.PAYMENT) is not None] == [
        S.AWAITING_FUNDS, S.FUNDED, S.ALLOCATING, S.ACTIVE]
    assert decide(S.STOPPING, E.STOP) is None and decide(S.FUNDED, E.TIMEOUT) is None


def test_a_grid_missing_a_decision_fails_loudly():
    short = "\n".join(line for line in uo._GRID.strip().splitlines() if not line.startswith("PAYING"))
    with pytest.raises(AssertionError, match="does not decide"):
        uo._parse_grid(short)


@pytest.fixture
def world():
    w = make_world(seed=33)
    w.alice = w.state.add_user(full_name="alice")
    w.state.deposit(w.alice.user_id, BTC, to_units("5"))
    w.state.deposit(w.alice.user_id, USDT_ERC20, to_units("50000"))
    yield w
    w.server.stop()


def pay(w, asset, amount, extra):
    return w.state.user_sends(w.alice.user_id, w.bot["app_id"], asset, to_units(amount), extra)


def sent_to_alice(w) -> list[tuple[str, int]]:
    return sorted((s.request_id, s.amount) for s in w.state.snapshots
                  if s.user_id == w.alice.user_id and s.opponent_id == w.bot["app_id"] and s.amount > 0)


def test_an_illegal_event_is_refused_durably_nothing_written(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")
    o = str(uuid.uuid4())
    pay(world, BTC, "0.5", create_text(o, base=to_units("1")))
    run(layer.poll())
    with pytest.raises(IllegalTransitionError, match="does not accept paid"):
        with layer.store.transaction() as tx:
            layer.orders.fire(tx, o, E.PAID, "x")
    assert layer.orders.order(o).state is S.AWAITING_FUNDS and len(layer.orders.events(o)) == 2
    with layer.store.transaction() as tx:
        assert not layer.orders.fire(tx, o, E.PAYMENT, layer.orders.payments(o)[0][0]).changed  # same cause again


def test_delays_and_a_pool_without_a_mid_only_postpone(world, tmp_path):
    o = str(uuid.uuid4())
    layer = new_layer(world, tmp_path / "u.db", allocator_kw={"pending": {o: 3}},
                      pools_kw={"not_ready": {"binance:BTC/USDT:tight"}, "hold": {o: 2}})
    pay(world, BTC, "1", create_text(o, base=to_units("1")))
    run(layer.cycle(5))
    assert layer.orders.order(o).state is S.ALLOCATING  # arrived, but no mid to mint at
    assert [e[0] for e in layer.orders.events(o)][-1] == "allocated"
    layer.pools.not_ready.clear()
    run(layer.cycle(1))
    assert layer.orders.order(o).state is S.ACTIVE
    pay(world, BTC, "0.0001", m.to_extra(m.StopMemo(o)))
    run(layer.cycle(2))
    assert layer.orders.order(o).state is S.STOPPING  # the pool has not freed its part yet
    run(layer.cycle(3))
    assert layer.orders.order(o).state is S.SETTLED
    assert world.state.balance(world.alice.user_id, BTC) == to_units("5")


def test_a_failed_allocation_stops_the_order_and_returns_its_funds(world, tmp_path):
    o = str(uuid.uuid4())
    layer = new_layer(world, tmp_path / "u.db", allocator_kw={"failing": {o}})
    pay(world, USDT_ERC20, "2000", create_text(o, quote=to_units("2000")))
    run(layer.cycle(4))
    assert layer.orders.order(o).state is S.SETTLED
    assert [e[0] for e in layer.orders.events(o)][-6:] == [
        "allocate", "allocation_failed", "released", "burned", "returned", "paid"]
    assert world.state.balance(world.alice.user_id, USDT_ERC20) == to_units("50000")
    assert layer.ledger.verify() == []


def test_a_stop_while_allocating_waits_for_the_shares_then_stops(world, tmp_path):
    o = str(uuid.uuid4())
    layer = new_layer(world, tmp_path / "u.db", allocator_kw={"pending": {o: 2}})
    pay(world, BTC, "1", create_text(o, base=to_units("1")))
    run(layer.poll())
    run(layer.worker.run_once())
    assert layer.orders.order(o).state is S.ALLOCATING
    pay(world, BTC, "0.0002", m.to_extra(m.StopMemo(o)))
    run(layer.poll())
    assert layer.orders.order(o).stop_requested and layer.orders.order(o).state is S.ALLOCATING
    run(layer.cycle(5))
    assert layer.orders.order(o).state is S.SETTLED
    events = [e[0] for e in layer.orders.events(o)]
    assert events.index("minted") < events.index("stop", events.index("minted"))
    assert world.state.balance(world.alice.user_id, BTC) == to_units("5")


def test_a_refund_mixin_refuses_for_good_fails_the_order_with_an_alert(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")
    o = str(uuid.uuid4())
    pay(world, BTC, "0.3", create_text(o, base=to_units("1")))
    pay(world, BTC, "0.0001", m.to_extra(m.StopMemo(o)))
    run(layer.poll())
    # Mixin refuses the return for good (invalid receivers): nothing is paid
    world.server.faults.add("api_error", "/safe/transaction/requests", code=20150, times=1)
    run(layer.cycle(2))
    assert layer.orders.order(o).state is S.FAILED
    [p] = layer.outbox.of_order(o)
    assert p.state is PayoutState.FAILED
    assert [k for k, _, _ in alerts(layer.store)] == ["payment_refused"]
    assert layer.ledger.owed(acc.user_order(o), "BTC") == to_units("0.3001")  # still owed, in the books
    assert layer.ledger.verify() == []


class Crash(Exception):
    pass


CRASH_POINTS = ["to_exchange", "allocated", "minted", "released", "to_mixin", "paid", "booked"]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_at_any_step_resumes_without_doing_anything_twice(world, tmp_path, point):
    armed = {"on": True}

    def crash_at(step, ident):
        if step == point and armed["on"]:
            armed["on"] = False
            raise Crash(step)

    o = str(uuid.uuid4())
    path = tmp_path / "u.db"
    layer = new_layer(world, path, crash_at=crash_at, pools_kw={"bot_cut": 7})
    memo = create_text(o, base=to_units("1"), quote=to_units("3000"))
    pay(world, BTC, "1", memo)
    pay(world, USDT_ERC20, "3000", memo)
    crashes = stopped = 0
    for _ in range(12):
        try:
            run(layer.cycle(1))
        except Crash:
            crashes += 1
            layer.close()  # the process is gone; a new one starts on the same file
            layer = new_layer(world, path, crash_at=crash_at, pools_kw={"bot_cut": 7})
        if layer.orders.order(o).state is S.ACTIVE and not stopped:
            pay(world, BTC, "0.0001", m.to_extra(m.StopMemo(o)))
            stopped = 1
    assert crashes == 1
    again = layer
    assert again.orders.order(o).state is S.SETTLED
    assert len(sent_to_alice(world)) == 2  # one payout per asset, each once
    assert world.state.balance(world.alice.user_id, BTC) == to_units("5") - 7
    assert world.state.balance(world.alice.user_id, USDT_ERC20) == to_units("50000") - 7
    st = statement(again.ledger, again.orders, again.outbox, o)
    assert st.problems() == [] and st.bot_share == {"BTC": 7, "USDT": 7} and st.result == {"BTC": 0, "USDT": 0}
    assert again.ledger.verify() == []
    assert again.ledger.owed(acc.BOT_SHARE, "BTC") == 7


def test_a_statement_reads_the_order_from_the_ledger_and_renders(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db", pools_kw={"bot_cut": 3})
    o = str(uuid.uuid4())
    memo = create_text(o, base=to_units("0.4"), quote=to_units("700"))
    pay(world, BTC, "0.4", memo)
    pay(world, USDT_ERC20, "700", memo)
    run(layer.cycle(2))
    pay(world, BTC, "0.0001", m.to_extra(m.StopMemo(o)))
    run(layer.cycle(2))
    st = statement(layer.ledger, layer.orders, layer.outbox, o)
    assert st.paid == {"BTC": to_units("0.4001"), "USDT": to_units("700")}
    assert st.into_pool == {"BTC": to_units("0.4"), "USDT": to_units("700")}
    assert st.out_of_pool == {"BTC": to_units("0.4") - 3, "USDT": to_units("700") - 3}
    assert st.bot_share == {"BTC": 3, "USDT": 3} and st.result == {"BTC": 0, "USDT": 0}
    assert st.payouts == {"BTC": to_units("0.4001") - 3, "USDT": to_units("700") - 3}
    assert st.owed_now == {} and st.problems() == []
    text = st.render(layer.ledger)
    assert "paid out" in text and "bot share" in text and o in text
