"""The TWAP executor (reference A7.4): buy or sell `total` in `number_of_orders = duration //
interval + 1` equal slices, one per interval. TAKER slices are marketable limits; MAKER slices
rest at our side's best price and are replaced when older than `resubmission_ns`. Slices are
floored to the lot; the last slice takes what is left, so the total is exact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from mixmaker._core import OrderState, OrderView, Side
from mixmaker.orders import ClientOrderTracker
from mixmaker.strategy.errors import ExecutorStateError
from mixmaker.strategy.market import MarketRules, MarketSnapshot
from mixmaker.strategy.position_executor import marketable_price
from mixmaker.strategy.runnable import CloseType, RunnableStatus

log = logging.getLogger("mixmaker.strategy.twap")


@dataclass(frozen=True, slots=True)
class TwapConfig:
    symbol: str
    side: Side
    total: int  # size units
    duration_ns: int
    interval_ns: int
    mode: Literal["taker", "maker"] = "taker"
    slippage: Fraction = Fraction(1, 100)
    resubmission_ns: int = 60_000_000_000
    max_retries: int = 10


    @property
    def number_of_orders(self) -> int:
        return self.duration_ns // self.interval_ns + 1


class TwapExecutor:
    def __init__(self, cfg: TwapConfig, tracker: ClientOrderTracker, rules: MarketRules) -> None:
        if cfg.total <= 0 or cfg.interval_ns <= 0 or cfg.duration_ns < 0:
            raise ExecutorStateError("a TWAP needs a positive total and interval and a duration >= 0")
        self.cfg = cfg
        self.side = Side.from_value(cfg.side)  # the enum from here on, whatever the caller gave
        self.tracker = tracker
        self.rules = rules
        n = cfg.number_of_orders
        each = cfg.total // n // rules.lot * rules.lot
        self.slices = [each] * (n - 1) + [cfg.total - each * (n - 1)]
        self.status = RunnableStatus.NOT_STARTED
        self.close_type: CloseType | None = None
        self.started_ns: int | None = None
        self.orders: list[tuple[int, str, int]] = []  # (slice index, client id, placed at)
        self.failures = 0

    def _view(self, cid: str) -> OrderView:
        """An order this executor placed (the tracker keeps every order it was given)."""
        v = self.tracker.get(cid)
        if v is None:
            raise ExecutorStateError(f"the tracker does not know order {cid}")
        return v

    @property
    def filled(self) -> int:
        return sum(self._view(cid).filled for _, cid, _ in self.orders)

    def report(self) -> dict[str, Any]:
        cost = sum(self._view(cid).cost for _, cid, _ in self.orders)
        filled = self.filled
        return {"status": self.status.name, "close_type": self.close_type.name if self.close_type else None,
                "slices": len(self.slices), "orders": len(self.orders), "filled": filled,
                "average_price": Fraction(cost, filled) if filled else None}

    async def tick(self, snap: MarketSnapshot) -> None:
        now = snap.now_ns
        if self.status == RunnableStatus.NOT_STARTED:
            self.status, self.started_ns = RunnableStatus.RUNNING, now
        if self.status == RunnableStatus.SHUTTING_DOWN:
            if not any(self._view(c).is_live for _, c, _ in self.orders):
                self.status = RunnableStatus.TERMINATED
            return
        if self.status != RunnableStatus.RUNNING:
            return
        if self.filled >= self.cfg.total:
            self.status, self.close_type = RunnableStatus.TERMINATED, CloseType.COMPLETED
            return
        if self.cfg.mode == "maker":
            await self._resubmit_old(now)
        started = now if self.started_ns is None else self.started_ns  # set when it started running
        due = min(len(self.slices), (now - started) // self.cfg.interval_ns + 1)
        placed = {i for i, _, _ in self.orders}
        for i in range(due):
            if i in placed and not self._needs_retry(i):
                continue
            await self._place(snap, i, self.slices[i] - self._slice_filled(i))
            if self._ended():  # placing may end it (too many failures)
                return

    def _ended(self) -> bool:
        return self.status != RunnableStatus.RUNNING

    def _slice_filled(self, i: int) -> int:
        return sum(self._view(c).filled for j, c, _ in self.orders if j == i)

    def _needs_retry(self, i: int) -> bool:
        """A slice whose orders all closed without filling it (rejected, expired, replaced)."""
        live = any(self._view(c).is_live for j, c, _ in self.orders if j == i)
        return not live and self._slice_filled(i) < self.slices[i]

    async def _resubmit_old(self, now: int) -> None:
        for _, cid, at in self.orders:
            if now - at >= self.cfg.resubmission_ns and self._view(cid).is_live:
                await self.tracker.cancel(cid)

    async def _place(self, snap: MarketSnapshot, i: int, qty: int) -> None:
        if qty <= 0:
            return
        side = self.side
        if self.cfg.mode == "taker":
            price = marketable_price(snap, side, self.cfg.slippage)
        else:
            best = None if snap.book is None else (snap.book.best_bid_raw() if side == Side.BUY else snap.book.best_ask_raw())
            price = None if best is None else best[0]
        if price is None:
            return  # no book this tick
        cid = await self.tracker.create(self.cfg.symbol, side, price, qty)
        self.orders.append((i, cid, snap.now_ns))
        if self._view(cid).state == OrderState.FAILED:
            self.failures += 1
            if self.failures >= self.cfg.max_retries:
                log.warning("%s: TWAP gives up after %d rejected orders", self.cfg.symbol, self.failures)
                self.status, self.close_type = RunnableStatus.TERMINATED, CloseType.FAILED

    async def stop(self) -> None:
        """Early stop: cancel what rests; TERMINATED once nothing is live."""
        if self.status in (RunnableStatus.NOT_STARTED, RunnableStatus.RUNNING):
            self.status, self.close_type = RunnableStatus.SHUTTING_DOWN, CloseType.EARLY_STOP
            for _, cid, _ in self.orders:
                if self._view(cid).is_live:
                    await self.tracker.cancel(cid)
            if not any(self._view(c).is_live for _, c, _ in self.orders):
                self.status = RunnableStatus.TERMINATED
