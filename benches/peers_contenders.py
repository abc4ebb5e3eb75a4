"""Contenders for benches/peers.py.

Every contender has a `setup(w)` that returns a fresh book already holding the workload's
snapshot (never timed) and a `run(state, w, bbo)` that is timed. "bytes" paths start from the
raw WebSocket bytes (parse + apply); "apply" paths start from data pre-parsed outside the timed
region. With `bbo=True` a bytes path also reads the best bid and ask after every message
(what a quoting loop does); that variant is reported in its own column.

Peers are used the way their own code uses them, giving each the cheapest reasonable Python
loop (methods bound to locals, floats rather than Decimal where the peer accepts both):
- ccxt 4.5.90 `binance.handle_delta` does `bookside.store(safe_float(d, 0), safe_float(d, 1))`;
  here `store(float(p), float(q))` (no safe_float overhead, which favours ccxt).
- NautilusTrader's Binance adapter (`BinanceOrderBookDelta.parse_to_order_book_delta`) builds
  `BookOrder(side, Price.from_str(p), Quantity.from_str(q), 0)` and an `OrderBookDelta` per level
  (it calls Quantity.from_str twice; here once), then the book applies `OrderBookDeltas`.
- bmoscon `order-book`: `side[price] = size`, `del side[price]` when present.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import orjson

loads = orjson.loads


@dataclass
class Contender:
    key: str
    label: str
    lib: str          # "mixmaker", "ccxt", "bmoscon", "nautilus", "sortedcontainers", "orjson"
    mode: str         # "parse" (no book), "bytes" (parse+apply), "apply" (pre-parsed)
    setup: Callable[[Any], Any]
    run: Callable[[Any, Any, bool], None]
    check: Callable[[Any], tuple] | None = None   # -> (bid_px, bid_sz, ask_px, ask_sz, n_bids, n_asks) floats/ints
    supports_bbo: bool = False
    recording_only: bool = False
    units: str = "diffs"   # "diffs": the workload's depth messages; "lines": every line of the file
    extra_check: Callable[[Any, Any], str | None] | None = None  # (state, workload) -> error text or None


def _none(_w):
    return None


# --------------------------------------------------------------------------------------- orjson
def orjson_contenders() -> list[Contender]:
    def run(_s, w, _bbo):
        for raw in w.msgs:
            loads(raw)

    def run_lines(_s, w, _bbo):
        for raw in w.all_lines:
            loads(raw)

    return [
        Contender("orjson", "orjson.loads only (no book)", "orjson", "parse", _none, run),
        Contender("orjson_lines", "orjson.loads, every line of the file", "orjson", "parse", _none, run_lines,
                  recording_only=True, units="lines"),
    ]


# ------------------------------------------------------------------------------------- mixmaker
def mixmaker_contenders(mb) -> list[Contender]:
    PD, SD = 2, 3

    def mm_check(ob):
        b, a = ob.best_bid(), ob.best_ask()
        return (b[0], b[1], a[0], a[1], ob.bid_levels, ob.ask_levels)

    # raw bytes through BookSync ---------------------------------------------------------
    def sync_setup(w):
        s = mb.BookSync(rule="binance_futures", price_decimals=PD, size_decimals=SD)
        s.on_snapshot(w.snapshot_raw)
        return s

    def sync_run(s, w, bbo):
        on = s.on_message
        if bbo:
            book = s.book
            bb, ba = book.best_bid, book.best_ask
            for raw in w.msgs:
                on(raw)
                bb()
                ba()
        else:
            for raw in w.msgs:
                on(raw)

    def sync_extra(s, w):
        st = s.stats
        errs = []
        if s.state != mb.BookState.SYNCED:
            errs.append(f"state={s.state.name} reason={s.desync_reason}")
        if st.applied != len(w.msgs):
            errs.append(f"applied={st.applied} expected {len(w.msgs)}")
        if st.gaps or st.parse_errors or st.crossed:
            errs.append(f"gaps={st.gaps} parse_errors={st.parse_errors} crossed={st.crossed}")
        return "; ".join(errs) or None

    def full_setup(w):
        return mb.BookSync(rule="binance_futures", price_decimals=PD, size_decimals=SD)

    def full_run(s, w, _bbo):
        on, snap = s.on_message, s.on_snapshot
        si = w.snapshot_index
        lines = w.all_lines
        for raw in lines[:si]:
            on(raw)
        snap(lines[si])
        for raw in lines[si + 1:]:
            on(raw)

    def full_extra(s, w):
        st = s.stats
        if s.state != mb.BookState.SYNCED or st.gaps or st.parse_errors:
            return f"state={s.state.name} stats={st.as_dict()}"
        return None

    # plain OrderBook paths ----------------------------------------------------------------
    def ob_setup(w):
        ob = mb.OrderBook(PD, SD)
        # apply_snapshot takes (price, size) tuples; JSON gives 2-lists, which it rejects (TypeError)
        ob.apply_snapshot([tuple(x) for x in w.snap_bids], [tuple(x) for x in w.snap_asks], w.last_update_id)
        return ob

    def str_run(ob, w, bbo):
        upd = ob.update
        bb, ba = ob.best_bid, ob.best_ask
        for raw in w.msgs:
            d = loads(raw)["data"]
            for p, q in d["b"]:
                upd(True, p, q)
            for p, q in d["a"]:
                upd(False, p, q)
            if bbo:
                bb()
                ba()

    def raw_bytes_run(ob, w, bbo):
        upd = ob.update_raw
        bb, ba = ob.best_bid, ob.best_ask
        for raw in w.msgs:
            d = loads(raw)["data"]
            for p, q in d["b"]:
                upd(True, int(p.replace(".", "")), int(q.replace(".", "")))
            for p, q in d["a"]:
                upd(False, int(p.replace(".", "")), int(q.replace(".", "")))
            if bbo:
                bb()
                ba()

    def raw_apply_setup(w):
        w.levels_int()
        return ob_setup(w)

    def raw_apply_run(ob, w, _bbo):
        upd = ob.update_raw
        for b, p, q in w.levels_int():
            upd(b, p, q)

    def many_bytes_run(ob, w, bbo):
        import numpy as np

        um = ob.update_many
        fromiter, zeros, i64, i8 = np.fromiter, np.zeros, np.int64, np.int8
        bb, ba = ob.best_bid, ob.best_ask
        for raw in w.msgs:
            d = loads(raw)["data"]
            lv = d["b"] + d["a"]
            n = len(lv)
            side = zeros(n, i8)
            side[: len(d["b"])] = 1
            um(side,
               fromiter([int(p.replace(".", "")) for p, _ in lv], i64, n),
               fromiter([int(q.replace(".", "")) for _, q in lv], i64, n))
            if bbo:
                bb()
                ba()

    def many_apply_setup(w):
        w.msg_arrays()
        return ob_setup(w)

    def many_apply_run(ob, w, _bbo):
        um = ob.update_many
        for s, p, q in w.msg_arrays():
            um(s, p, q)

    def batch_setup(w):
        ob = ob_setup(w)
        return (ob, w.batch_arrays())

    def batch_run(st, w, _bbo):
        ob, (s, p, q) = st
        ob.update_many(s, p, q)

    return [
        Contender("mm_raw", "mixmaker BookSync.on_message(raw)", "mixmaker", "bytes", sync_setup, sync_run,
                  lambda s: mm_check(s.book), supports_bbo=True, extra_check=sync_extra),
        Contender("mm_full", "mixmaker BookSync, every line of the file", "mixmaker", "bytes", full_setup, full_run,
                  lambda s: mm_check(s.book), recording_only=True, units="lines", extra_check=full_extra),
        Contender("mm_str", "mixmaker orjson + update(str)", "mixmaker", "bytes", ob_setup, str_run,
                  mm_check, supports_bbo=True),
        Contender("mm_update_raw_b", "mixmaker orjson + int() + update_raw", "mixmaker", "bytes", ob_setup,
                  raw_bytes_run, mm_check, supports_bbo=True),
        Contender("mm_update_raw", "mixmaker update_raw per level", "mixmaker", "apply", raw_apply_setup,
                  raw_apply_run, mm_check),
        Contender("mm_many_msg_b", "mixmaker orjson + numpy + update_many/msg", "mixmaker", "bytes", ob_setup,
                  many_bytes_run, mm_check, supports_bbo=True),
        Contender("mm_many_msg", "mixmaker update_many per message", "mixmaker", "apply", many_apply_setup,
                  many_apply_run, mm_check),
        Contender("mm_many_batch", "mixmaker update_many, one batch", "mixmaker", "apply", batch_setup,
                  batch_run, lambda st: mm_check(st[0])),
    ]


# ----------------------------------------------------------------------------------------- ccxt
def ccxt_contenders() -> list[Contender]:
    from ccxt.async_support.base.ws.order_book import OrderBook

    def setup(w):
        return OrderBook({
            "bids": [[float(p), float(q)] for p, q in w.snap_bids],
            "asks": [[float(p), float(q)] for p, q in w.snap_asks],
            "nonce": w.last_update_id,
        })

    def bytes_run(book, w, bbo):
        bids, asks = book["bids"], book["asks"]
        bstore, astore = bids.store, asks.store
        for raw in w.msgs:
            d = loads(raw)["data"]
            for p, q in d["a"]:
                astore(float(p), float(q))
            for p, q in d["b"]:
                bstore(float(p), float(q))
            book["nonce"] = d["u"]
            if bbo:
                bids[0]
                asks[0]

    def apply_setup(w):
        w.levels_float()
        return setup(w)

    def apply_run(book, w, _bbo):
        stores = (book["asks"].store, book["bids"].store)
        for b, p, q in w.levels_float():
            stores[b](p, q)

    def check(book):
        b, a = book["bids"][0], book["asks"][0]
        return (b[0], b[1], a[0], a[1], len(book["bids"]), len(book["asks"]))

    return [
        Contender("ccxt_b", "ccxt OrderBookSide: orjson + float + store", "ccxt", "bytes", setup, bytes_run, check,
                  supports_bbo=True),
        Contender("ccxt", "ccxt OrderBookSide.store per level", "ccxt", "apply", apply_setup, apply_run, check),
    ]


# -------------------------------------------------------------------------------------- bmoscon
def bmoscon_contenders() -> list[Contender]:
    from order_book import OrderBook

    def setup(w):
        ob = OrderBook()
        bids, asks = ob.bids, ob.asks
        for p, q in w.snap_bids:
            bids[float(p)] = float(q)
        for p, q in w.snap_asks:
            asks[float(p)] = float(q)
        return ob

    def bytes_run(ob, w, bbo):
        bids, asks = ob.bids, ob.asks
        for raw in w.msgs:
            d = loads(raw)["data"]
            for p, q in d["b"]:
                p = float(p)
                q = float(q)
                if q:
                    bids[p] = q
                elif p in bids:
                    del bids[p]
            for p, q in d["a"]:
                p = float(p)
                q = float(q)
                if q:
                    asks[p] = q
                elif p in asks:
                    del asks[p]
            if bbo:
                bids.index(0)
                asks.index(0)

    def apply_setup(w):
        w.levels_float()
        return setup(w)

    def apply_run(ob, w, _bbo):
        sides = (ob.asks, ob.bids)
        for b, p, q in w.levels_float():
            side = sides[b]
            if q:
                side[p] = q
            elif p in side:
                del side[p]

    def check(ob):
        b, a = ob.bids.index(0), ob.asks.index(0)
        return (b[0], b[1], a[0], a[1], len(ob.bids), len(ob.asks))

    return [
        Contender("bmoscon_b", "bmoscon order-book: orjson + float + []=", "bmoscon", "bytes", setup, bytes_run,
                  check, supports_bbo=True),
        Contender("bmoscon", "bmoscon order-book side[p]=s per level", "bmoscon", "apply", apply_setup,
                  apply_run, check),
    ]


# ------------------------------------------------------------------------------------- nautilus
def nautilus_contenders() -> list[Contender]:
    from nautilus_trader.model.book import OrderBook
    from nautilus_trader.model.data import BookOrder, OrderBookDelta, OrderBookDeltas
    from nautilus_trader.model.enums import BookAction, BookType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.objects import FIXED_PRECISION, Price, Quantity

    iid = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    UPDATE, DELETE = BookAction.UPDATE, BookAction.DELETE
    BUY, SELL = OrderSide.BUY, OrderSide.SELL
    PD, SD = 2, 3
    pmul, smul = 10 ** (FIXED_PRECISION - PD), 10 ** (FIXED_PRECISION - SD)
    from_raw = OrderBookDelta.from_raw

    def raw_delta(side, p, q, seq):
        pi, qi = int(p.replace(".", "")), int(q.replace(".", ""))
        return from_raw(iid, UPDATE if qi else DELETE, side, pi * pmul, PD, qi * smul, SD, 0, 0, seq, 0, 0)

    snap_cache: dict[int, Any] = {}

    def setup(w):
        key = id(w)
        if key not in snap_cache:
            ds = [raw_delta(BUY, p, q, w.last_update_id) for p, q in w.snap_bids]
            ds += [raw_delta(SELL, p, q, w.last_update_id) for p, q in w.snap_asks]
            snap_cache[key] = ds
        book = OrderBook(iid, BookType.L2_MBP)
        book.apply_deltas(OrderBookDeltas(iid, snap_cache[key]))
        return book

    def bytes_run(book, w, bbo):
        apply = book.apply_deltas
        p_from, q_from = Price.from_str, Quantity.from_str
        bbp, bap = book.best_bid_price, book.best_ask_price
        bbs, bas = book.best_bid_size, book.best_ask_size
        for raw in w.msgs:
            d = loads(raw)["data"]
            seq = d["u"]
            ts = d["T"] * 1_000_000
            deltas = []
            ap = deltas.append
            for p, q in d["b"]:
                size = q_from(q)
                ap(OrderBookDelta(iid, UPDATE if size.raw else DELETE, BookOrder(BUY, p_from(p), size, 0),
                                  0, seq, ts, ts))
            for p, q in d["a"]:
                size = q_from(q)
                ap(OrderBookDelta(iid, UPDATE if size.raw else DELETE, BookOrder(SELL, p_from(p), size, 0),
                                  0, seq, ts, ts))
            if deltas:
                apply(OrderBookDeltas(iid, deltas))
            if bbo:
                bbp()
                bbs()
                bap()
                bas()

    prebuilt: dict[int, list] = {}

    def apply_setup(w):
        key = id(w)
        if key not in prebuilt:
            out = []
            for b, a, u, _e in w.parsed:
                ds = [raw_delta(BUY, p, q, u) for p, q in b] + [raw_delta(SELL, p, q, u) for p, q in a]
                if ds:
                    out.append(OrderBookDeltas(iid, ds))
            prebuilt.clear()
            prebuilt[key] = out
        return setup(w)

    def apply_run(book, w, _bbo):
        apply = book.apply_deltas
        for ds in prebuilt[id(w)]:
            apply(ds)

    def check(book):
        return (float(book.best_bid_price()), float(book.best_bid_size()), float(book.best_ask_price()),
                float(book.best_ask_size()), len(book.bids()), len(book.asks()))

    def cleanup():
        prebuilt.clear()

    c1 = Contender("nautilus_b", "NautilusTrader: orjson + from_str + deltas", "nautilus", "bytes", setup,
                   bytes_run, check, supports_bbo=True)
    c2 = Contender("nautilus", "NautilusTrader apply_deltas (prebuilt)", "nautilus", "apply", apply_setup,
                   apply_run, check)
    c2.cleanup = cleanup  # type: ignore[attr-defined]
    return [c1, c2]


# ----------------------------------------------------------------------------- sortedcontainers
def sortedcontainers_contenders() -> list[Contender]:
    from sortedcontainers import SortedDict

    def setup(w):
        return (SortedDict({float(p): float(q) for p, q in w.snap_bids}),
                SortedDict({float(p): float(q) for p, q in w.snap_asks}))

    def bytes_run(st, w, bbo):
        bids, asks = st
        bpop, apop = bids.pop, asks.pop
        for raw in w.msgs:
            d = loads(raw)["data"]
            for p, q in d["b"]:
                q = float(q)
                if q:
                    bids[float(p)] = q
                else:
                    bpop(float(p), None)
            for p, q in d["a"]:
                q = float(q)
                if q:
                    asks[float(p)] = q
                else:
                    apop(float(p), None)
            if bbo:
                bids.peekitem(-1)
                asks.peekitem(0)

    def apply_setup(w):
        w.levels_float()
        return setup(w)

    def apply_run(st, w, _bbo):
        sides = (st[1], st[0])
        for b, p, q in w.levels_float():
            side = sides[b]
            if q:
                side[p] = q
            else:
                side.pop(p, None)

    def check(st):
        bids, asks = st
        b, a = bids.peekitem(-1), asks.peekitem(0)
        return (b[0], b[1], a[0], a[1], len(bids), len(asks))

    return [
        Contender("sorted_b", "SortedDict (pure Python): orjson + float", "sortedcontainers", "bytes", setup,
                  bytes_run, check, supports_bbo=True),
        Contender("sorted", "SortedDict (pure Python) per level", "sortedcontainers", "apply", apply_setup,
                  apply_run, check),
    ]
