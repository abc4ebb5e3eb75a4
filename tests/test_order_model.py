"""The Rust order state machine (mixmaker._core.OrderSet) against the plain-Python model in
`order_model.py`, written separately from the same rules.

- property tests: random event sequences over several orders, applied one call at a time and in
  one apply_many batch, compared after every step (outcome, full order view, exposure);
- a deterministic sweep that brings orders into every state by known paths and applies every
  event there, so no (state, event) pair of the table goes unchecked whatever hypothesis draws.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import order_model as M
from mixmaker import _core
from mixmaker.orders import OrderState

VIEW_FIELDS = (
    "client_id", "exchange_id", "symbol", "side", "price", "quantity", "state", "previous", "filled",
    "remaining", "overfill", "cost", "avg_price", "fees", "fill_count", "not_found", "lost_after",
    "late_fills", "is_live",
)
EXPOSURE_FIELDS = ("buy_qty", "sell_qty", "buy_notional", "sell_notional", "orders")
SYMBOLS = ("BTCUSDT", "ETHUSDT")
UNKNOWN = "nobody"  # a client id never added


# --- reading both implementations the same way ---------------------------------------------


_ENUMS = (_core.OrderState, _core.OrderEvent, _core.Side)


def named(x):
    """The core's enums as the model's names (their values); anything else as it is."""
    return x.value if isinstance(x, _ENUMS) else x


def rust_view(s: _core.OrderSet, cid: str) -> dict | None:
    v = s.get(cid)
    return None if v is None else {f: named(getattr(v, f)) for f in VIEW_FIELDS}


def rust_exposure(s: _core.OrderSet, symbol: str) -> dict:
    x = s.exposure(symbol)
    return {f: getattr(x, f) for f in EXPOSURE_FIELDS}


def outcome_key(o) -> tuple:
    """One comparable shape for a Rust Outcome or a model Outcome."""
    if o.applied:
        assert o.ignored is None and o.error is None, o
        return ("applied", named(o.before), named(o.after))
    assert o.before is None and o.after is None, o
    if o.ignored is not None:
        assert o.error is None, o
        return ("ignored", o.ignored)
    assert o.error is not None and o.message, o
    return ("error", o.error)


def rust_apply(s: _core.OrderSet, cid: str, ev: tuple) -> tuple:
    try:
        return outcome_key(s.apply(cid, *ev))
    except _core.InvalidTransitionError as e:
        return ("error", "InvalidTransitionError", (e.client_id, named(e.state), named(e.event)))
    except _core.OrderError as e:
        return ("error", type(e).__name__)
    except ValueError:  # not an OrderError: the call did not describe an event
        return ("error", "ValueError")


def model_apply(m: M.OrderModel, cid: str, ev: tuple) -> tuple:
    try:
        return outcome_key(m.apply(cid, *ev))
    except M.ModelInvalidTransition as e:
        return ("error", e.rust_name, (e.client_id, e.state, e.event))
    except M.ModelError as e:
        return ("error", e.rust_name)


def assert_same_set(s: _core.OrderSet, m: M.OrderModel, where: str, cids=None) -> None:
    """The full view of `cids` (default: every order), the exposure of every symbol (which
    sums every order), and which orders are live."""
    assert s.ids() == sorted(m.orders), where
    for cid in m.orders if cids is None else cids:
        assert rust_view(s, cid) == m.view(cid), f"{where}: order {cid}"
    for sym in SYMBOLS:
        assert rust_exposure(s, sym) == m.exposure(sym), f"{where}: exposure {sym}"
    assert s.live_ids() == sorted(c for c, o in m.orders.items() if o.is_live), where


# --- random event sequences ----------------------------------------------------------------

# Weights: fills and acks dominate real traffic and drive most of the accounting.
KINDS = (
    ["submitted"] * 3 + ["accepted"] * 3 + ["rejected"] * 2 + ["fill"] * 6 + ["cancel_requested"] * 2
    + ["canceled"] * 2 + ["cancel_rejected"] * 2 + ["not_found"] * 3 + ["expired"] * 2
)
TRADE_IDS = [f"t{i}" for i in range(6)]  # a small pool, so trade ids repeat (duplicates)

# Every fill the sequences use, as one list: one draw per fill keeps generation cheap. The
# pools carry the edge cases: no trade id, non-positive qty or price, a qty that overflows i64
# on the second such fill, fills that complete or overfill at once, zero fees, rebates.
FILLS = [
    ("fill", None, tid, price, qty, fee, asset, fee > 0)
    for tid in TRADE_IDS * 3 + ["", None]
    for price in (1, 97, 100, 100, 101, 1999, 6_165_970, -2, 0)
    for qty in (1, 1, 2, 2, 3, 4, 5, 9, 25, 2**62, 0, -1)
    for fee, asset in ((0, ""), (1, "USDT"), (-2, "USDT"), (3, "BNB"), (0, "BNB"), (2, ""))
]


# A step as hypothesis draws it: (order slot, kind, address by exchange id?, detail), all small
# ints decoded by Scenario.decode against the current state. Flat integers draw fast and shrink.
raw_steps = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 99), st.booleans(), st.integers(0, len(FILLS) - 1)),
    min_size=20,  # hypothesis keeps lists short otherwise; lifecycles need length
    max_size=80,
)

order_specs = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.sampled_from(("buy", "sell")),
        st.integers(1, 100_000),  # price
        st.integers(1, 12),       # quantity
        st.integers(1, 4),        # lost_after
    ),
    min_size=1,
    max_size=4,
)


def exchange_id(cid: str) -> str:
    return f"E-{cid}"


class Scenario:
    """Turns raw draws into steps: ("add", cid, spec) or ("event", cid, by_exchange, event).

    Each drawn spec is a slot holding its current order. Uniformly random kinds would mostly
    bounce off INITIALIZED as invalid, so three times in four the kind is one the table accepts
    in the order's current state and otherwise one it refuses, read from `guide` (a model the
    caller keeps up to date; it only steers the draw, every outcome is still compared with the
    core). A closed order's slot is sometimes refilled with a new order, so one example runs
    several lifecycles instead of idling in FAILED or FILLED.
    """

    def __init__(self, specs, guide: M.OrderModel) -> None:
        self.specs, self.guide = specs, guide
        self.slots = [f"c{k}" for k in range(len(specs))]
        self.added = 0

    def initial(self) -> list[tuple]:
        return [("add", cid, spec) for cid, spec in zip(self.slots, self.specs)]

    def decode(self, raw) -> list[tuple]:
        k_raw, kind_raw, by_exchange, detail = raw
        if k_raw == 40:  # about one step in 40 names an order that does not exist
            cid, state = UNKNOWN, None
        else:
            k = k_raw % len(self.slots)
            cid = self.slots[k]
            state = self.guide.orders[cid].state
            if state in M.TERMINAL and detail % 5 == 0:
                cid = self.slots[k] = f"c{k}.{self.added}"
                self.added += 1
                return [("add", cid, self.specs[k])]
        kinds = KINDS
        if state is not None:
            refused = kind_raw >= 75
            kinds = [e for e in KINDS if (M.TABLE[state][e][0] == M.INVALID) == refused]
        kind = kinds[kind_raw % len(kinds)]
        if kind == "fill":
            return [("event", cid, by_exchange, FILLS[detail])]
        if kind == "accepted":
            # Mostly the order's own id; sometimes a second one (conflict), one shared by every
            # order, or an empty one (not an event at all: OrderInputError).
            ids = [exchange_id(cid)] * 6 + [exchange_id(cid) + "x", "SHARED", ""]
            return [("event", cid, by_exchange, ("accepted", ids[detail % len(ids)], None, 0, 0, 0, "", False))]
        # "not found" comes in runs (a reconciliation loop asking again), long enough to reach LOST.
        times = 1 + detail % 4 if kind == "not_found" else 1
        return [("event", cid, by_exchange, (kind, None, None, 0, 0, 0, "", False))] * times


def add_to(impl, step) -> None:
    _, cid, (sym, side, price, qty, lost_after) = step
    impl.add(cid, sym, side, price, qty, lost_after)


# Pairs (state before, event) the property test reached in this session: checked by
# test_property_run_reached_every_pair, so a strategy change that stops exploring part of the
# table fails instead of passing quietly.
REACHED: Counter = Counter()

# Derandomized: the same examples every run (and REACHED is reproducible); no example database
# is written into the checkout.
PROPERTY = settings(
    max_examples=400, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture(autouse=True, scope="module")
def _no_local_constants():
    """Hypothesis (6.131+) also draws integers from a pool of constants harvested from the project
    modules imported so far, so even derandomized the examples (and REACHED) changed with the
    test files that ran earlier in the session: a run after other files once missed
    (CANCELED, rejected). The pool is pinned empty here, so the examples depend only on this
    test's source and the Hypothesis version."""
    from hypothesis.internal.conjecture import providers

    if not hasattr(providers, "_get_local_constants"):  # another Hypothesis: nothing to pin
        yield
        return
    mp = pytest.MonkeyPatch()
    mp.setattr(providers, "_get_local_constants", lambda: providers.Constants())
    providers.CONSTANTS_CACHE.cache.clear()
    yield
    mp.undo()
    providers.CONSTANTS_CACHE.cache.clear()


