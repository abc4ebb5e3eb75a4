"""bookTicker as an oracle: a ticker whose `u` equals an applied diff's `u` must show exactly the
book's best bid/ask (prices and sizes) after that diff.

Tickers and diffs come on different streams, so a ticker may arrive before or after its diff.
Both sides are kept in small insertion-ordered maps; the oldest entries fall out, which only
costs a comparison, never a false result.
"""

from __future__ import annotations

from dataclasses import dataclass

# (bid_price, bid_size, ask_price, ask_size) as scaled ints; None for an empty side.
Bbo = tuple[int | None, int | None, int | None, int | None]

WINDOW = 4096


@dataclass(frozen=True)
class TickerMismatch:
    update_id: int
    ticker: Bbo
    book: Bbo


class TickerCheck:
    def __init__(self, window: int = WINDOW, keep_examples: int = 5) -> None:
        self.window = window
        self.keep_examples = keep_examples
        self.matches = 0
        self.matches_after_diff = 0  # the ticker came after its diff (the rest came before)
        self.mismatches = 0
        self.examples: list[TickerMismatch] = []
        self._books: dict[int, Bbo] = {}    # diff u -> book BBO after it
        self._tickers: dict[int, Bbo] = {}  # ticker u -> its BBO, waiting for the diff

    def on_book(self, update_id: int, bid: tuple[int, int] | None, ask: tuple[int, int] | None) -> None:
        """The book right after applying the diff whose final id is `update_id`."""
        bbo: Bbo = (*(bid or (None, None)), *(ask or (None, None)))
        waiting = self._tickers.pop(update_id, None)
        if waiting is not None:
            self._compare(update_id, waiting, bbo, after_diff=False)
        _put(self._books, update_id, bbo, self.window)

    def on_ticker(self, update_id: int, bbo: Bbo) -> None:
        book = self._books.get(update_id)
        if book is not None:
            self._compare(update_id, bbo, book, after_diff=True)
        else:
            _put(self._tickers, update_id, bbo, self.window)

    def _compare(self, update_id: int, ticker: Bbo, book: Bbo, after_diff: bool) -> None:
        if ticker == book:
            self.matches += 1
            self.matches_after_diff += after_diff
            return
        self.mismatches += 1
        if len(self.examples) < self.keep_examples:
            self.examples.append(TickerMismatch(update_id, ticker, book))


def _put(d: dict[int, Bbo], key: int, value: Bbo, window: int) -> None:
    d[key] = value
    if len(d) > window:
        del d[next(iter(d))]
