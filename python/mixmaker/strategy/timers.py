"""Hummingbot's refresh timers (reference A5.7), shared by the PMM and A-S controllers.

`create_ts`: no new orders before it. `cancel_ts`: live orders may be refreshed from it on.
Invariant: cancel_ts <= create_ts, so a tick allowed to create is also allowed to refresh."""

from __future__ import annotations


class RefreshTimers:
    def __init__(self, refresh_ns: int, filled_delay_ns: int) -> None:
        self.refresh_ns = refresh_ns
        self.filled_delay_ns = filled_delay_ns
        self.create_ts = 0
        self.cancel_ts = 0
        self.after_fill = False  # create_ts was pushed back by a fill, not by a placement

    def may_create(self, now_ns: int) -> bool:
        return self.create_ts <= now_ns

    def refresh_due(self, now_ns: int) -> bool:
        return self.cancel_ts <= now_ns

    def on_placed(self, now_ns: int) -> None:
        """After placing orders: next refresh one period from now (once per batch)."""
        nxt = now_ns + self.refresh_ns
        self.after_fill = False
        if self.create_ts <= now_ns:
            self.create_ts = nxt
        if self.cancel_ts <= now_ns:
            self.cancel_ts = min(self.create_ts, nxt)

    def on_full_fill(self, now_ns: int) -> None:
        """A non-hanging order filled completely: wait `filled_order_delay` before new orders."""
        self.create_ts = now_ns + self.filled_delay_ns
        self.after_fill = True
        self.cancel_ts = min(self.cancel_ts, self.create_ts)
