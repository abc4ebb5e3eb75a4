"""OrderBook: exact values, depth queries, rejection of bad input, and a property test of the
Rust ladder book against a plain dict model."""

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixmaker.book import (
    BookLockedError,
    BookState,
    BookSync,
    DecimalFormatError,
    MessageFormatError,
    MixmakerError,
    OrderBook,
    parse_book_ticker,
    parse_decimal,
)


def small_book() -> OrderBook:
    ob = OrderBook(price_decimals=2, size_decimals=3)
    ob.apply_snapshot(
        bids=[("100.00", "1"), (Decimal("99.90"), 2), (99.8, "3.000")],
        asks=[("100.10", "0.5"), ("100.20", "1.5"), ("100.50", "4")],
        update_id=42,
    )
    return ob


def test_values_are_exact_scaled_integers():
    ob = small_book()
    assert ob.best_bid_raw() == (10_000, 1_000)
    assert ob.best_ask_raw() == (10_010, 500)
    assert ob.best_bid() == (100.0, 1.0)
    assert ob.bids_raw() == [(10_000, 1_000), (9_990, 2_000), (9_980, 3_000)]
    assert ob.asks(2) == [(100.1, 0.5), (100.2, 1.5)]
    assert (ob.bid_levels, ob.ask_levels, ob.update_id) == (3, 3, 42)
    assert ob.to_price_raw("61659.70") == 6_165_970
    assert ob.to_price_raw(0.1) == 10  # a float goes through its shortest repr, not binary noise
    assert ob.to_size_raw("0.00100000") == 1
    assert parse_decimal("61685.99000000", 2) == 6_168_599
    assert parse_decimal("6.1e-05", 8) == 6_100


def test_depth_queries():
    ob = small_book()
    assert ob.mid() == pytest.approx(100.05)
    assert ob.spread() == pytest.approx(0.10)
    assert ob.volume_to_price(True, "99.90") == pytest.approx(3.0)
    assert ob.volume_to_price(False, "100.20") == pytest.approx(2.0)
    assert ob.volume_to_price(False, "100.00") == 0.0
    assert ob.price_for_volume(False, "0.5") == pytest.approx(100.10)
    assert ob.price_for_volume(False, "0.501") == pytest.approx(100.20)
    assert ob.price_for_volume(True, 6) == pytest.approx(99.80)
    assert ob.price_for_volume(True, "6.001") is None
    # Taking 1.0 from the asks: 0.5 @ 100.10 + 0.5 @ 100.20.
    assert ob.vwap_for_volume(False, 1) == pytest.approx(100.15)
    assert ob.vwap_for_volume(True, "6") == pytest.approx((100.0 * 1 + 99.9 * 2 + 99.8 * 3) / 6)
    assert ob.vwap_for_volume(False, 100) is None
    with pytest.raises(DecimalFormatError):
        ob.vwap_for_volume(True, 0)


def test_snapshot_levels_may_be_lists():
    ob = OrderBook(2, 3)
    ob.apply_snapshot([["61800.20", "2.909"]], [["61800.30", "1.000"]], 1)
    assert ob.best_bid_raw() == (6_180_020, 2_909) and ob.best_ask_raw() == (6_180_030, 1_000)


def test_top_arrays():
    ob = small_book()
    bp, bs, ap, asz = ob.top(2)
    assert bp.dtype == np.float64 and list(bp) == [100.0, 99.9] and list(bs) == [1.0, 2.0]
    assert list(ap) == [100.1, 100.2] and list(asz) == [0.5, 1.5]
    rbp, rbs, rap, ras = ob.top_raw(10)
    assert rbp.dtype == np.int64 and list(rbp) == [10_000, 9_990, 9_980] and list(ras) == [500, 1_500, 4_000]


