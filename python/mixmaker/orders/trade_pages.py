"""Reading a venue's trade history to its end, one page at a time: the one place that pages.

A venue answers a trade query with one page (Binance's `myTrades`: at most `limit`, 1000 at
most). Every catch-up (startup, after a stream reconnect, resolving an order in doubt) needs
*all* the trades since a point, so each venue adapter supplies "fetch one page" and calls one
of the two pagers here:

- `trades_by_id` (Binance: `fromId`, `orderId`): trade ids are integers and ascending. From a
  time, the first page comes from a time window (`startTime`/`endTime`, at most 24 h apart, so
  windows are walked forward until one holds a trade); from there on `fromId = last id + 1`
  until a page comes back short.
- `trades_by_time` (any other venue): `since = the last trade's time` (inclusive, duplicates
  dropped by trade id) until a page brings nothing new.

Both stop at `max_pages` and raise `TradeHistoryError` when the venue does not move forward (it
ignores the cursor and sends the same page again, or sends more than a page): a catch-up that
cannot reach the end must say so, never return part of the history as if it were all of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import pairwise

from mixmaker.orders.errors import VenueUnavailableError
from mixmaker.orders.protocol import TradeReport

#: Binance's widest `startTime`..`endTime` span for `myTrades` (inclusive ends: 24 h less 1 ms).
WINDOW_MS = 86_400_000
#: Binance's largest `limit` for `myTrades`.
MAX_PAGE = 1000
#: A bound on one catch-up: 1000 pages of 1000 trades. Past it the caller is told, not served.
MAX_PAGES = 1000


class TradeHistoryError(VenueUnavailableError):
    """The venue's trade history could not be read to its end (it repeats a page, ignores the
    cursor, or goes on past `max_pages`). Nothing was lost: the caller does not mark the scan
    complete and asks again later."""


@dataclass(frozen=True, slots=True)
class TradePage:
    """One page request. Binance's supported combinations: none (the most recent), `order_id`,
    `start_ms`, `end_ms`, `from_id`, `start_ms` + `end_ms`, `order_id` + `from_id`."""

    limit: int
    from_id: int | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    order_id: str | None = None


FetchPage = Callable[[TradePage], Awaitable[list[TradeReport]]]


class _Pages:
    """Counts the pages of one catch-up against its bound."""

    def __init__(self, fetch: FetchPage, limit: int, max_pages: int, what: str) -> None:
        if not 0 < limit <= MAX_PAGE:
            raise ValueError(f"page limit must be 1..{MAX_PAGE}, got {limit}")
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self.fetch, self.limit, self.max_pages, self.what = fetch, limit, max_pages, what
        self.count = 0

    async def get(self, **query: object) -> list[TradeReport]:
        self.count += 1
        if self.count > self.max_pages:
            raise TradeHistoryError(f"{self.what}: the trade history did not end within {self.max_pages} pages")
        page = await self.fetch(TradePage(self.limit, **query))  # type: ignore[arg-type]
        if len(page) > self.limit:
            raise TradeHistoryError(f"{self.what}: asked for {self.limit} trades, the venue sent {len(page)}")
        return page


def _by_id(page: list[TradeReport], what: str) -> tuple[list[TradeReport], list[int]]:
    """The page in ascending id order (clients such as ccxt re-sort by time, then id as text)."""
    try:
        keyed = sorted(((int(t.trade_id), t) for t in page), key=lambda kt: kt[0])
    except ValueError:
        raise TradeHistoryError(f"{what}: trade ids are not integers, so the history cannot be paged by id") from None
    ids = [i for i, _ in keyed]
    if any(b == a for a, b in pairwise(ids)):
        raise TradeHistoryError(f"{what}: a page of trades holds one trade id twice")
    return [t for _, t in keyed], ids


async def trades_by_id(
    fetch: FetchPage,
    *,
    since_ms: int | None = None,
    order_id: str | None = None,
    now_ms: Callable[[], int],
    limit: int = MAX_PAGE,
    window_ms: int = WINDOW_MS,
    max_pages: int = MAX_PAGES,
    what: str = "trades",
) -> list[TradeReport]:
    """Every trade at or after `since_ms` (venue clock), or of one order (`order_id`), or the
    whole history (neither), oldest first."""
    pages = _Pages(fetch, limit, max_pages, what)
    out: list[TradeReport] = []
    cursor = 0
    if order_id is None and since_ms is not None:
        # From a time: the first trade at or after it, by windows Binance accepts.
        until, start = now_ms(), since_ms
        while True:
            end = start + window_ms - 1
            page = await pages.get(start_ms=start, end_ms=end)
            if page:
                page, ids = _by_id(page, what)
                out.extend(page)
                if len(page) < limit and end >= until:
                    return out  # the window reaches the present and held less than a page
                cursor = ids[-1] + 1
                break
            if end >= until:
                return out  # nothing since `since_ms`
            start = end + 1
    while True:
        page, ids = _by_id(await pages.get(from_id=cursor, order_id=order_id), what)
        if ids and ids[0] < cursor:
            raise TradeHistoryError(
                f"{what}: asked for trades from id {cursor}, the venue sent id {ids[0]} (it ignores fromId and "
                "would send the same page forever)")
        out.extend(page)
        if len(page) < limit:
            return out
        cursor = ids[-1] + 1


async def trades_by_time(
    fetch: FetchPage,
    *,
    since_ms: int | None,
    limit: int = MAX_PAGE,
    max_pages: int = MAX_PAGES,
    what: str = "trades",
) -> list[TradeReport]:
    """Every trade at or after `since_ms` (0 if None), oldest first, for a venue that pages by
    time only. A page may be shorter than `limit` (venues cap it), so the end is a page that
    brings nothing new, not a short page."""
    pages = _Pages(fetch, limit, max_pages, what)
    cursor = since_ms or 0
    seen: set[str] = set()
    out: list[TradeReport] = []
    probed = False
    while True:
        page = await pages.get(start_ms=cursor)
        new = [t for t in page if t.trade_id not in seen]
        if any(t.time_ms < cursor for t in page):
            raise TradeHistoryError(f"{what}: asked for trades from {cursor} ms, the venue sent older ones")
        out.extend(new)
        seen.update(t.trade_id for t in new)
        last = max((t.time_ms for t in page), default=cursor)
        if new:
            cursor, probed = last, False
            continue
        if page and last == cursor and not probed:
            if len(page) >= limit:
                raise TradeHistoryError(
                    f"{what}: more than {limit} trades at {cursor} ms: the history cannot be paged by time past it")
            cursor, probed = cursor + 1, True  # the page was all at the cursor: look past it once
            continue
        return out