@PROPERTY
@given(order_specs, raw_steps)
def test_one_call_at_a_time_matches_the_model(specs, raws):
    s, m = _core.OrderSet(), M.OrderModel()
    sc = Scenario(specs, guide=m)  # m is updated below before each next decode (lazy generator)
    steps = itertools.chain(sc.initial(), (step for raw in raws for step in sc.decode(raw)))
    for n, step in enumerate(steps):
        if step[0] == "add":
            add_to(s, step)
            add_to(m, step)
            continue
        _, cid, by_exchange, ev = step
        if by_exchange:
            # Find the order the way a venue update names it (unknown until acked).
            eid = exchange_id(cid)
            assert s.client_id_of(eid) == m.client_id_of(eid)
            cid = s.client_id_of(eid) or UNKNOWN
        before_view = rust_view(s, cid)
        state = before_view["state"] if before_view else None
        got = rust_apply(s, cid, ev)
        want = model_apply(m, cid, ev)
        where = f"step {n}: {cid} in {state} + {ev}"
        assert got == want, where
        if state is not None:
            REACHED[(state, ev[0])] += 1
        if got[0] != "applied":
            # Checked on the Rust side alone: ignoring or refusing an event changes nothing.
            assert rust_view(s, cid) == before_view, where
        # Only this order can have changed: its view every step, all of them at the end.
        assert_same_set(s, m, where, cids=[cid] if cid in m.orders else [])
    assert_same_set(s, m, "at the end")
    for cid, o in m.orders.items():
        for tid in TRADE_IDS:
            assert s.has_trade(cid, tid) == (tid in o.trade_ids)


