"""Broken streams: a dropped, swapped, truncated or garbage message must desync the book (and
hide it from readers); a fresh snapshot at a later update id must bring it back exactly.

Faults are made from real recordings (USD-M, spot, Bybit) and from the synthetic feed, so the
module runs even without data files. The fresh snapshot comes from the plain-Python reference
book in conftest, never from the core under test.
"""

from __future__ import annotations

import pytest
from conftest import ParsedFeed, assert_book_equals, assert_not_readable

from mixmaker.book import BookState, BookSync
from mixmaker.replay import route

FEEDS = ["synthetic", "usdm", "spot", "bybit"]
FAULTS = ["drop", "swap", "truncate", "garbage"]
GARBAGE = b"\x00\xff\xfe not a message"


def new_sync(feed: ParsedFeed, max_buffer: int = 10_000) -> BookSync:
    return BookSync(feed.rule, feed.price_decimals, feed.size_decimals, max_buffer)


def feed_all(sync: BookSync, messages) -> BookState | None:
    state = None
    for m in messages:
        state = route(sync, m)
    return state


def fault_plan(feed: ParsedFeed, fault: str, k: int) -> tuple[list[bytes], list[bytes], int]:
    """(messages that break the stream, messages after them, where the clean stream resumes)."""
    msgs = feed.messages
    dk, dk1 = feed.applied[k], feed.applied[k + 1]
    between = list(msgs[dk.pos + 1 : dk1.pos])  # tickers/trades between the two diffs
    if fault == "drop":  # diff k never arrives; k+1 does not continue k-1
        return between + [msgs[dk1.pos]], [], dk1.pos + 1
    if fault == "swap":  # k+1 before k
        return [msgs[dk1.pos]], [msgs[dk.pos]] + between, dk1.pos + 1
    if fault == "truncate":  # diff k cut in half: unreadable, and lost
        return [msgs[dk.pos][: len(msgs[dk.pos]) // 2]], [], dk.pos + 1
    if fault == "garbage":  # junk on the wire before diff k
        return [GARBAGE], [], dk.pos
    raise ValueError(fault)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", FEEDS)
def test_fault_desyncs_and_a_later_snapshot_recovers(name, fault, feed_by_name):
    feed = feed_by_name(name)
    msgs = feed.messages
    k = len(feed.applied) // 2
    r = min(k + 20, len(feed.applied) - 2)  # the fresh snapshot is the book after applied[r]
    dk, dr = feed.applied[k], feed.applied[r]
    sync = new_sync(feed)

    assert feed_all(sync, msgs[: dk.pos]) is BookState.SYNCED
    assert_book_equals(sync.book, feed.book_after(k - 1))

    breaking, after, resume = fault_plan(feed, fault, k)
    assert feed_all(sync, breaking) is BookState.DESYNCED
    st = sync.stats
    if fault in ("drop", "swap"):
        assert (st.gaps, st.parse_errors) == (1, 0)
        assert "gap" in sync.desync_reason
    else:
        assert (st.gaps, st.parse_errors) == (0, 1)
        assert "unreadable" in sync.desync_reason
    assert_not_readable(sync.book)

    # Until a snapshot comes, diffs only buffer: still desynced, nothing more is flagged.
    feed_all(sync, after + list(msgs[resume : dr.pos + 1]))
    assert sync.state is BookState.DESYNCED
    assert (sync.stats.gaps, sync.stats.parse_errors) == (st.gaps, st.parse_errors)
    assert_not_readable(sync.book)

    ref = feed.book_after(r)
    assert sync.on_snapshot(feed.snapshot_message(dr.u, ref)) is BookState.SYNCED
    assert sync.stats.resyncs == 1
    assert sync.last_update_id == dr.u
    assert sync.desync_reason is None
    assert_book_equals(sync.book, ref)

    # The live stream continues from the snapshot to the end of the recording.
    assert feed_all(sync, msgs[dr.pos + 1 :]) is BookState.SYNCED, sync.desync_reason
    assert (sync.stats.gaps, sync.stats.resyncs, sync.stats.crossed) == (st.gaps, 1, 0)
    assert_book_equals(sync.book, feed.book_after(len(feed.applied) - 1))


@pytest.mark.parametrize("when", ["at_once", "after_the_next"])
@pytest.mark.parametrize("name", FEEDS)
def test_a_duplicated_diff_is_ignored_as_stale(name, when, feed_by_name):
    # Binance: "u <= local id -> ignore the event"; Bybit: u already seen. The copy carries
    # nothing new (levels are absolute), so it is counted stale and the book stays synced.
    feed = feed_by_name(name)
    msgs = feed.messages
    k = len(feed.applied) // 2
    dk, dk1 = feed.applied[k], feed.applied[k + 1]
    copy_at = dk.pos + 1 if when == "at_once" else dk1.pos + 1
    stream = list(msgs[:copy_at]) + [msgs[dk.pos]] + list(msgs[copy_at:])
    sync = new_sync(feed)

    assert feed_all(sync, stream[: dk1.pos + 2]) is BookState.SYNCED
    assert sync.stats.stale == len(feed.stale) + 1
    assert sync.stats.gaps == 0
    assert_book_equals(sync.book, feed.book_after(k + 1))
    assert feed_all(sync, stream[dk1.pos + 2 :]) is BookState.SYNCED
    assert_book_equals(sync.book, feed.book_after(len(feed.applied) - 1))


@pytest.mark.parametrize("name", ["synthetic", "usdm", "coinm", "spot"])
def test_stale_diffs_before_the_snapshot_are_dropped_not_flagged(name, feed_by_name):
    feed = feed_by_name(name)
    sync = new_sync(feed)
    early = [d for d in feed.applied if d.pos < feed.snapshot_pos]  # buffered, then bridged

    assert feed_all(sync, feed.messages[: feed.snapshot_pos]) is BookState.AWAITING_SNAPSHOT
    assert sync.stats.buffered == len(feed.stale) + len(early)
    assert_not_readable(sync.book)

    assert route(sync, feed.messages[feed.snapshot_pos]) is BookState.SYNCED
    st = sync.stats
    assert st.stale == len(feed.stale) > 0
    assert (st.gaps, st.resyncs, st.snapshots, st.buffered) == (0, 0, 1, 0)
    assert st.applied == len(early)
    assert sync.last_update_id == (early[-1].u if early else feed.snapshot_id)
    assert_book_equals(sync.book, feed.book_after(len(early) - 1))


def test_a_full_buffer_drops_the_oldest_and_counts(synthetic_parsed):
    feed = synthetic_parsed
    sync = new_sync(feed, max_buffer=8)
    for d in feed.applied[:30]:
        assert route(sync, feed.messages[d.pos]) is BookState.AWAITING_SNAPSHOT
    assert (sync.stats.buffer_dropped, sync.stats.buffered) == (22, 8)
    assert_not_readable(sync.book)

    # A snapshot from before the dropped diffs cannot be continued by what is left: refused.
    older = feed.snapshot_message(feed.applied[11].U, feed.book_after(10))
    assert route(sync, older) is not BookState.SYNCED
    assert_not_readable(sync.book)

    # One the kept diffs continue: L inside applied[23] (U <= L <= u), book after applied[22].
    fresh = feed.snapshot_message(feed.applied[23].U, feed.book_after(22))
    assert route(sync, fresh) is BookState.SYNCED
    assert sync.last_update_id == feed.applied[29].u
    assert_book_equals(sync.book, feed.book_after(29))


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"not json at all",
        b"[1,2,3]",
        b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT"',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","b":[],"a":[]}',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["abc","1.000"]],"a":[]}',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["60000.001","1.000"]],"a":[]}',
    ],
    ids=["empty", "text", "array", "cut-json", "no-ids", "bad-price", "finer-than-tick"],
)
def test_unreadable_messages_desync(junk, synthetic_parsed):
    feed = synthetic_parsed
    d = feed.applied[50]
    sync = new_sync(feed)
    assert feed_all(sync, feed.messages[: d.pos]) is BookState.SYNCED
    assert route(sync, junk) is BookState.DESYNCED
    assert sync.stats.parse_errors == 1
    assert_not_readable(sync.book)


@pytest.mark.parametrize(
    "name, ack",
    [
        ("synthetic", b'{"result":null,"id":1}'),
        ("bybit", b'{"success":true,"ret_msg":"","conn_id":"abc","op":"subscribe"}'),
    ],
    ids=["binance-ack", "bybit-ack"],
)
def test_messages_without_book_data_are_ignored(name, ack, feed_by_name):
    feed = feed_by_name(name)
    sync = new_sync(feed)
    feed_all(sync, feed.messages[: feed.applied[10].pos])
    ignored = sync.stats.ignored
    assert route(sync, ack) is BookState.SYNCED
    assert (sync.stats.ignored, sync.stats.parse_errors) == (ignored + 1, 0)
