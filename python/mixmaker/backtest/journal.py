"""The order tracker's journal in a backtest: kept in memory. A backtest has nothing to recover
after a crash, so the SQLite journal's commits (and their fsyncs) would be pure cost; the
tracker, its state machine and its fill outbox run unchanged on top of this one."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mixmaker._core import OrderSet
from mixmaker.orders.journal import FillEvent, JournalEvent, JournalOrder, OrderJournal


class MemoryJournal(OrderJournal):
    """`OrderJournal` in memory: orders and events are kept in lists, nothing is stored."""

    def __init__(self) -> None:  # no store: OrderJournal.__init__ is not called
        self.venue = "backtest"
        self.orders_kept: list[JournalOrder] = []
        self.events: list[tuple[str, JournalEvent]] = []
        self._fills: dict[tuple[str, str, str], FillEvent] = {}
        self._undelivered: dict[tuple[str, str, str], FillEvent] = {}
        self._nonce = 0
        self._scanned: dict[str, int] = {}

    def record_order(self, o: JournalOrder, nonce: int, events: Sequence[JournalEvent] = ()) -> None:
        self.orders_kept.append(o)
        self._nonce = max(self._nonce, nonce)
        for e in events:
            self.events.append((o.client_id, e))

    def append(self, client_id: str, e: JournalEvent) -> None:
        self.events.append((client_id, e))

    def append_many(self, rows: Sequence[tuple[str, JournalEvent, FillEvent | None]]) -> None:
        for client_id, e, fill in rows:
            self.events.append((client_id, e))
            if fill is not None:
                self._fills[fill.key] = self._undelivered[fill.key] = fill

    def mark_delivered(self, key: tuple[str, str, str]) -> None:
        self._undelivered.pop(key, None)

    def set_trades_scanned(self, symbol: str, ms: int) -> None:
        self._scanned[symbol] = max(ms, self._scanned.get(symbol, ms))

    def last_nonce(self) -> int:
        return self._nonce

    def trades_scanned(self, symbol: str) -> int | None:
        return self._scanned.get(symbol)

    def rebuild(self, factory: Callable[[], OrderSet] = OrderSet) -> tuple[OrderSet, dict[str, JournalOrder]]:
        """A backtest starts empty: nothing to replay."""
        if self.orders_kept:
            raise RuntimeError("a backtest journal is rebuilt only before its first order")
        return factory(), {}

    def undelivered_fills(self) -> list[FillEvent]:
        return list(self._undelivered.values())

    def fills(self) -> list[FillEvent]:
        return list(self._fills.values())
