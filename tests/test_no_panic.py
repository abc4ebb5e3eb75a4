"""No panic from outside input, kept so.

Hypothesis drives every entry point of the Rust extension with random bytes, with bytes mutated
from the recordings (and the synthetic feed, so the module runs without data files), and with
out-of-range arguments. Only the project's typed errors (`MixmakerError` and its subclasses) may
come out: no pyo3 `PanicException` (a `BaseException`), no `OverflowError`, no untyped
`ValueError`. A `BookSync` never reports SYNCED over a crossed or locked book, and never raises
on bad bytes at all (it desyncs and counts them).
"""

from __future__ import annotations

import random
from decimal import Decimal
from functools import lru_cache
from itertools import islice
from typing import Any, Callable

import numpy as np
import pytest
from conftest import RECORDINGS, VENUES, recording_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixmaker import _core as core
from mixmaker.replay import open_recording, route, synthetic_feed

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RULES = [r.value for r in core.SyncRule.ALL]

# Integers around every boundary the entry points have (i64, u64, u32, scales), and anywhere.
EDGES = [0, 1, -1, 18, 19, 2**31, 2**32 - 1, 2**32, 2**53, 2**62, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1,
         2**64 - 1, 2**64, -(2**64), 10**30, -(10**30)]
ints = st.one_of(st.sampled_from(EDGES), st.integers(-(2**70), 2**70), st.integers(-1000, 10**7))
scales = st.one_of(st.integers(0, 18), st.sampled_from([-1, 19, 25, 2**32, 2**64]))
NUMBER_TOKENS = [b"99999999999999999999", b"-1", b"1e400", b"1e-400", b"0.0000000000000000001", b"-0",
                 b"9223372036854775808", b"18446744073709551616", b"1.5e3", b"NaN", b"", b"00", b"1.", b".5"]


def checked(fn: Callable[..., Any], *args: Any) -> Any:
    """Call `fn`; a typed error is fine (returns None), anything else fails the test."""
    try:
        return fn(*args)
    except core.MixmakerError:
        return None
    except BaseException as e:  # PanicException derives from BaseException
        name = getattr(fn, "__qualname__", repr(fn))
        raise AssertionError(f"{name}{tuple(args)!r:.300} raised {type(e).__name__}: {e}") from e


# --- the corpus: the first messages of each recording (snapshot included) -----------------------


@lru_cache(maxsize=None)
def corpus(key: str) -> tuple[str, int, int, tuple[bytes, ...]]:
    if key == "synthetic":
        feed = synthetic_feed(diffs=400)
        s = feed.spec
        return s.rule, s.price_decimals, s.size_decimals, feed.messages[:400]
    rule, pd, sd = VENUES[key]
    return rule, pd, sd, tuple(islice(open_recording(recording_path(key)).messages(), 400))


CORPORA = ["synthetic", *RECORDINGS]


def mutate(raw: bytes, rnd: random.Random) -> bytes:
    """One small, usually still JSON-shaped change: a digit, a byte, a cut, an extreme number."""
    if not raw:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(8)))
    b = bytearray(raw)
    i = rnd.randrange(len(b))
    kind = rnd.randrange(7)
    if kind == 0:  # another digit: moves a price or size, may cross the book or break a chain
        digits = [k for k in range(len(b)) if 48 <= b[k] <= 57]
        if digits:
            b[rnd.choice(digits)] = rnd.randrange(48, 58)
    elif kind == 1:
        b[i] = rnd.randrange(256)
    elif kind == 2:
        del b[i : i + rnd.randrange(1, 40)]
    elif kind == 3:
        b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 8)))
    elif kind == 4:
        del b[i:]
    elif kind == 5:  # a number token replaced by an extreme or malformed one
        j = i
        while j < len(b) and 48 <= b[j] <= 57:
            j += 1
        b[i:j] = rnd.choice(NUMBER_TOKENS)
    else:  # a quoted value swapped for another one from the same message
        quotes = [k for k in range(len(b)) if b[k] == 34]
        if len(quotes) >= 4:
            a, c = sorted(rnd.sample(range(len(quotes) - 1), 2))
            x, y = bytes(b[quotes[a] : quotes[a + 1]]), bytes(b[quotes[c] : quotes[c + 1]])
            b[quotes[c] : quotes[c + 1]] = x
            b[quotes[a] : quotes[a + 1]] = y
    return bytes(b)


