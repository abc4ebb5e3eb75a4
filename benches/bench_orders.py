#!/usr/bin/env python3
"""The order state machine: Rust `OrderSet` against the pure-Python model, same events.

Workload: `workload(n, seed)` makes n order lifecycles, interleaved in time like a live account:
submitted, accepted, 1-3 partial fills (one of them delivered twice: same trade id), then either
a completing fill, or a cancel request answered by canceled (sometimes followed by a late fill)
or by cancel_rejected (sometimes followed by a completing fill). Every event is legal, so no
contender pays for exceptions; the duplicates are ignored by the duplicate-trade-id rule.

Contenders, each on a fresh set with the orders already added (setup is never timed):
  (a) OrderSet.apply, one Python call per event
  (b) OrderSet.apply_many, the whole event list in one call
  (c) OrderModel.apply from tests/order_model.py, one call per event (the pure-Python peer)

Each figure is the best of --repeat rounds (time.perf_counter_ns, GC disabled inside the timed
region); a round runs every contender once, so contenders are interleaved. After the timed
rounds, an untimed pass runs every contender the same way and compares the final sets order by
order (every OrderView field, exposure) and the batches' outcomes against the model's: any
difference aborts with a non-zero exit and no table is printed.

A fourth row, (b') apply_many in calls of 1,000 events, shows how much of (b) is the cost of
converting the whole list up front rather than the per-event work.

    python benches/bench_orders.py                 # 100,000 orders, best of 5
    python benches/bench_orders.py --n 20000 --repeat 3 --json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # order_model lives with the tests
sys.path.insert(0, HERE)
from cpu_meter import CpuMeter  # noqa: E402

import order_model  # noqa: E402
from mixmaker._core import OrderSet  # noqa: E402

VIEW_FIELDS = (
    "client_id", "exchange_id", "symbol", "side", "price", "quantity", "state", "previous", "filled",
    "remaining", "overfill", "cost", "avg_price", "fees", "fill_count", "not_found", "lost_after",
    "late_fills", "is_live",
)
EXPOSURE_FIELDS = ("buy_qty", "sell_qty", "buy_notional", "sell_notional", "orders")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- workload
def workload(n: int, seed: int = 1) -> tuple[list[tuple], list[tuple]]:
    """-> (orders, events). orders: (client_id, symbol, side, price, quantity, lost_after), the
    arguments of `add`. events: (client_id, event, exchange_id, trade_id, price, qty, fee,
    fee_asset, is_maker), which is both an `apply_many` item and `apply`'s positional arguments.
    Deterministic for a given (n, seed)."""
    rng = random.Random(seed)
    orders: list[tuple] = []
    timed: list[tuple[float, int, tuple]] = []  # (time, sequence, event): sorted into one stream
    seq = 0

    def ev(cid, kind, eid=None, tid=None, price=0, qty=0, fee=0, asset="", maker=False) -> tuple:
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
def timed(fn: Callable[[], object]) -> tuple[int, object]:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        out = fn()
        t1 = time.perf_counter_ns()
    finally:
        gc.enable()
    return t1 - t0, out


def run_rust_apply(orders, events):
    s = OrderSet()
    for o in orders:
        s.add(*o)
    apply = s.apply

    def go():
        for e in events:
            apply(*e)

    ns, _ = timed(go)
    return ns, s, None


def run_rust_apply_many(orders, events):
    s = OrderSet()
    for o in orders:
        s.add(*o)
    ns, outcomes = timed(lambda: s.apply_many(events))
    return ns, s, outcomes


def run_python(orders, events):
    m = order_model.OrderModel()
    for o in orders:
        m.add(*o)
    apply = m.apply

    def go():
        for e in events:
            apply(*e)

    ns, _ = timed(go)
    return ns, m, None


CHUNK = 1000


def run_rust_apply_chunks(orders, events):
    s = OrderSet()
    for o in orders:
        s.add(*o)
    chunks = [events[k:k + CHUNK] for k in range(0, len(events), CHUNK)]  # sliced before timing

    def go():
        out = []
        for c in chunks:
            out += s.apply_many(c)
        return out

    ns, outcomes = timed(go)
    return ns, s, outcomes


ORDER_CONTENDERS = (
    ("rust_apply", "(a) Rust OrderSet.apply, one call per event", run_rust_apply),
    ("rust_apply_many", "(b) Rust OrderSet.apply_many, one call", run_rust_apply_many),
    # Not one of the three asked for: shows what (b) pays for materialising the whole list at once.
    ("rust_apply_many_chunked", f"(b') Rust apply_many, calls of {CHUNK:,} events", run_rust_apply_chunks),
    ("python", "(c) pure Python (tests/order_model.py)", run_python),
)


# ---------------------------------------------------------------------------- verification
def rust_views(s: OrderSet, cids) -> list[dict]:
    out = []
    for cid in cids:
        v = s.get(cid)
        out.append({f: getattr(v, f) for f in VIEW_FIELDS})
    return out


def outcome_key(o) -> tuple:
    return (o.applied, o.before, o.after, o.ignored, o.error)


def verify(orders, events, finals: dict, batch_outcomes) -> dict:
    """Raises SystemExit unless every contender ended identical to the model. -> outcome counts."""
    cids = [o[0] for o in orders]
    model = finals["python"]
    want = [model.view(c) for c in cids]
    for key in finals:
        if key == "python":
            continue
        got = rust_views(finals[key], cids)
        if got != want:
            bad = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
            raise SystemExit(f"MISMATCH: {key} differs from the model at order {cids[bad]}:\n  rust  {got[bad]}\n  model {want[bad]}")
        for sym in SYMBOLS:
            x = finals[key].exposure(sym)
            if {f: getattr(x, f) for f in EXPOSURE_FIELDS} != model.exposure(sym):
                raise SystemExit(f"MISMATCH: {key} exposure of {sym} differs from the model")
    # Outcome by outcome: the model's batch on a fresh set against the timed Rust batches.
    fresh = order_model.OrderModel()
    for o in orders:
        fresh.add(*o)
    model_outcomes = fresh.apply_many(events)
    want_keys = [outcome_key(o) for o in model_outcomes]
    for key, outcomes in batch_outcomes.items():
        got_keys = [outcome_key(o) for o in outcomes]
        if got_keys != want_keys:
            bad = next((i for i, (g, w) in enumerate(zip(got_keys, want_keys)) if g != w), min(len(got_keys), len(want_keys)))
            raise SystemExit(f"MISMATCH: {key} outcome {bad} of {len(want_keys)} ({events[bad] if bad < len(events) else 'missing'}): "
                             f"rust {got_keys[bad:bad + 1]}, model {want_keys[bad:bad + 1]}")
    counts = {
        "applied": sum(o.applied for o in model_outcomes),
        "ignored": sum(o.ignored is not None for o in model_outcomes),
        "errors": sum(o.error is not None for o in model_outcomes),
    }
    if counts["errors"]:
        raise SystemExit(f"workload bug: {counts['errors']} events were errors")
    states: dict[str, int] = {}
    for v in want:
        states[v["state"]] = states.get(v["state"], 0) + 1
    counts["final_states"] = dict(sorted(states.items()))
    return counts


# ----------------------------------------------------------------------------------- runs
def bench_orders(n: int, seed: int, repeat: int) -> dict:
    """The order-state-machine section: -> {"title", "meta", "rows"}."""
    log(f"building the workload: {n:,} orders (seed {seed})")
    orders, events = workload(n, seed)
    best = {key: None for key, _, _ in ORDER_CONTENDERS}
    meter = CpuMeter()
    for r in range(repeat):
        for key, _, run in ORDER_CONTENDERS:
            gc.collect()
            # Keep nothing: a few hundred MB of finished sets held across rounds slows every
            # later run (measured: apply_many 0.65 s -> 1.7 s by round 4).
            ns, final, outcomes = run(orders, events)
            del final, outcomes
            best[key] = ns if best[key] is None else min(best[key], ns)
            log(f"  round {r + 1}/{repeat}  {key:24s} {ns / 1e6:10.1f} ms")
    other = meter.other_cores()
    # Verification pass, untimed and after the timed rounds: the same run functions, then every
    # contender's final set is compared with the model's. It comes last because holding all the
    # finished sets at once fragments the heap and slows whatever runs after it.
    log("verification pass: every contender once, untimed")
    finals, batch_outcomes = {}, {}
    for key, _, run in ORDER_CONTENDERS:
        _, finals[key], outcomes = run(orders, events)
        if outcomes is not None:
            batch_outcomes[key] = outcomes
    counts = verify(orders, events, finals, batch_outcomes)
    log("all contenders ended identical")

    base = best["python"]
    rows = []
    for key, label, _ in ORDER_CONTENDERS:
        ns = best[key]
        rows.append({
            "key": key, "label": label, "best_ns": ns, "ns_per_event": ns / len(events),
            "events_per_s": len(events) * 1e9 / ns, "x_python": base / ns,
        })
    meta = {"orders": n, "events": len(events), "seed": seed, "repeat": repeat, "other_cpu_cores": other, **counts}
    return {"title": "order state machine", "meta": meta, "rows": rows}


def print_section(sec: dict) -> None:
    m = sec["meta"]
    print(f"== {sec['title']}: {m['orders']:,} orders, {m['events']:,} events "
          f"({m['applied']:,} applied transitions, {m['ignored']:,} ignored duplicates), best of {m['repeat']}")
    print("   final states: " + ", ".join(f"{k} {v:,}" for k, v in m["final_states"].items())
          + "  |  all contenders identical (every order view, exposure, batch outcomes)")
    oc = m.get("other_cpu_cores")
    if oc is not None:
        print(f"   other processes used {oc:.2f} cores on average" + ("  ** WARNING: machine busy, timings inflated **" if oc > 0.15 else ""))
    print(f"   {'contender':46s} {'best ms':>10s} {'ns/event':>10s} {'events/s':>14s} {'x python':>9s}")
    for r in sec["rows"]:
        print(f"   {r['label']:46s} {r['best_ns'] / 1e6:10.1f} {r['ns_per_event']:10.0f} {r['events_per_s']:14,.0f} {r['x_python']:9.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="orders in the workload (default 100,000)")
    ap.add_argument("--repeat", type=int, default=5, help="best of N rounds (default 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = ap.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        ap.error("--n and --repeat must be at least 1")

    load_start = os.getloadavg()
    # Sections run in order; a tracker section can be appended here with the same shape.
    sections = [bench_orders(args.n, args.seed, args.repeat)]
    header = {
        "python": platform.python_version(), "machine": platform.machine(), "ncpu": os.cpu_count(),
        "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
    }
    if args.json:
        print(json.dumps({"header": header, "sections": sections}, indent=2))
        return 0
    print(f"mixmaker orders benchmark  |  CPython {header['python']}, {header['ncpu']} cores  |  "
          f"load avg (1 min) {load_start[0]:.2f} at start, {header['loadavg_end'][0]:.2f} at end")
    for sec in sections:
        print()
        print_section(sec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
