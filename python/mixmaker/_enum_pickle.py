"""Pickling for the core's enums (`OrderState`, `OrderEvent`, `Side`, `SyncRule`): a member is
saved as its type and value and loaded back as the same member, so reports, venues' saved state
and multiprocessing can carry them. Registered once, on first import of `mixmaker`."""

from __future__ import annotations

import copyreg
from typing import Any

from mixmaker._core import OrderEvent, OrderState, Side, SyncRule

CoreEnum = OrderState | OrderEvent | Side | SyncRule


def member(kind: Any, value: str) -> CoreEnum:
    """The member of `kind` whose value is `value` (what a pickled member loads through)."""
    found: CoreEnum = kind.from_value(value)
    return found


def _reduce(m: Any) -> tuple[Any, tuple[type, str]]:  # Any: copyreg types the member as object
    return member, (type(m), m.value)


for _kind in (OrderState, OrderEvent, Side, SyncRule):
    copyreg.pickle(_kind, _reduce)
