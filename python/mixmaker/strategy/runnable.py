"""Executor lifecycle states and close reasons (Hummingbot's RunnableStatus and CloseType)."""

from __future__ import annotations

import enum


class RunnableStatus(enum.Enum):
    NOT_STARTED = 1
    RUNNING = 2
    SHUTTING_DOWN = 3
    TERMINATED = 4

    @property
    def is_active(self) -> bool:
        return self in (RunnableStatus.NOT_STARTED, RunnableStatus.RUNNING)


class CloseType(enum.Enum):
    TIME_LIMIT = 1
    STOP_LOSS = 2
    TAKE_PROFIT = 3
    EXPIRED = 4
    EARLY_STOP = 5
    TRAILING_STOP = 6
    INSUFFICIENT_BALANCE = 7
    FAILED = 8
    COMPLETED = 9
    POSITION_HOLD = 10