@PROPERTY
@given(order_specs, raw_steps)
def test_one_batch_matches_the_model(specs, raws):
    guide = M.OrderModel()  # steers the decoding only; the batch goes to s and m afterwards
    sc = Scenario(specs, guide)
    adds, batch = [], []
    for step in itertools.chain(sc.initial(), (step for raw in raws for step in sc.decode(raw))):
        if step[0] == "add":
            add_to(guide, step)
            adds.append(step)
            continue
        _, cid, by_exchange, (event, eid, *rest) = step
        model_apply(guide, cid, (event, eid, *rest))
        if event == "accepted" and not eid:
            continue  # a malformed item fails the whole batch: see the test below
        if by_exchange:
            # No client id: the set looks the order up by exchange id (unknown until acked).
            batch.append((None, event, eid or exchange_id(cid), *rest))
        else:
            batch.append((cid, event, eid, *rest))
    s, m = _core.OrderSet(), M.OrderModel()
    for step in adds:  # all up front: an order nobody has named yet just waits in INITIALIZED
        add_to(s, step)
        add_to(m, step)
    got = [outcome_key(o) for o in s.apply_many(batch)]
    want = [outcome_key(o) for o in m.apply_many(batch)]
    assert len(got) == len(batch)
    for n, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"item {n}: {batch[n]}"
    assert_same_set(s, m, "after the batch")
    for cid in m.orders:
        for eid in (exchange_id(cid), exchange_id(cid) + "x", "SHARED"):
            assert s.client_id_of(eid) == m.client_id_of(eid)


def test_property_run_reached_every_pair():
    if not REACHED:
        pytest.skip("runs after test_one_call_at_a_time_matches_the_model (not selected)")
    missing = [(st_, ev) for st_ in M.STATES for ev in M.EVENTS if (st_, ev) not in REACHED]
    assert not missing, f"the random sequences never reached {missing}"


def test_the_examples_do_not_depend_on_what_other_tests_imported():
    # As if other test files had imported more project modules (whose literals Hypothesis
    # harvests as constants) before this file ran: the derandomized draws must not change.
    from hypothesis.internal.conjecture import providers
    from sortedcontainers import SortedSet

    def draws() -> list:
        seen: list = []

        @settings(max_examples=30, derandomize=True, database=None, deadline=None)
        @given(raw_steps)
        def probe(raws):
            seen.append(raws)

        probe()
        return seen

    first = draws()
    mp = pytest.MonkeyPatch()
    try:
        more = providers.Constants(integers=SortedSet(range(0, 100, 3)))
        mp.setattr(providers, "_local_constants", providers._local_constants | more)
        providers.CONSTANTS_CACHE.cache.clear()
        assert draws() == first
    finally:
        mp.undo()
        providers.CONSTANTS_CACHE.cache.clear()


