"""Why a controller is not quoting: a category (`IdleKind`) and a detail, in one `Reason` that
also reads as the text "<category>: <detail>" (so logs, cancel reasons and comparisons with the
old strings read as before, and the backtest counts idle ticks by category, not by parsing)."""

from __future__ import annotations

from enum import StrEnum


class IdleKind(StrEnum):
    """Why a controller is not quoting (the category of a `Reason`)."""

    BOOK_AWAITING_SNAPSHOT = "book AWAITING_SNAPSHOT"
    BOOK_DESYNCED = "book DESYNCED"
    BOOK_NOT_SYNCED = "book not synced"
    EXTERNAL_NOT_SYNCED = "external price source not synced"
    EMPTY_BOOK_SIDE = "empty book side"
    FILLED_ORDER_DELAY = "filled_order_delay"
    EMPTY_PROPOSAL = "proposal is empty (budget, bands, or every quote would take)"
    WARMING_UP = "warming up"
    OUTSIDE_TIMEFRAME = "outside the execution timeframe"
    NO_MODEL_PRICES = "no model prices yet (kappa, sigma or inventory is zero)"


class Reason(str):
    """A category (`kind`) and a `detail`. It is also the text "<category>: <detail>" (the
    category alone without detail), so logs, cancel reasons and comparisons read as before."""

    kind: IdleKind
    detail: str

    def __new__(cls, kind: IdleKind, detail: str = "") -> Reason:
        self = super().__new__(cls, f"{kind.value}: {detail}" if detail else kind.value)
        self.kind = kind
        self.detail = detail
        return self

    def __reduce__(self) -> tuple[type[Reason], tuple[IdleKind, str]]:
        return (Reason, (self.kind, self.detail))


def reason_category(reason: str) -> str:
    """The category of a decision's reason: its kind, or (a plain text from elsewhere) the
    text before its first colon."""
    return reason.kind.value if isinstance(reason, Reason) else reason.split(":")[0]