@st.composite
def streams(draw: st.DrawFn, key: str) -> tuple[str, int, int, list[bytes]]:
    """A window of a feed around its snapshot, some messages mutated, dropped, repeated or junk."""
    rule, pd, sd, msgs = corpus(key)
    start = draw(st.integers(0, max(0, len(msgs) - 5)))
    first_snapshot = next((k for k, m in enumerate(msgs) if b"lastUpdateId" in m[:32] or b'"snapshot"' in m[:200]), 0)
    if draw(st.booleans()):
        start = max(0, first_snapshot - draw(st.integers(0, 3)))
    window = list(msgs[start : start + draw(st.integers(1, 60))])
    rnd = random.Random(draw(st.integers(0, 2**32)))
    rate = draw(st.sampled_from([0.0, 0.02, 0.1, 0.5]))
    out: list[bytes] = []
    for m in window:
        r = rnd.random()
        if r < rate:
            out.append(mutate(m, rnd))
        elif r < rate * 1.2:
            out.append(draw(st.binary(max_size=64)))
        elif r < rate * 1.3:
            continue  # dropped
        else:
            out.append(m)
        if rnd.random() < rate * 0.1:
            out.append(m)  # repeated
    if draw(st.booleans()):  # sometimes another venue's rule or scale
        rule = draw(st.sampled_from(RULES))
        pd, sd = draw(st.integers(0, 18)), draw(st.integers(0, 18))
    return rule, pd, sd, out


def assert_synced_book_is_sane(sync: core.BookSync) -> None:
    book = sync.book
    assert sync.state is core.BookState.SYNCED and book.is_ready
    assert not book.is_crossed, f"SYNCED over a crossed book: {book!r}"
    bid, ask = book.best_bid_raw(), book.best_ask_raw()
    if bid is not None and ask is not None:
        assert bid[0] < ask[0], f"SYNCED with best bid {bid} >= best ask {ask}"
    assert len(book.bids_raw()) == book.bid_levels and len(book.asks_raw()) == book.ask_levels
    for is_bid in (True, False):
        checked(book.vwap_for_volume, is_bid, 1)
        checked(book.price_for_volume, is_bid, 1)
    book.top(3), book.top_raw(3), book.mid(), book.spread()


# --- the properties --------------------------------------------------------------------------


@pytest.mark.parametrize("key", CORPORA)
@SETTINGS
@given(data=st.data())
def test_sync_takes_any_bytes_and_never_reports_a_crossed_book(key: str, data: st.DataObject) -> None:
    corpus(key)  # skips (with the reason) when the recording is absent
    rule, pd, sd, stream = data.draw(streams(key))
    sync = core.BookSync(rule, pd, sd, data.draw(st.integers(1, 64)))
    for raw in stream:
        # Right entry point or not, bad bytes desync and are counted; they never raise.
        state = sync.on_snapshot(raw) if data.draw(st.integers(0, 19)) == 0 else route(sync, raw)
        assert state is sync.state and isinstance(state, core.BookState)
        if state is core.BookState.SYNCED:
            assert_synced_book_is_sane(sync)
        else:
            assert sync.book.best_bid() is None and sync.book.bids(5) == []
    stats = sync.stats
    assert stats.snapshots_rejected >= 0 and stats.as_dict()["parse_errors"] == stats.parse_errors


levels = st.lists(
    st.tuples(
        st.one_of(ints, st.decimals(allow_nan=True), st.floats(), st.text(max_size=12)),
        st.one_of(ints, st.decimals(allow_nan=True), st.floats(), st.text(max_size=12)),
    ),
    max_size=6,
)


@SETTINGS
@given(rule=st.sampled_from(RULES), pd=scales, sd=scales, max_buffer=ints, update_id=ints, bids=levels, asks=levels)
def test_sync_snapshot_levels_and_arguments(rule, pd, sd, max_buffer, update_id, bids, asks) -> None:
    sync = checked(core.BookSync, rule, pd, sd, max_buffer)
    if sync is None:
        return
    state = checked(sync.on_snapshot_levels, bids, asks, update_id)
    if state is core.BookState.SYNCED:
        assert_synced_book_is_sane(sync)


@pytest.mark.parametrize("key", CORPORA)
@SETTINGS
@given(data=st.data(), pd=scales, sd=scales)
def test_parsers_take_any_bytes_and_scales(key: str, data: st.DataObject, pd, sd) -> None:
    _, _, _, msgs = corpus(key)
    raw = data.draw(st.one_of(st.binary(max_size=200), st.sampled_from(msgs)))
    if data.draw(st.booleans()):
        raw = mutate(raw, random.Random(data.draw(st.integers(0, 2**32))))
    checked(core.parse_book_ticker, raw, pd, sd)
    ticker = b'{"e":"bookTicker","u":%d,"s":"X","b":"%s","B":"1","a":"2","A":"1"}' % (
        data.draw(ints), data.draw(st.sampled_from(NUMBER_TOKENS)))
    checked(core.parse_book_ticker, ticker, pd, sd)
    text = data.draw(st.one_of(st.text(max_size=30), st.sampled_from(NUMBER_TOKENS).map(bytes.decode)))
    checked(core.parse_decimal, text, pd)