def test_a_malformed_batch_item_applies_nothing():
    for impl in (_core.OrderSet(), M.OrderModel()):
        impl.add("c0", "BTCUSDT", "buy", 100, 5)
        batch = [("c0", "submitted", None, None, 0, 0, 0, "", False), ("c0", "accepted", "", None, 0, 0, 0, "", False)]
        with pytest.raises(ValueError if isinstance(impl, _core.OrderSet) else M.ModelEventFormat):
            impl.apply_many(batch)
        with pytest.raises(ValueError if isinstance(impl, _core.OrderSet) else M.ModelEventFormat):
            impl.apply_many([(None, "submitted", None, None, 0, 0, 0, "", False)])
        assert named(impl.get("c0").state) == "INITIALIZED"


@pytest.mark.parametrize(
    "bad",
    [("c0", "accepted", "E1"), ["c0", "submitted", None, None, 0, 0, 0, "", False], ("c0", "fill", None, "t", "1", 1, 0, "", False)],
    ids=["short tuple", "a list", "price as str"],
)
def test_apply_many_refuses_an_item_of_the_wrong_shape_before_applying_anything(bad):
    s = _core.OrderSet()
    s.add("c0", "BTCUSDT", "buy", 100, 5)
    with pytest.raises(TypeError, match="update 1"):
        s.apply_many([("c0", "submitted", None, None, 0, 0, 0, "", False), bad])
    assert s.get("c0").state == OrderState.INITIALIZED


@pytest.mark.parametrize(
    "args",
    [
        ("", "BTCUSDT", "buy", 100, 5, 3),       # empty client id
        ("c1", "", "buy", 100, 5, 3),            # empty symbol
        ("c1", "BTCUSDT", "buy", 0, 5, 3),       # price
        ("c1", "BTCUSDT", "sell", 100, -1, 3),   # quantity
        ("c1", "BTCUSDT", "buy", 100, 5, 0),     # lost_after
        ("c1", "BTCUSDT", "bid", 100, 5, 3),     # side: OrderInputError
        ("c0", "BTCUSDT", "buy", 100, 5, 3),     # duplicate client id
    ],
)
def test_adding_a_bad_order_fails_the_same_way(args):
    got, want = [], []
    for impl, out in ((_core.OrderSet(), got), (M.OrderModel(), want)):
        impl.add("c0", "ETHUSDT", "sell", 7, 1)
        try:
            impl.add(*args)
            out.append("added")
        except (_core.OrderError, M.ModelError) as e:
            out.append(getattr(e, "rust_name", type(e).__name__))
        except ValueError:
            out.append("ValueError")
        out.append(sorted(impl.orders) if isinstance(impl, M.OrderModel) else impl.ids())
    assert got == want
    assert got[0] != "added" and got[1] == ["c0"]


# --- the deterministic sweep ---------------------------------------------------------------

QTY = 10


def fill(tid: str, qty: int = 1, price: int = 100, fee: int = 1, asset: str = "USDT") -> tuple:
    return ("fill", None, tid, price, qty, fee, asset, True)


def ev(kind: str, eid: str | None = None) -> tuple:
    return (kind, eid, None, 0, 0, 0, "", False)


SUB, ACK, CR, CRJ, CAN, NF, REJ, EXP = (ev("submitted"), ev("accepted", "E1"), ev("cancel_requested"),
                                       ev("cancel_rejected"), ev("canceled"), ev("not_found"), ev("rejected"), ev("expired"))

# Several ways into each state: they differ in what the numbers and `previous` hold, which is
# what the data-dependent rules (fills, restore, reject while cancelling, found) look at.
PATHS = {
    "INITIALIZED": [[]],
    "PENDING_CREATE": [[SUB], [SUB, CR, CRJ], [SUB, NF]],
    "OPEN": [[SUB, ACK], [SUB, NF, NF, NF, ACK], [SUB, CR, ACK, CRJ]],
    "PARTIALLY_FILLED": [[SUB, ACK, fill("t1")], [SUB, fill("t1")], [SUB, ACK, CR, fill("t1"), CRJ]],
    "PENDING_CANCEL": [
        [SUB, CR],                        # previous PENDING_CREATE: a reject is still possible
        [SUB, ACK, CR],                   # previous OPEN
        [SUB, ACK, fill("t1"), CR],       # previous PARTIALLY_FILLED
        [SUB, NF, NF, NF, CR],            # previous LOST
        [SUB, CR, ACK],                   # the ack after the cancel request: previous OPEN
        [SUB, CR, fill("t1")],            # a fill while cancelling: previous PARTIALLY_FILLED
        [SUB, CR, NF],                    # one "not found" counted
    ],
    "CANCELED": [[SUB, ACK, CAN], [SUB, ACK, fill("t1"), CAN], [SUB, CAN]],
    "FILLED": [[SUB, ACK, fill("t1", QTY)], [SUB, ACK, CAN, fill("t1", QTY)], [SUB, ACK, fill("t1", QTY + 3)]],
    "FAILED": [[SUB, REJ], [REJ], [SUB, CR, REJ], [SUB, NF, NF, NF, REJ], [SUB, NF, NF, NF, CR, REJ]],
    "EXPIRED": [[SUB, ACK, EXP], [SUB, EXP], [SUB, ACK, fill("t1"), EXP]],
    "LOST": [[SUB, NF, NF, NF], [SUB, ACK, fill("t1"), NF, NF, NF], [SUB, NF, NF, NF, NF], [SUB, ACK, CR, NF, NF, NF]],
}

