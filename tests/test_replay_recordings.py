"""Replays of the four real recordings against the data README's reference results, the
synthetic feed against its own truth, and the recording reader's handling of bad files."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import VENUES, assert_book_equals, recording_path, unscaled

from mixmaker.book import OrderBook
from mixmaker._core import SyncRule
from mixmaker.replay import (
    RecordingNotFoundError,
    UnknownVenueError,
    UnreadableRecordingError,
    new_sync,
    open_recording,
    replay,
)

# From ../shared/data/market/README.md, "Results of a reference replay" and the BBO oracle.
# Tickers count when their `u` equals an applied diff's `u`, whichever arrives first (separate
# streams). The README's 126 USD-M cases are those arriving after their diff; 503 more arrive
# before it. The README finds no COIN-M/spot cases because it only looks after the diff: 1,124
# COIN-M and 564 spot tickers arrive before their diff, and all of them match the book too.
EXPECTED = {
    "usdm": dict(stale=4, applied=6547, levels=(5018, 4578), bbo=("61659.70", "61659.80"),
                 sizes=("1.486", "0.981"), tickers=(629, 126)),
    "coinm": dict(stale=23, applied=26824, levels=(1110, 1123), bbo=("61668.6", "61668.7"), tickers=(1124, 0)),
    "spot": dict(stale=2, applied=3449, levels=(1209, 2196), bbo=("61685.99", "61686.00"), tickers=(564, 0)),
    "bybit": dict(stale=0, applied=49, levels=(500, 500), bbo=("1.9537", "1.9538"), tickers=(0, 0)),
}


@pytest.mark.parametrize("key", list(EXPECTED))
def test_recording_replays_to_the_reference_result(key, feed_by_name):
    want = EXPECTED[key]
    rec = open_recording(recording_path(key))
    spec = rec.detect_venue()
    assert (spec.rule.value, spec.price_decimals, spec.size_decimals) == VENUES[key]

    sync = new_sync(spec)
    r = replay(rec.messages(), spec, source=rec.path.name, progress=False, sync=sync)

    assert r.state == "SYNCED", r.desync_reason
    assert (r.gaps, r.crossed, r.parse_errors, r.resyncs) == (0, 0, 0, 0)
    assert (r.stale, r.diffs_applied) == (want["stale"], want["applied"])
    assert (r.bid_levels, r.ask_levels) == want["levels"]
    assert (r.best_bid, r.best_ask) == want["bbo"]
    if "sizes" in want:
        assert (r.best_bid_size, r.best_ask_size) == want["sizes"]
    assert (r.ticker_matches, r.ticker_matches_after_diff, r.ticker_mismatches) == (*want["tickers"], 0)
    assert r.ok and r.problems == []
    # Every level, not only the top: the plain-Python reference replay agrees.
    feed = feed_by_name(key)
    assert_book_equals(sync.book, feed.book_after(len(feed.applied) - 1))


def test_synthetic_feed_replays_to_its_truth(synthetic):
    sync = new_sync(synthetic.spec)
    r = replay(iter(synthetic.messages), synthetic.spec, progress=False, sync=sync)
    assert r.ok, r.problems
    assert (r.stale, r.diffs_applied, r.gaps) == (synthetic.stale_diffs, synthetic.applied_diffs, 0)
    assert (r.ticker_matches, r.ticker_mismatches) == (synthetic.checked_tickers, 0)
    assert synthetic.checked_tickers > 100
    assert sync.book.bids_raw(10_000) == sorted(synthetic.final_bids.items(), reverse=True)
    assert sync.book.asks_raw(10_000) == sorted(synthetic.final_asks.items())


def test_synthetic_feed_is_deterministic():
    from mixmaker.replay import synthetic_feed

    assert synthetic_feed(seed=3, diffs=200).messages == synthetic_feed(seed=3, diffs=200).messages
    assert synthetic_feed(seed=3, diffs=200).messages != synthetic_feed(seed=4, diffs=200).messages


def _corrupt_one_checked_ticker(synthetic_parsed) -> list[bytes]:
    """Change the bid size of one ticker that shares its `u` with an applied diff."""
    live_u = {d.u for d in synthetic_parsed.applied[5:]}
    msgs = list(synthetic_parsed.messages)
    for i, m in enumerate(msgs):
        if b"bookTicker" in m[:40]:
            u = int(m.split(b'"u":', 1)[1].split(b",", 1)[0])
            if u in live_u:
                head, tail = m.split(b'"B":"', 1)
                msgs[i] = head + b'"B":"999.999' + tail[tail.index(b'"'):]
                return msgs
    raise AssertionError("no checked ticker in the synthetic feed")


def test_a_ticker_that_disagrees_with_the_book_is_reported(synthetic, synthetic_parsed):
    r = replay(_corrupt_one_checked_ticker(synthetic_parsed), synthetic.spec, progress=False)
    assert (r.ticker_matches, r.ticker_mismatches) == (synthetic.checked_tickers - 1, 1)
    assert not r.ok and "bookTicker" in r.problems[0]
    (m,) = r.mismatch_examples
    assert m.ticker[1] == 999_999 and m.book[1] != 999_999


# --- the reader -------------------------------------------------------------------------------


@pytest.fixture
def synthetic_lines(synthetic) -> list[bytes]:
    return synthetic.lines()


def test_gzip_is_detected_by_magic_not_by_name(tmp_path: Path, synthetic, synthetic_lines):
    p = tmp_path / "feed.txt"  # a misleading name
    p.write_bytes(gzip.compress(b"\n".join(synthetic_lines) + b"\n"))
    rec = open_recording(p)
    assert rec.container == "gzip"
    assert list(rec.messages()) == list(synthetic.messages)


def test_plain_text_with_and_without_timestamps_and_crlf(tmp_path: Path, synthetic, synthetic_lines):
    lines = [ln if i % 2 else ln.split(b" ", 1)[1] for i, ln in enumerate(synthetic_lines)]
    p = tmp_path / "feed.log"
    p.write_bytes(b"\r\n".join(lines) + b"\r\n\r\n")
    rec = open_recording(p)
    assert rec.container == "plain"
    assert list(rec.messages()) == list(synthetic.messages)
    spec = rec.detect_venue()
    assert (spec.rule, spec.price_decimals, spec.size_decimals) == (SyncRule.BINANCE_FUTURES, 2, 3)


def test_zip_with_one_member(tmp_path: Path, synthetic):
    p = tmp_path / "feed.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("feed.data", b"\n".join(synthetic.messages))
    rec = open_recording(p)
    assert (rec.container, rec.member) == ("zip", "feed.data")
    assert list(rec.messages()) == list(synthetic.messages)


def test_unknown_symbol_takes_decimals_from_string_widths(tmp_path: Path):
    diff = (b'{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":1,"u":2,"pu":0,'
            b'"b":[["2500.12","1.5000"]],"a":[["2500.13","0.0100"]]}')
    p = tmp_path / "eth.txt"
    p.write_bytes(b"1 " + diff + b"\n")
    spec = open_recording(p).detect_venue()
    assert (spec.rule, spec.symbol, spec.price_decimals, spec.size_decimals) == (SyncRule.BINANCE_FUTURES, "ETHUSDT", 2, 4)
    assert "string widths" in spec.source


def test_flags_override_detection(tmp_path: Path, synthetic):
    p = synthetic.write_gzip(tmp_path / "feed.gz")
    spec = open_recording(p).detect_venue(rule="sequential", size_decimals=5)
    assert (spec.rule, spec.price_decimals, spec.size_decimals) == (SyncRule.SEQUENTIAL, 2, 5)
    assert "overridden" in spec.source


@pytest.mark.parametrize(
    "make, error, says",
    [
        (lambda d: d / "absent.gz", RecordingNotFoundError, "no such recording"),
        (lambda d: d, UnreadableRecordingError, "directory"),
        (lambda d: _write(d / "empty.gz", b""), UnreadableRecordingError, "empty"),
        (lambda d: _write(d / "cut.gz", _numbered_lines_gz()[:2000]), UnreadableRecordingError, "line"),
        (lambda d: _write(d / "bad.zip", b"PK\x03\x04 not really a zip"), UnreadableRecordingError, "zip"),
        (lambda d: _two_member_zip(d / "two.zip"), UnreadableRecordingError, "one member"),
        (lambda d: _write(d / "notes.txt", b"hello\nworld\n"), UnknownVenueError, "--rule"),
    ],
    ids=["missing", "directory", "empty", "truncated-gzip", "bad-zip", "two-member-zip", "unknown-content"],
)
def test_bad_files_give_typed_errors(tmp_path: Path, make, error, says):
    with pytest.raises(error, match=says):
        rec = open_recording(make(tmp_path))
        list(rec.messages())
        rec.detect_venue()


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def _numbered_lines_gz() -> bytes:
    return gzip.compress(b"".join(b"%d {}\n" % i for i in range(20_000)))


def _two_member_zip(p: Path) -> Path:
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("a", b"{}")
        z.writestr("b", b"{}")
    return p


@pytest.mark.parametrize("key", list(EXPECTED))
@pytest.mark.parametrize("how", ["one batch", "per message", "snapshot in the batch"])
def test_update_many_replays_every_recording_level_for_level(key, how, feed_by_name):
    """The batch path on real data: every diff that applies after the snapshot, fed to
    `OrderBook.update_many` as one batch (long runs of one side, the run loop) or one call a
    message, ends level for level on the reference book. "snapshot in the batch" starts from
    an empty book, so the ladder never learns the tick from a snapshot (one slot per raw unit,
    far more levels beyond the window)."""
    feed = feed_by_name(key)
    ob = OrderBook(price_decimals=feed.price_decimals, size_decimals=feed.size_decimals)
    messages = [d.bids + d.asks for d in feed.applied]
    sides = [[True] * len(d.bids) + [False] * len(d.asks) for d in feed.applied]
    if how == "snapshot in the batch":
        snap = feed.snapshot
        messages.insert(0, snap.bids_desc() + snap.asks_asc())
        sides.insert(0, [True] * len(snap.bids) + [False] * len(snap.asks))
    else:
        pd, sd = feed.price_decimals, feed.size_decimals
        ob.apply_snapshot([(unscaled(p, pd), unscaled(s, sd)) for p, s in feed.snapshot.bids_desc()],
                          [(unscaled(p, pd), unscaled(s, sd)) for p, s in feed.snapshot.asks_asc()], feed.snapshot_id)

    def columns(levels, is_bid):
        return (np.array(is_bid, dtype=np.bool_), np.array([p for p, _ in levels], dtype=np.int64),
                np.array([s for _, s in levels], dtype=np.int64))

    if how == "per message":
        for levels, is_bid in zip(messages, sides):
            ob.update_many(*columns(levels, is_bid))
    else:
        ob.update_many(*columns([lv for m in messages for lv in m], [b for s in sides for b in s]))
    assert_book_equals(ob, feed.book_after(len(feed.applied) - 1))
