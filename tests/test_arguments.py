"""Out-of-range arguments to every entry point of the Rust extension raise the project's typed
errors (all under `MixmakerError`, all `ValueError`s), never pyo3's `PanicException` (a
`BaseException`), a bare `OverflowError` or an untyped `ValueError`.

Each row is (entry point, call, the error class it must raise). Scales must be 0..=18; counts,
ids and update ids must be non-negative and fit their type; scaled prices and sizes must fit an
i64 (a `DecimalFormatError`, like any other bad amount); order numbers are `OrderInputError`s and
client-id settings `ClientIdError`s. `ArgumentError` is the root of all of them.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from mixmaker import _core as core

BIG = 2**63  # one past i64::MAX
HUGE = 2**64  # one past u64::MAX
NEG = -1

TICKER = b'{"e":"bookTicker","u":1,"s":"BTCUSDT","b":"1.00","B":"1","a":"2.00","A":"1"}'


def book() -> core.OrderBook:
    return core.OrderBook(2, 3)


def sync() -> core.BookSync:
    return core.BookSync("binance_futures", 2, 3)


def orders() -> core.OrderSet:
    s = core.OrderSet()
    s.add("c1", "BTCUSDT", "buy", 100, 5)
    return s


def ids(**kw: Any) -> core.ClientIdGenerator:
    return core.ClientIdGenerator("mm", 32, "abcd", **kw)


def exposure_overflow() -> None:
    s = core.OrderSet()
    for i in range(3):  # three orders of i64::MAX x i64::MAX: the notional passes i128
        s.add(f"c{i}", "BTCUSDT", "buy", BIG - 1, BIG - 1)
    s.exposure("BTCUSDT")


def exhausted_ids() -> None:
    ids(start_after=HUGE - 1).next(1)


A, D, O, C = "ArgumentError", "DecimalFormatError", "OrderInputError", "ClientIdError"

CASES: list[tuple[str, Callable[[], object], str]] = [
    # OrderBook
    ("OrderBook(price_decimals=19)", lambda: core.OrderBook(19, 3), A),
    ("OrderBook(price_decimals=-1)", lambda: core.OrderBook(NEG, 3), A),
    ("OrderBook(size_decimals=2**40)", lambda: core.OrderBook(2, 2**40), A),
    ("OrderBook(size_decimals=2**64)", lambda: core.OrderBook(2, HUGE), A),
    ("apply_snapshot(update_id=-1)", lambda: book().apply_snapshot([], [], NEG), A),
    ("apply_snapshot(update_id=2**64)", lambda: book().apply_snapshot([], [], HUGE), A),
    ("apply_snapshot(price=2**63)", lambda: book().apply_snapshot([(BIG, 1)], []), D),
    ("update(price=2**63)", lambda: book().update(True, BIG, 1), D),
    ("update(price='1e400')", lambda: book().update(True, "1e400", 1), D),
    ("update_raw(price=2**63)", lambda: book().update_raw(True, BIG, 1), D),
    ("update_raw(price=-2**63-1)", lambda: book().update_raw(True, -BIG - 1, 1), D),
    ("update_raw(size=2**64)", lambda: book().update_raw(True, 1, HUGE), D),
    ("update_raw(size=-1)", lambda: book().update_raw(True, 1, NEG), D),
    (
        "update_many(lengths differ)",
        lambda: book().update_many(np.array([True]), np.array([1, 2], np.int64), np.array([1], np.int64)),
        A,
    ),
    (
        "update_many(size=-1)",
        lambda: book().update_many(np.array([True]), np.array([1], np.int64), np.array([-1], np.int64)),
        D,
    ),
    ("bids(n=-1)", lambda: book().bids(NEG), A),
    ("asks(n=2**64)", lambda: book().asks(HUGE), A),
    ("bids_raw(n=-1)", lambda: book().bids_raw(NEG), A),
    ("asks_raw(n=-1)", lambda: book().asks_raw(NEG), A),
    ("top(n=-1)", lambda: book().top(NEG), A),
    ("top_raw(n=2**64)", lambda: book().top_raw(HUGE), A),
    ("volume_to_price(price=2**63)", lambda: book().volume_to_price(True, BIG), D),
    ("price_for_volume(volume=-1)", lambda: book().price_for_volume(True, NEG), D),
    ("vwap_for_volume(volume=2**63)", lambda: book().vwap_for_volume(False, BIG), D),
    ("to_price_raw(2**63)", lambda: book().to_price_raw(BIG), D),
    ("to_size_raw(-1)", lambda: book().to_size_raw(NEG), D),
    # BookSync
    ("BookSync(price_decimals=19)", lambda: core.BookSync("binance_futures", 19, 3), A),
    ("BookSync(size_decimals=-1)", lambda: core.BookSync("binance_futures", 2, NEG), A),
    ("BookSync(max_buffer=-1)", lambda: core.BookSync("binance_futures", 2, 3, NEG), A),
    ("BookSync(max_buffer=0)", lambda: core.BookSync("binance_futures", 2, 3, 0), A),
    ("BookSync(max_buffer=2**64)", lambda: core.BookSync("binance_futures", 2, 3, HUGE), A),
    ("BookSync(rule='nope')", lambda: core.BookSync("nope", 2, 3), A),
    ("on_snapshot_levels(update_id=-1)", lambda: sync().on_snapshot_levels([], [], NEG), A),
    ("on_snapshot_levels(update_id=2**64)", lambda: sync().on_snapshot_levels([], [], HUGE), A),
    ("on_snapshot_levels(price=2**63)", lambda: sync().on_snapshot_levels([(BIG, 1)], [], 1), D),
    # the raw-message helpers
    ("parse_book_ticker(price_decimals=19)", lambda: core.parse_book_ticker(TICKER, 19, 3), A),
    ("parse_book_ticker(price_decimals=25)", lambda: core.parse_book_ticker(TICKER, 25, 3), A),
    ("parse_book_ticker(size_decimals=-1)", lambda: core.parse_book_ticker(TICKER, 2, NEG), A),
    ("parse_book_ticker(price_decimals=2**32)", lambda: core.parse_book_ticker(TICKER, 2**32, 3), A),
    ("parse_decimal(decimals=19)", lambda: core.parse_decimal("1", 19), A),
    ("parse_decimal(decimals=-1)", lambda: core.parse_decimal("1", NEG), A),
    ("parse_decimal('1e999')", lambda: core.parse_decimal("1e999", 2), D),
    # OrderSet
    ("add(price=2**63)", lambda: core.OrderSet().add("c", "S", "buy", BIG, 1), O),
    ("add(quantity=-2**63-1)", lambda: core.OrderSet().add("c", "S", "buy", 1, -BIG - 1), O),
    ("add(lost_after=-1)", lambda: core.OrderSet().add("c", "S", "buy", 1, 1, NEG), O),
    ("add(lost_after=2**32)", lambda: core.OrderSet().add("c", "S", "buy", 1, 1, 2**32), O),
    ("add(side='up')", lambda: core.OrderSet().add("c", "S", "up", 1, 1), O),
    ("apply(price=2**63)", lambda: orders().apply("c1", "fill", trade_id="t", price=BIG, qty=1), O),
    ("apply(qty=-2**64)", lambda: orders().apply("c1", "fill", trade_id="t", price=1, qty=-HUGE), O),
    ("apply(fee=2**63)", lambda: orders().apply("c1", "fill", trade_id="t", price=1, qty=1, fee=BIG), O),
    ("apply(event='nope')", lambda: orders().apply("c1", "nope"), O),
    ("apply_many(price=2**63)", lambda: orders().apply_many([("c1", "fill", None, "t", BIG, 1, 0, "", False)]), O),
    ("apply_many(fee=-2**64)", lambda: orders().apply_many([("c1", "fill", None, "t", 1, 1, -HUGE, "", False)]), O),
    ("apply_many(event='nope')", lambda: orders().apply_many([("c1", "nope", None, None, 0, 0, 0, "", False)]), O),
    ("apply_many(no ids)", lambda: orders().apply_many([(None, "fill", None, "t", 1, 1, 0, "", False)]), O),
    ("exposure(overflowing notional)", exposure_overflow, O),
    # ClientIdGenerator
    ("ClientIdGenerator(max_len=-1)", lambda: core.ClientIdGenerator("mm", NEG, "abcd"), C),
    ("ClientIdGenerator(max_len=2**64)", lambda: core.ClientIdGenerator("mm", HUGE, "abcd"), C),
    ("ClientIdGenerator(start_after=-1)", lambda: ids(start_after=NEG), C),
    ("ClientIdGenerator(start_after=2**64)", lambda: ids(start_after=HUGE), C),
    ("ClientIdGenerator(start_after=2**64-1).next()", exhausted_ids, C),
    ("next(now_us=-1)", lambda: ids().next(NEG), C),
    ("next(now_us=2**64)", lambda: ids().next(HUGE), C),
]


@pytest.mark.parametrize(("call", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_out_of_range_argument_raises_a_typed_error(call: Callable[[], object], expected: str) -> None:
    try:
        call()
    except BaseException as e:  # PanicException is a BaseException: catch it to name it
        assert type(e).__name__ == expected, f"{type(e).__module__}.{type(e).__name__}: {e}"
        assert isinstance(e, core.MixmakerError) and isinstance(e, ValueError)
        assert isinstance(e, core.ArgumentError)
        assert str(e), "the error says what was wrong"
    else:
        pytest.fail(f"no error; expected {expected}")


def test_in_range_edges_are_accepted() -> None:
    """The checks reject only what is out of range: the edges themselves work."""
    assert core.OrderBook(18, 0).price_decimals == 18
    ob = book()
    ob.update_raw(True, BIG - 1, 1)
    ob.update_raw(False, -BIG, 0)
    ob.apply_snapshot([], [], HUGE - 1)
    assert ob.update_id == HUGE - 1 and ob.bids(0) == [] and ob.top(0)[0].size == 0
    assert core.parse_book_ticker(TICKER, 18, 0) is None or True  # 18 dp: too precise or parsed, no error
    assert core.parse_decimal("1", 18) == 10**18
    s = sync()
    assert s.on_snapshot_levels([("1.00", "1")], [("2.00", "1")], HUGE - 1).name == "SYNCED"
    o = core.OrderSet()
    o.add("c", "S", "sell", BIG - 1, BIG - 1, 2**32 - 1)
    assert o.exposure("S").sell_notional == (BIG - 1) ** 2
    g = ids(start_after=0)
    assert g.next(0) and g.last == 1


def test_argument_error_is_the_root_of_bad_input_errors() -> None:
    for name in ("DecimalFormatError", "OrderInputError", "ClientIdError"):
        cls = getattr(core, name)
        assert issubclass(cls, core.ArgumentError) and issubclass(cls, ValueError)
    assert issubclass(core.ArgumentError, core.MixmakerError)
    assert issubclass(core.OrderInputError, core.OrderError)