# Variants of each event: the table's answer can depend on the event's data too.
PROBES = {
    "submitted": [SUB],
    "accepted": [ACK, ev("accepted", "E2")],          # the known id, or another one
    "rejected": [REJ],
    "fill": [
        fill("t9"),                                   # new, partial
        fill("t9", QTY),                              # new, completes (or overfills)
        fill("t1", 3, 999),                           # a trade id from the path, other numbers
        fill("t9", 2, 101, 0, ""),                    # no fee at all
        fill("t9", 1, 100, -2, "BNB"),                # a rebate in a new asset
        fill(""), fill("t9", 0), fill("t9", 1, 0),    # bad fills
    ],
    "cancel_requested": [CR],
    "canceled": [CAN],
    "cancel_rejected": [CRJ],
    "not_found": [NF],
    "expired": [EXP],
}


def test_every_state_event_pair_matches_the_model():
    reached: dict[tuple[str, str], set] = {}
    for state, paths in PATHS.items():
        for path in paths:
            for kind, probes in PROBES.items():
                for probe in probes:
                    s, m = _core.OrderSet(), M.OrderModel()
                    for impl in (s, m):  # a second order, so exposure sums more than one
                        impl.add("c0", "BTCUSDT", "buy", 100, QTY, 3)
                        impl.add("c1", "BTCUSDT", "sell", 105, 4, 3)
                    for step in path:
                        assert rust_apply(s, "c0", step) == model_apply(m, "c0", step)
                    assert named(s.state("c0")) == state, path
                    assert_same_set(s, m, f"{path}")
                    got, want = rust_apply(s, "c0", probe), model_apply(m, "c0", probe)
                    where = f"{state} via {[p[0] for p in path]} + {probe}"
                    assert got == want, where
                    assert_same_set(s, m, where)
                    reached.setdefault((state, kind), set()).add(got[:2] if got[0] != "applied" else got)
    assert set(reached) == {(s_, e) for s_ in M.STATES for e in M.EVENTS}, "a (state, event) pair was never probed"
    outcomes = set().union(*reached.values())
    # The sweep exercised every kind of answer, not only transitions.
    for want in [("ignored", r) for r in ("duplicate_fill", "duplicate_ack", "cancel_in_flight", "duplicate", "stale")] + [
        ("error", e) for e in ("InvalidTransitionError", "ExchangeIdConflictError", "OrderInputError")
    ]:
        assert want in outcomes, f"no probe produced {want}"
    # Each target state of the table was reached by some applied transition.
    assert {o[2] for o in outcomes if o[0] == "applied"} == set(M.STATES) - {"INITIALIZED"}


# --- a few fixed facts, so the model is not only checked against the core ------------------


def test_model_numbers_on_a_known_sequence():
    m = M.OrderModel()
    m.add("c", "BTCUSDT", "buy", 6_165_990, 9)
    for e in (SUB, ACK):
        m.apply("c", *e)
    m.apply("c", *fill("1", 3, 6_165_970, 5, "USDT"))
    m.apply("c", *fill("2", 4, 6_165_980, -2, "USDT"))
    m.apply("c", *fill("3", 2, 6_165_990, 7, "BNB"))
    v = m.view("c")
    # 55_493_810 / 9 = 6_165_978.89 -> 6_165_979 (the figure in rust_core/src/orders/tests.rs)
    assert (v["cost"], v["avg_price"], v["fees"]) == (55_493_810, 6_165_979, [("USDT", 3), ("BNB", 7)])
    assert (v["state"], v["remaining"], v["overfill"]) == ("FILLED", 0, 0)
    with pytest.raises(M.ModelInvalidTransition):
        m.apply("c", *CAN)
