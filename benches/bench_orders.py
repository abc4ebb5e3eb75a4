"""The order state machine under pytest-benchmark: Rust `OrderSet` against the pure-Python model
of the same transition table (`tests/order_model.py`), on the same events.

    pytest benches/bench_orders.py --benchmark-only               # group "orders", side by side
    pytest benches/bench_orders.py --benchmark-only --benchmark-json out.json

Workload: `workload(n, seed)` makes n order lifecycles, interleaved in time like a live account:
submitted, accepted, 1-3 partial fills (one of them delivered twice: same trade id), then either
a completing fill, or a cancel request answered by canceled (sometimes followed by a late fill)
or by cancel_rejected (sometimes followed by a completing fill). Every event is legal, so no
contender pays for exceptions; the duplicates are ignored by the duplicate-trade-id rule.

A round replays the whole event list on a fresh set with the orders already added (the setup is
not timed); `extra_info["ns_per_event"]` is the round's mean over the events. Contenders:
- `rust_apply`: `OrderSet.apply`, one Python call per event;
- `rust_apply_many`: `OrderSet.apply_many`, the whole list in one call;
- `rust_apply_many_chunked`: `apply_many` in calls of 1,000 events (what (b) pays for
  converting the whole list at once);
- `python_model`: `OrderModel.apply`, one call per event (the pure-Python peer).
After timing, each contender's final set is compared with the model's, order by order (every
view field, each symbol's exposure, and the batches' outcomes): a benchmark of a wrong answer fails.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import order_model  # tests/, on the path through benches/conftest.py
import pytest

from mixmaker._core import OrderSet

N_ORDERS = 20_000
ROUNDS = 5
CHUNK = 1000
VIEW_FIELDS = (
    "client_id", "exchange_id", "symbol", "side", "price", "quantity", "state", "previous", "filled",
    "remaining", "overfill", "cost", "avg_price", "fees", "fill_count", "not_found", "lost_after",
    "late_fills", "is_live",
)
EXPOSURE_FIELDS = ("buy_qty", "sell_qty", "buy_notional", "sell_notional", "orders")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


# ------------------------------------------------------------------------------- workload
def workload(n: int, seed: int = 1) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """-> (orders, events). orders: (client_id, symbol, side, price, quantity, lost_after), the
    arguments of `add`. events: (client_id, event, exchange_id, trade_id, price, qty, fee,
    fee_asset, is_maker), which is both an `apply_many` item and `apply`'s positional arguments.
    Deterministic for a given (n, seed)."""
    rng = random.Random(seed)
    orders: list[tuple[Any, ...]] = []
    timed: list[tuple[float, int, tuple[Any, ...]]] = []  # (time, sequence, event): sorted into one stream
    seq = 0

    def ev(cid: str, kind: str, eid: str | None = None, tid: str | None = None, price: int = 0, qty: int = 0,
           fee: int = 0, asset: str = "", maker: bool = False) -> tuple[Any, ...]:
        return (cid, kind, eid, tid, price, qty, fee, asset, maker)

    for i in range(n):
        cid = f"o{i:07d}"
        side = "buy" if i % 2 == 0 else "sell"
        price = rng.randint(9_000_000, 11_000_000)
        qty = rng.randint(8, 200)
        orders.append((cid, SYMBOLS[i % len(SYMBOLS)], side, price, qty, 3))

        life = [ev(cid, "submitted"), ev(cid, "accepted", f"X{i}")]
        fills = []
        for j in range(rng.randint(1, 3)):  # each at most qty // 4: together they never complete it
            q = rng.randint(1, qty // 4)
            fee = rng.choice((-q, 0, 2 * q))  # maker rebate, free, taker fee
            fills.append(ev(cid, "fill", None, f"{i}.{j}", price - rng.randint(0, 50), q, fee, "USDT", fee <= 0))
        life += fills
        filled = sum(f[5] for f in fills)
        rest = ev(cid, "fill", None, f"{i}.c", price, qty - filled, 3, "BNB", False)
        r = rng.random()
        if r < 0.3:
            life.append(rest)  # fills completely
        else:
            life.append(ev(cid, "cancel_requested"))
            if r < 0.75:
                life.append(ev(cid, "canceled"))
                if rng.random() < 0.2:  # a fill that happened before the cancel took effect
                    life.append(ev(cid, "fill", None, f"{i}.late", price, rng.randint(1, qty - filled), 1, "USDT", False))
            else:
                life.append(ev(cid, "cancel_rejected"))
                if rng.random() < 0.5:
                    life.append(rest)
        # One fill delivered again later (a venue resend, or REST reconciliation): ignored.
        dup = rng.choice(fills)
        life.insert(rng.randint(life.index(dup) + 1, len(life)), dup)

        t = float(i)
        for e in life:
            t += rng.random() * 40  # ~40 orders in flight at once
            timed.append((t, seq, e))
            seq += 1
    timed.sort()
    return orders, [e for _, _, e in timed]


# ------------------------------------------------------------------------------ contenders
def rust_apply(s: OrderSet, events: list[tuple[Any, ...]]) -> None:
    apply = s.apply
    for e in events:
        apply(*e)


def rust_apply_many(s: OrderSet, events: list[tuple[Any, ...]]) -> list[Any]:
    return s.apply_many(events)


def rust_apply_many_chunked(s: OrderSet, chunks: list[list[tuple[Any, ...]]]) -> list[Any]:
    out: list[Any] = []
    for c in chunks:
        out += s.apply_many(c)
    return out


def python_model(m: order_model.OrderModel, events: list[tuple[Any, ...]]) -> None:
    apply = m.apply
    for e in events:
        apply(*e)


@pytest.fixture(scope="module")
def work() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return workload(N_ORDERS, seed=1)


@pytest.fixture(scope="module")
def model(work: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]) -> order_model.OrderModel:
    """The model after the whole workload: what every contender must end as."""
    orders, events = work
    m = order_model.OrderModel()
    for o in orders:
        m.add(*o)
    m.outcomes = m.apply_many(events)
    return m


def _fresh(factory: Callable[[], Any], orders: list[tuple[Any, ...]]) -> Any:
    s = factory()
    for o in orders:
        s.add(*o)
    return s


def _outcome(o: Any) -> tuple[Any, ...]:
    return (o.applied, o.before, o.after, o.ignored, o.error)


def _check(s: Any, m: order_model.OrderModel, orders: list[tuple[Any, ...]], outcomes: list[Any] | None) -> None:
    for o in orders:
        cid = o[0]
        got = s.view(cid) if isinstance(s, order_model.OrderModel) else {f: getattr(s.get(cid), f) for f in VIEW_FIELDS}
        assert got == m.view(cid), cid
    for sym in SYMBOLS:
        x = s.exposure(sym)
        assert (x if isinstance(x, dict) else {f: getattr(x, f) for f in EXPOSURE_FIELDS}) == m.exposure(sym), sym
    if outcomes is not None:
        assert [_outcome(o) for o in outcomes] == [_outcome(o) for o in m.outcomes]


CONTENDERS = {
    "rust_apply": (OrderSet, rust_apply, False, False),
    "rust_apply_many": (OrderSet, rust_apply_many, False, True),
    "rust_apply_many_chunked": (OrderSet, rust_apply_many_chunked, True, True),
    "python_model": (order_model.OrderModel, python_model, False, False),
}


@pytest.mark.benchmark(group="orders: one workload, per round")
@pytest.mark.parametrize("name", list(CONTENDERS))
def test_order_set(benchmark: Any, name: str, work: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]],
                   model: order_model.OrderModel) -> None:
    factory, run, chunked, batched = CONTENDERS[name]
    orders, events = work
    arg: Any = [events[k:k + CHUNK] for k in range(0, len(events), CHUNK)] if chunked else events
    finals: list[Any] = []

    def setup() -> tuple[tuple[Any, Any], dict[str, Any]]:
        s = _fresh(factory, orders)
        finals[:] = [s]
        return (s, arg), {}

    out = benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(events=len(events), orders=len(orders),
                                ns_per_event=benchmark.stats.stats.mean * 1e9 / len(events))
    _check(finals[0], model, orders, out if batched else None)