def test_updates_single_raw_and_batch():
    ob = small_book()
    ob.update(True, "100.05", "1.25")
    assert ob.best_bid_raw() == (10_005, 1_250)
    ob.update(True, "100.05", 0)  # size 0 deletes
    ob.update(True, "55.00", 0)  # deleting an absent level is normal
    assert ob.best_bid_raw() == (10_000, 1_000)
    ob.update_raw(False, 10_010, 0)
    assert ob.best_ask_raw() == (10_020, 1_500)
    ob.update_many(np.array([1, 0, 1], dtype=np.int8), np.array([10_001, 10_015, 9_990], dtype=np.int64), np.array([7, 8, 0], dtype=np.int64))
    assert ob.best_bid_raw() == (10_001, 7) and ob.best_ask_raw() == (10_015, 8)
    assert 9_990 not in dict(ob.bids_raw())
    # Strided views work too.
    ob.update_many(np.array([True, True, True, True])[::2], np.arange(9_000, 9_004, dtype=np.int64)[::2], np.array([1, 1, 1, 1], dtype=np.int64)[::2])
    assert dict(ob.bids_raw())[9_002] == 1
    # Any nonzero int8 is a bid (-1 too), strided or not.
    ob.update_many(np.array([-1, 0, 5, 0], dtype=np.int8)[::2], np.array([9_004, 0, 9_006, 0], dtype=np.int64)[::2], np.array([3, 0, 4, 0], dtype=np.int64)[::2])
    ob.update_many(np.array([-1, 2, 0], dtype=np.int8), np.array([9_005, 9_007, 10_016], dtype=np.int64), np.array([5, 6, 9], dtype=np.int64))
    bids = dict(ob.bids_raw())
    assert (bids[9_004], bids[9_005], bids[9_006], bids[9_007], dict(ob.asks_raw())[10_016]) == (3, 5, 4, 6, 9)


def test_crossed_book_is_visible_after_every_write():
    ob = small_book()
    assert not ob.is_crossed
    ob.update(True, "100.10", "1")  # locked: as impossible as crossed on one venue
    assert ob.is_crossed
    ob.update(True, "100.10", "0")
    assert not ob.is_crossed
    ob.update(False, "99", "1")
    assert ob.is_crossed


@pytest.mark.parametrize(
    ("price", "size", "fragment"),
    [
        ("100.001", "1", "past 2 decimals"),
        ("abc", "1", "invalid character"),
        ("", "1", "empty"),
        ("100", "-1", "negative"),
        ("100", "0.0001", "past 3 decimals"),
        ("1e400", "1", "out of range"),
        (float("nan"), "1", "invalid character"),
        (Decimal("NaN"), "1", "invalid character"),
        (10**30, "1", "out of range"),
    ],
)
def test_bad_input_is_a_typed_error_and_changes_nothing(price, size, fragment):
    ob = small_book()
    before = (ob.bids_raw(), ob.asks_raw())
    with pytest.raises(DecimalFormatError, match=fragment) as err:
        ob.update(True, price, size)
    assert isinstance(err.value, ValueError) and isinstance(err.value, MixmakerError)
    assert (ob.bids_raw(), ob.asks_raw()) == before


def test_bad_batches_change_nothing():
    ob = small_book()
    before = ob.bids_raw()
    with pytest.raises(DecimalFormatError):
        ob.update_many(np.array([True, True]), np.array([1, 2], dtype=np.int64), np.array([1, -1], dtype=np.int64))
    with pytest.raises(ValueError, match="differ in length"):
        ob.update_many(np.array([True]), np.array([1, 2], dtype=np.int64), np.array([1, 2], dtype=np.int64))
    with pytest.raises(TypeError):
        ob.update_many(np.array([1.0]), np.array([1], dtype=np.int64), np.array([1], dtype=np.int64))
    with pytest.raises(DecimalFormatError):
        ob.apply_snapshot([("1", "1"), ("2", "-1")], [])
    with pytest.raises(TypeError, match="pair"):
        ob.apply_snapshot([("1",)], [])
    with pytest.raises(TypeError, match="pair"):
        ob.apply_snapshot([5], [])
    with pytest.raises(TypeError):
        ob.update(True, True, 1)
    with pytest.raises(DecimalFormatError):
        ob.update_raw(True, 1, -5)
    assert ob.bids_raw() == before


def test_bad_scales_are_rejected():
    with pytest.raises(ValueError, match="decimals"):
        OrderBook(price_decimals=19, size_decimals=0)
    with pytest.raises(ValueError, match="unknown sync rule"):
        BookSync("kraken", 2, 3)


