"""Feed a message stream to a `BookSync` and report what happened.

REST snapshots (`{"lastUpdateId":..}`) go to `on_snapshot`, everything else to `on_message`
(a Bybit in-stream snapshot resets the book there). Every message that did not move the book is
offered to `parse_book_ticker`, and tickers are checked against the book (see ticker_check).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from mixmaker.money import format_units
from mixmaker.replay.detect import VenueSpec
from mixmaker.replay.errors import BookSettingsError, CoreNotBuiltError
from mixmaker.replay.ticker_check import TickerCheck, TickerMismatch

if TYPE_CHECKING:
    from mixmaker.book import BookState, BookSync

PROGRESS_EVERY = 8192  # messages between clock reads for the progress line
PROGRESS_SECONDS = 0.5


def load_core() -> Any:
    """`mixmaker.book`, or a typed error that says how to build it."""
    try:
        import mixmaker.book as book
    except ImportError as e:
        raise CoreNotBuiltError(e) from e
    return book


def new_sync(spec: VenueSpec, max_buffer: int = 10_000) -> BookSync:
    core = load_core()
    try:
        sync: BookSync = core.BookSync(spec.rule, spec.price_decimals, spec.size_decimals, max_buffer)
    except (ValueError, TypeError, OverflowError) as e:
        raise BookSettingsError(spec.rule.value, spec.price_decimals, spec.size_decimals, e) from e
    return sync


def is_rest_snapshot(raw: bytes) -> bool:
    """A Binance REST depth snapshot; the key comes first in every snapshot we know."""
    return b'"lastUpdateId"' in raw[:32]


def route(sync: BookSync, raw: bytes) -> BookState:
    """Give one message to the right entry point of `sync`; returns the new BookState."""
    if is_rest_snapshot(raw):
        return sync.on_snapshot(raw)
    return sync.on_message(raw)


@dataclass(frozen=True)
class ReplayResult:
    source: str
    venue: str
    rule: str
    price_decimals: int
    size_decimals: int
    state: str
    messages: int
    diffs_applied: int
    elapsed_s: float  # wall time of the whole loop: reading, decompressing, syncing, checking
    messages_per_s: float
    best_bid: str | None
    best_bid_size: str | None
    best_ask: str | None
    best_ask_size: str | None
    bid_levels: int
    ask_levels: int
    gaps: int
    resyncs: int
    stale: int
    crossed: int
    parse_errors: int
    snapshots: int
    ignored: int
    buffered: int
    buffer_dropped: int
    ticker_matches: int
    ticker_matches_after_diff: int  # of ticker_matches, those that arrived after their diff
    ticker_mismatches: int
    desync_reason: str | None = None
    mismatch_examples: tuple[TickerMismatch, ...] = field(default=())

    @property
    def problems(self) -> list[str]:
        """Why this replay is not clean; empty when it is."""
        out = []
        if self.state != "SYNCED":
            out.append(f"book ended {self.state}" + (f": {self.desync_reason}" if self.desync_reason else ""))
        if self.ticker_mismatches:
            out.append(f"{self.ticker_mismatches} bookTicker(s) disagree with the book")
        if self.crossed:
            out.append(f"book crossed {self.crossed} time(s)")
        if self.parse_errors:
            out.append(f"{self.parse_errors} unreadable message(s)")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mismatch_examples"] = [asdict(m) for m in self.mismatch_examples]
        d["ok"] = self.ok
        d["problems"] = self.problems
        return d


def replay(
    messages: Iterable[bytes],
    spec: VenueSpec,
    *,
    source: str = "",
    max_buffer: int = 10_000,
    progress: bool | None = None,
    progress_to: TextIO | None = None,
    sync: BookSync | None = None,
) -> ReplayResult:
    """Replay `messages` into `sync` (default: a fresh `BookSync` for `spec`; a given one
    must use the spec's decimals).

    `progress=None` shows a progress line on stderr only when it is a TTY."""
    core = load_core()
    if sync is None:
        sync = new_sync(spec, max_buffer)
    book = sync.book
    pd, sd = spec.price_decimals, spec.size_decimals
    parse_book_ticker = core.parse_book_ticker
    bad_ticker = core.MixmakerError
    synced = core.BookState.SYNCED
    check = TickerCheck()
    err = progress_to or sys.stderr
    show = err.isatty() if progress is None else progress

    n = 0
    last_uid = sync.last_update_id
    applied = sync.stats.applied
    start = next_report = time.perf_counter()
    for raw in messages:
        n += 1
        state = route(sync, raw)
        uid = sync.last_update_id
        if uid != last_uid:
            # The book moved. If a diff was applied (not just a snapshot loaded) and the book
            # is good, it now shows the state right after the diff with final id `uid`.
            last_uid = uid
            now_applied = sync.stats.applied
            if now_applied != applied and state == synced and uid is not None:
                check.on_book(uid, book.best_bid_raw(), book.best_ask_raw())
            applied = now_applied
        else:
            try:
                t = parse_book_ticker(raw, pd, sd)
            except bad_ticker:
                t = None  # an unreadable message: the sync has already counted it
            if t is not None:
                check.on_ticker(t.update_id, (t.bid_price, t.bid_size, t.ask_price, t.ask_size))
        if show and n % PROGRESS_EVERY == 0:
            now = time.perf_counter()
            if now >= next_report:
                next_report = now + PROGRESS_SECONDS
                err.write(f"\r  {n:,} messages, {n / (now - start):,.0f} msg/s ")
                err.flush()
    elapsed = time.perf_counter() - start
    if show:
        err.write("\r" + " " * 48 + "\r")
        err.flush()
    return _result(sync, book, spec, source, n, elapsed, check)


def _result(sync: BookSync, book: Any, spec: VenueSpec, source: str, n: int, elapsed: float, check: TickerCheck) -> ReplayResult:
    st = sync.stats
    bid, ask = book.best_bid_raw(), book.best_ask_raw()
    pd, sd = spec.price_decimals, spec.size_decimals
    return ReplayResult(
        source=source,
        venue=spec.describe(),
        rule=spec.rule.value,
        price_decimals=pd,
        size_decimals=sd,
        state=sync.state.name,
        messages=n,
        diffs_applied=st.applied,
        elapsed_s=elapsed,
        messages_per_s=n / elapsed if elapsed > 0 else 0.0,
        best_bid=format_units(bid[0], pd) if bid else None,
        best_bid_size=format_units(bid[1], sd) if bid else None,
        best_ask=format_units(ask[0], pd) if ask else None,
        best_ask_size=format_units(ask[1], sd) if ask else None,
        # The book itself reports 0 levels while it is not synced.
        bid_levels=book.bid_levels,
        ask_levels=book.ask_levels,
        gaps=st.gaps,
        resyncs=st.resyncs,
        stale=st.stale,
        crossed=st.crossed,
        parse_errors=st.parse_errors,
        snapshots=st.snapshots,
        ignored=st.ignored,
        buffered=st.buffered,
        buffer_dropped=st.buffer_dropped,
        ticker_matches=check.matches,
        ticker_matches_after_diff=check.matches_after_diff,
        ticker_mismatches=check.mismatches,
        desync_reason=sync.desync_reason,
        mismatch_examples=tuple(check.examples),
    )
