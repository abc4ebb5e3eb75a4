"""The core's vocabularies as Python enums from Rust: order states and events, sides, sync
rules. The lists are the Rust table's, identity holds (`is`), arguments take the enum or its
value, and, until the string comparisons in python/ are replaced, a member still equals and
hashes like its value string."""

from __future__ import annotations

import pytest

from mixmaker import _core as core
from mixmaker.orders import EVENTS, STATES
from mixmaker.replay import RULES

ENUMS = [core.OrderState, core.OrderEvent, core.Side, core.SyncRule]


def test_lists_come_from_the_rust_tables() -> None:
    assert [s.value for s in core.OrderState.ALL] == [
        "INITIALIZED", "PENDING_CREATE", "OPEN", "PARTIALLY_FILLED", "PENDING_CANCEL",
        "CANCELED", "FILLED", "FAILED", "EXPIRED", "LOST",
    ]
    assert [e.value for e in core.OrderEvent.ALL] == [
        "submitted", "accepted", "rejected", "fill", "cancel_requested",
        "canceled", "cancel_rejected", "not_found", "expired",
    ]
    assert [s.value for s in core.Side.ALL] == ["buy", "sell"]
    assert STATES == core.OrderState.ALL and EVENTS == core.OrderEvent.ALL
    assert RULES == core.BookSync.RULES == tuple(r.value for r in core.SyncRule.ALL)
    assert RULES == ("binance_spot", "binance_futures", "bybit", "sequential")


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_members_name_value_and_lookup(enum) -> None:
    for m in enum.ALL:
        assert getattr(enum, m.name) is m and enum.from_value(m.value) is m and enum.from_value(m) is m
        assert repr(m) == f"{enum.__name__}.{m.name}" and str(m) == m.value
    assert len(set(enum.ALL)) == len(enum.ALL)
    with pytest.raises(core.ArgumentError, match="must be one of"):
        enum.from_value("no such member")


def test_the_core_returns_the_enum_members_themselves() -> None:
    s = core.OrderSet()
    s.add("c1", "BTCUSDT", core.Side.BUY, 100, 5)
    s.add("c2", "BTCUSDT", "sell", 101, 5)
    v = s.get("c1")
    assert v.state is core.OrderState.INITIALIZED and v.side is core.Side.BUY and v.previous is None
    assert s.get("c2").side is core.Side.SELL
    out = s.apply("c1", core.OrderEvent.SUBMITTED)
    assert out.before is core.OrderState.INITIALIZED and out.after is core.OrderState.PENDING_CREATE
    assert s.state("c1") is core.OrderState.PENDING_CREATE
    outs = s.apply_many([("c1", core.OrderEvent.ACCEPTED, "E1", None, 0, 0, 0, "", False),
                         ("c1", "cancel_requested", None, None, 0, 0, 0, "", False)])
    assert [o.after for o in outs] == [core.OrderState.OPEN, core.OrderState.PENDING_CANCEL]
    assert s.get("c1").previous is core.OrderState.OPEN
    with pytest.raises(core.InvalidTransitionError) as e:
        s.apply("c2", core.OrderEvent.FILL, trade_id="t", price=1, qty=1)
    assert e.value.state is core.OrderState.INITIALIZED and e.value.event is core.OrderEvent.FILL
    sync = core.BookSync(core.SyncRule.BYBIT, 4, 0)
    assert sync.rule is core.SyncRule.BYBIT and core.BookSync("bybit", 4, 0).rule is core.SyncRule.BYBIT


def test_a_member_equals_only_itself() -> None:
    """Enums, not strings: a member is not equal to its value or name; `str()` is the value."""
    s = core.OrderSet()
    s.add("c1", "BTCUSDT", "buy", 100, 5)
    v = s.get("c1")
    assert v.state == core.OrderState.INITIALIZED and v.state != core.OrderState.OPEN
    assert v.state != "INITIALIZED" and "INITIALIZED" != v.state and v.side != "buy" and v.side != "BUY"
    assert v.state not in ("INITIALIZED", "FAILED") and v.state in {core.OrderState.INITIALIZED}
    assert "OPEN" not in {core.OrderState.OPEN: 1} and core.SyncRule.BINANCE_SPOT != "binance_spot"
    assert f"{v.state}" == "INITIALIZED" and str(core.Side.SELL) == "sell"
    assert core.Side.BUY != core.OrderEvent.FILL and core.Side.BUY != 0
