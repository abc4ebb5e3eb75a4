"""Hypothesis: random sequences of payments (valid and not), adds, stops, timeouts and crashes
between (and inside) steps keep the ledger balanced, credit each snapshot exactly once, pay each
refund or payout at most once, and in the end give every payer back what they paid (less dust).

One Mixin simulator serves all examples; each example has its own users, its own database and a
snapshot cursor starting at its own beginning."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mixin_world import make_world, run
from users_catalog import catalog
from users_world import Clock, create_text, new_layer

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import AccountKind
from mixmaker.mixin.amounts import to_units
from mixmaker.sim.mixin.setup import BTC, USDT_ERC20
from mixmaker.users import memo as m
from mixmaker.users.orders import OrderState

SEC = 1_000_000_000
ASSETS = {"BTC": BTC, "USDT": USDT_ERC20}
AMOUNTS = {"BTC": ["0.000005", "0.0005", "0.001", "0.3", "1", "2.5"], "USDT": ["0.005", "5", "10", "500", "3000"]}
EXPECT = {"BTC": [0, to_units("0.0005"), to_units("0.5"), to_units("1.3")],
          "USDT": [0, to_units("5"), to_units("800"), to_units("3000")]}
POINTS = ["intake", "to_exchange", "allocated", "minted", "released", "to_mixin", "paid", "booked"]


@pytest.fixture(scope="module")
def world():
    w = make_world(seed=77)
    yield w
    w.server.stop()


class Crash(Exception):
    pass


asset = st.sampled_from(["BTC", "USDT"])
actions = st.lists(st.one_of(
    st.tuples(st.just("fund"), st.integers(0, 1), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2),
              st.booleans(), st.sampled_from(["tight", "wide"])),
    st.tuples(st.just("fund"), st.integers(0, 1), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2),
              st.booleans(), st.sampled_from(["tight", "wide"])),
    st.tuples(st.just("create"), st.integers(0, 1), st.integers(0, 2), asset, st.integers(0, 5), st.integers(0, 3),
              st.integers(0, 3), st.sampled_from(["tight", "wide"])),
    st.tuples(st.just("add"), st.integers(0, 1), st.integers(0, 2), asset, st.integers(0, 5)),
    st.tuples(st.just("stop"), st.integers(0, 1), st.integers(0, 2)),
    st.tuples(st.just("bad"), st.integers(0, 1), st.binary(max_size=40), asset, st.integers(0, 5)),
    st.tuples(st.just("run"), st.sampled_from(["poll", "worker", "payouts", "cycle"])),
    st.tuples(st.just("tick"), st.sampled_from([10, 4000])),
    st.tuples(st.just("crash"),),
    st.tuples(st.just("crash_at"), st.sampled_from(POINTS)),
    st.tuples(st.just("crash_at"), st.sampled_from(POINTS)),
), min_size=1, max_size=16)
FUND_BASE = [0, to_units("0.5"), to_units("1.3")]
FUND_QUOTE = [0, to_units("800"), to_units("3000")]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(script=actions)
def test_random_histories_keep_the_books_and_credit_each_snapshot_once(world, tmp_path_factory, script):
    path = tmp_path_factory.mktemp("prop") / "u.db"
    state = world.state
    users = [state.add_user(full_name=f"u{i}") for i in range(2)]
    for u in users:
        state.deposit(u.user_id, BTC, to_units("20"))
        state.deposit(u.user_id, USDT_ERC20, to_units("200000"))
    bot = world.bot["app_id"]
    start = state.clock.now_ns()
    wallet0 = {s: state.balance(bot, a) for s, a in ASSETS.items()}
    clock = Clock(time.time_ns())
    orders = [str(uuid.uuid4()) for _ in range(3)]
    armed: set[str] = set()

    def crash_at(step: str, ident: str) -> None:
        if step in armed:
            armed.discard(step)
            raise Crash(step)

    cat = catalog(timeout_s=3600)
    make = lambda: new_layer(world, path, catalog=cat, clock=clock, crash_at=crash_at, start_ns=start)  # noqa: E731
    layer = make()
    paid: Counter[tuple[str, str]] = Counter()  # (user, asset) -> units paid

    def pay(u, a, amount_idx, extra):
        amount = AMOUNTS[a][min(amount_idx, len(AMOUNTS[a]) - 1)]
        state.user_sends(users[u].user_id, bot, ASSETS[a], to_units(amount), extra)
        paid[(users[u].user_id, a)] += to_units(amount)

    def attempt(coro_fn) -> None:
        nonlocal layer
        try:
            run(coro_fn())
        except Crash as e:
            event(f"crashed at {e}")
            layer.close()
            layer = make()

    for act in script:
        kind = act[0]
        if kind == "fund":  # pays what a create memo expects, in one or two parts per asset
            _, u, slot, eb, eq, split, preset = act
            base = FUND_BASE[eb]
            quote = FUND_QUOTE[eq] or (0 if base else FUND_QUOTE[1])
            memo = create_text(orders[slot], base=base, quote=quote, preset=preset)
            for a, units in (("BTC", base), ("USDT", quote)):
                parts = [units // 3, units - units // 3] if split else [units]
                for part in (p for p in parts if p):
                    state.user_sends(users[u].user_id, bot, ASSETS[a], part, memo)
                    paid[(users[u].user_id, a)] += part
        elif kind == "create":
            _, u, slot, a, amt, eb, eq, preset = act
            memo = create_text(orders[slot], base=EXPECT["BTC"][eb], quote=EXPECT["USDT"][eq], preset=preset) \
                if EXPECT["BTC"][eb] or EXPECT["USDT"][eq] else b"no-funding"
            pay(u, a, amt, memo)
        elif kind == "add":
            _, u, slot, a, amt = act
            pay(u, a, amt, m.to_extra(m.AddMemo(orders[slot])))
        elif kind == "stop":
            _, u, slot = act
            pay(u, "BTC", 2, m.to_extra(m.StopMemo(orders[slot])))
        elif kind == "bad":
            _, u, raw, a, amt = act
            pay(u, a, amt, raw)
        elif kind == "run":
            fn = {"poll": lambda: layer.poll(), "worker": lambda: layer.worker.run_once(),
                  "payouts": lambda: layer.pay_out(), "cycle": lambda: layer.cycle(1)}[act[1]]
            attempt(fn)
        elif kind == "tick":
            clock.t += act[1] * SEC
        elif kind == "crash":
            layer.close()
            layer = make()
        else:  # a crash at that step of the next cycle (if the cycle gets there), inside or between transactions
            armed.add(act[1])
            attempt(lambda: layer.cycle(1))
            armed.clear()
        assert layer.ledger.verify() == []

    # Drain: no more crashes; every order is stopped or times out; everything is paid.
    armed.clear()
    for _ in range(4):
        run(layer.cycle(2))
        for o in layer.orders.in_states(OrderState.ACTIVE, OrderState.ALLOCATING):
            state.user_sends(o.payer, bot, BTC, to_units("0.001"), m.to_extra(m.StopMemo(o.order_id)))
            paid[(o.payer, "BTC")] += to_units("0.001")
        clock.t += 7200 * SEC
    run(layer.cycle(3))

    lg = layer.ledger
    for o in layer.orders.all():
        event(f"an order ended {o.state.value} after {[e[0] for e in layer.orders.events(o.order_id)][-1]}")
    assert lg.verify() == []
    intake = layer.store.query("SELECT snapshot_id, class FROM user_intake")
    user_payments = {sid for sid, cls in intake if cls == "user_payment"}
    credited = Counter(r[0] for r in layer.store.query("SELECT tx_key FROM ledger_transactions WHERE cause = 'payment'"))
    assert set(credited) == {f"payment:{sid}" for sid in user_payments}  # each once (keys are unique)
    sent = [s for s in state.snapshots if s.user_id == bot and s.amount < 0 and s.created_at >= start]
    assert len({s.request_id for s in sent}) == len(sent)  # no request paid twice
    assert {o.state for o in layer.orders.all()} <= {OrderState.SETTLED, OrderState.REFUNDED}
    assert [p for p in layer.outbox.all() if p.state.value not in ("sent", "dust")] == []
    # every claim is settled except dust: payers got back what they paid, less their dust
    owed = {k: u for k, u in lg.balances().items() if k[0].side is acc.Side.CLAIM}
    assert {k[0] for k in owed} <= {acc.unclaimed("dust")}
    for sym, asset_id in ASSETS.items():
        dust = lg.owed(acc.unclaimed("dust"), sym)
        held = sum(u for (a, s), u in lg.balances().items() if s == sym and a.kind in (AccountKind.WALLET,
                                                                                      AccountKind.EXCHANGE))
        assert state.balance(bot, asset_id) - wallet0[sym] == held == dust
        for u in users:
            got_back = sum(s.amount for s in state.snapshots if s.user_id == u.user_id and s.opponent_id == bot
                           and s.amount > 0 and s.asset_id == asset_id)
            assert got_back <= paid[(u.user_id, sym)]
        assert sum(paid[(u.user_id, sym)] for u in users) - dust == sum(
            s.amount for s in state.snapshots if s.opponent_id == bot and s.amount > 0 and s.asset_id == asset_id
            and s.created_at >= start)
    layer.close()