def test_a_synced_book_is_read_only_and_not_ready_until_synced():
    sync = BookSync("binance_spot", price_decimals=2, size_decimals=8)
    ob = sync.book
    assert sync.state is BookState.AWAITING_SNAPSHOT and not ob.is_ready
    assert ob.best_bid() is None and ob.mid() is None and ob.bids() == [] and len(ob.top(5)[0]) == 0
    assert ob.bid_levels == 0
    with pytest.raises(BookLockedError):
        ob.update(True, "1", "1")
    state = sync.on_snapshot(b'{"lastUpdateId":10,"bids":[["100.00000000","1.00000000"]],"asks":[["100.01000000","2.00000000"]]}')
    assert state is BookState.SYNCED and sync.book is ob and ob.is_ready
    assert ob.best_bid_raw() == (10_000, 100_000_000)
    assert sync.on_message(b"not json") is BookState.DESYNCED
    assert ob.best_bid() is None and ob.bid_levels == 0 and "unreadable" in sync.desync_reason


def test_parsed_snapshot_levels_bridge_buffered_diffs():
    sync = BookSync("binance_futures", price_decimals=2, size_decimals=3)
    diff = b'{"e":"depthUpdate","U":9,"u":12,"pu":8,"b":[["100.05","2"]],"a":[]}'
    assert sync.on_message(diff) is BookState.AWAITING_SNAPSHOT
    # Levels as ccxt hands them out (lists of floats); the buffered diff bridges L=10.
    state = sync.on_snapshot_levels([[100.0, 1.0]], [[100.1, 0.5]], 10)
    assert state is BookState.SYNCED and sync.last_update_id == 12
    assert sync.book.bids_raw() == [(10_005, 2_000), (10_000, 1_000)]
    with pytest.raises(DecimalFormatError):
        sync.on_snapshot_levels([["100.001", "1"]], [], 20)
    assert sync.state is BookState.SYNCED and sync.book.best_bid_raw() == (10_005, 2_000)


def test_book_ticker_parsing():
    t = parse_book_ticker(b'{"stream":"x@bookTicker","data":{"e":"bookTicker","u":7,"b":"1.50","B":"2","a":"1.51","A":"3"}}', 2, 0)
    assert (t.update_id, t.bid_price, t.bid_size, t.ask_price, t.ask_size) == (7, 150, 2, 151, 3)
    assert parse_book_ticker(b'{"e":"trade","p":"1"}', 2, 0) is None
    with pytest.raises(MessageFormatError):
        parse_book_ticker(b'{"u":1,"b":"1.501","B":"1","a":"2","A":"1"}', 2, 0)


# --- property test: the ladder book against a dict model -------------------------------------

WIDE = 1 << 19  # wider than the ladder window, so re-centring and the outside map are exercised

update = st.tuples(
    st.booleans(),
    st.one_of(st.integers(5_000_000, 5_000_400), st.integers(5_000_000 - WIDE, 5_000_000 + WIDE), st.integers(-(2**62), 2**62)),
    st.one_of(st.just(0), st.integers(1, 10**12)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(update, max_size=300), st.booleans())
def test_book_matches_dict_model(updates, batch):
    ob = OrderBook(price_decimals=2, size_decimals=3)
    model = {True: {}, False: {}}
    if batch and updates:
        sides, prices, sizes = zip(*updates)
        ob.update_many(np.array(sides), np.array(prices, dtype=np.int64), np.array(sizes, dtype=np.int64))
    for is_bid, price, size in updates:
        if not batch:
            ob.update_raw(is_bid, price, size)
        if size:
            model[is_bid][price] = size
        else:
            model[is_bid].pop(price, None)
    want_bids = sorted(model[True].items(), reverse=True)
    want_asks = sorted(model[False].items())
    assert ob.bids_raw() == want_bids
    assert ob.asks_raw() == want_asks
    assert ob.best_bid_raw() == (want_bids[0] if want_bids else None)
    assert ob.best_ask_raw() == (want_asks[0] if want_asks else None)
    assert (ob.bid_levels, ob.ask_levels) == (len(want_bids), len(want_asks))
    assert ob.is_crossed == bool(want_bids and want_asks and want_bids[0][0] >= want_asks[0][0])
    if want_asks:
        total = sum(s for _, s in want_asks)
        assert ob.price_for_volume(False, Decimal(total).scaleb(-3)) == pytest.approx(want_asks[-1][0] / 100)