numbers = st.one_of(ints, st.decimals(allow_nan=True), st.floats(), st.text(max_size=12),
                    st.sampled_from(NUMBER_TOKENS).map(bytes.decode))


@SETTINGS
@given(pd=scales, sd=scales, ops=st.lists(st.tuples(st.integers(0, 12), ints, ints, numbers, st.booleans()), max_size=30))
def test_book_methods_take_any_numbers(pd, sd, ops) -> None:
    book = checked(core.OrderBook, pd, sd)
    if book is None:
        return
    for op, a, b, x, is_bid in ops:
        if op == 0:
            checked(book.update_raw, is_bid, a, b)
        elif op == 1:
            checked(book.update, is_bid, x, b)
        elif op == 2:
            checked(book.update, is_bid, a, x)
        elif op == 3:
            checked(book.apply_snapshot, [(a, b)], [(x, 1)], b)
        elif op == 4:
            n = abs(a) % 20
            p = np.array([a, b, -b, a // 3][: max(1, n % 4)] * 3, dtype=object)
            try:
                prices = p.astype(np.int64)
            except OverflowError:
                prices = np.array([0, 1, 2][: len(p)] * (len(p) // 3 + 1), np.int64)[: len(p)]
            sizes = np.abs(prices % 1000)
            checked(book.update_many, np.array([k % 2 == 0 for k in range(len(prices))]), prices, sizes)
        elif op == 5:
            checked(book.bids, a)
            checked(book.asks_raw, b)
        elif op == 6:
            checked(book.top, a)
            checked(book.top_raw, b)
        elif op == 7:
            checked(book.volume_to_price, is_bid, x)
        elif op == 8:
            checked(book.price_for_volume, is_bid, x)
        elif op == 9:
            checked(book.vwap_for_volume, is_bid, x)
        elif op == 10:
            checked(book.to_price_raw, x)
            checked(book.to_size_raw, x)
        elif op == 11:
            book.mid(), book.spread(), book.best_bid(), book.best_ask(), repr(book)
        else:
            book.clear()
        assert book.bid_levels == len(book.bids_raw()) and book.ask_levels == len(book.asks_raw())


names = st.one_of(st.sampled_from([e.value for e in core.OrderEvent.ALL] + ["buy", "sell", "nope", ""]),
                  st.sampled_from(list(core.OrderEvent.ALL) + list(core.Side.ALL)), st.text(max_size=6))


@SETTINGS
@given(ops=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["c1", "c2", "c3"]), names, ints, ints, ints),
                    max_size=30))
def test_orders_take_any_numbers_and_names(ops) -> None:
    orders = core.OrderSet()
    for op, cid, name, a, b, c in ops:
        if op == 0:
            checked(orders.add, cid, "BTCUSDT", name, a, b, c)
        elif op == 1:
            checked(orders.apply, cid, name, "E" + cid, f"t{a % 7}", a, b, c, "USDT", bool(c % 2))
        elif op == 2:
            checked(orders.apply_many, [(cid, name, "E" + cid, f"t{b % 7}", a, b, c, "", False), (None, name, "E" + cid, None, a, a, a, "", True)])
        elif op == 3:
            checked(orders.exposure, "BTCUSDT")
        elif op == 4:
            view = orders.get(cid)
            if view is not None:
                assert view.state in core.OrderState.ALL and view.side in core.Side.ALL
                assert orders.state(cid) is view.state and repr(view)
        else:
            checked(orders.forget, cid)
    orders.live_ids(), orders.ids(), repr(orders)


@SETTINGS
@given(prefix=st.text(max_size=20), max_len=ints, instance=st.one_of(st.none(), st.text(max_size=6)), start=ints,
       nows=st.lists(st.one_of(st.none(), ints), max_size=5))
def test_client_ids_take_any_numbers(prefix, max_len, instance, start, nows) -> None:
    gen = checked(core.ClientIdGenerator, prefix, max_len, instance, start)
    if gen is None:
        return
    last = gen.last
    for now in nows:
        cid = checked(gen.next, now)
        if cid is not None:
            assert gen.last > last and gen.is_ours(cid) and gen.nonce_of(cid) == gen.last
            last = gen.last


def test_decimals_from_python_numbers_are_exact_or_typed_errors() -> None:
    """A few named cases the strategies above reach only by chance."""
    book = core.OrderBook(2, 3)
    for bad in (float("nan"), float("inf"), Decimal("sNaN"), Decimal("-Infinity"), "1e999999999", 2**200):
        with pytest.raises(core.DecimalFormatError):
            book.update(True, bad, 1)
    with pytest.raises(core.ArgumentError):
        core.parse_book_ticker(b"{}", 2**40, 0)
