"""Which sync rule and decimals a feed needs, detected from its first messages.

Detection parses a handful of messages with `json` (never the hot path). Known instruments use
the book scale of the venue's tick and lot; anything else falls back to the width of the
exchange's own decimal strings, which exchanges print at a fixed precision per symbol.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from mixmaker._core import ArgumentError, SyncRule
from mixmaker.replay.errors import UnknownVenueError

# The Rust core's rule names (`SyncRule.ALL`), as strings for the CLI's choices.
RULES: tuple[str, ...] = tuple(rule.value for rule in SyncRule.ALL)

# (rule, symbol) -> (price decimals, size decimals, market). Spot strings carry 8 dp, but the
# tick is 0.01, so prices scale by 2 (zeros past the scale are accepted by the core).
KNOWN: dict[tuple[SyncRule, str], tuple[int, int, str]] = {
    (SyncRule.BINANCE_FUTURES, "BTCUSDT"): (2, 3, "Binance USD-M futures"),
    (SyncRule.BINANCE_FUTURES, "BTCUSD_PERP"): (1, 0, "Binance COIN-M futures"),
    (SyncRule.BINANCE_SPOT, "BTCUSDT"): (2, 8, "Binance spot"),
    (SyncRule.BYBIT, "XRPUSDT"): (4, 0, "Bybit linear"),
}

# How many messages detection may look at before giving up (the Binance files show a diff
# in their first line; the snapshot alone cannot tell spot from futures).
SCAN_LIMIT = 500


@dataclass(frozen=True)
class VenueSpec:
    rule: SyncRule
    price_decimals: int
    size_decimals: int
    market: str = "unknown market"
    symbol: str = ""
    # How the fields were obtained: "known instrument", "string widths", "flags", ...
    source: str = "flags"

    def describe(self) -> str:
        name = f"{self.market} {self.symbol}".strip()
        return (
            f"{name} (rule {self.rule.value}, price {self.price_decimals} dp, "
            f"size {self.size_decimals} dp; {self.source})"
        )


@dataclass(frozen=True)
class Detected:
    """What the content says; decimals are None when no level strings were seen."""

    rule: SyncRule
    symbol: str
    market: str
    price_decimals: int | None
    size_decimals: int | None
    source: str

    @classmethod
    def from_spec(cls, spec: VenueSpec) -> Detected:
        return cls(spec.rule, spec.symbol, spec.market, spec.price_decimals, spec.size_decimals, spec.source)


def detect(messages: Iterable[bytes], name_hint: str = "") -> Detected | None:
    """Look at the first messages; None when nothing recognisable shows up."""
    for raw in islice(messages, SCAN_LIMIT):
        found = _detect_one(raw)
        if found is not None:
            return found
    return _from_name(name_hint)


def resolve(
    detected: Detected | None,
    where: str,
    rule: SyncRule | str | None = None,
    price_decimals: int | None = None,
    size_decimals: int | None = None,
) -> VenueSpec:
    """Merge detection with the user's flags (flags win); `rule` is a `SyncRule` or its value."""
    if rule is not None:
        try:
            rule = SyncRule.from_value(rule)
        except ArgumentError:
            raise UnknownVenueError(where, f"unknown rule {rule!r} (one of {', '.join(RULES)})") from None
    if rule is not None and price_decimals is not None and size_decimals is not None:
        market, symbol = (detected.market, detected.symbol) if detected else ("unknown market", "")
        return VenueSpec(rule, price_decimals, size_decimals, market, symbol, "flags")
    if detected is None:
        raise UnknownVenueError(where, "no Binance depth or Bybit orderbook message in its first lines")
    pd = detected.price_decimals if price_decimals is None else price_decimals
    sd = detected.size_decimals if size_decimals is None else size_decimals
    if pd is None or sd is None:
        raise UnknownVenueError(where, f"looks like {detected.rule.value} but shows no price/size strings to size the book")
    flagged = rule is not None or price_decimals is not None or size_decimals is not None
    source = f"{detected.source}, overridden by flags" if flagged else detected.source
    return VenueSpec(rule or detected.rule, pd, sd, detected.market, detected.symbol, source)


def _detect_one(raw: bytes) -> Detected | None:
    try:
        msg = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(msg, dict):
        return None
    if str(msg.get("topic", "")).startswith("orderbook.") and isinstance(msg.get("data"), dict):
        data = msg["data"]
        return _finish(SyncRule.BYBIT, str(data.get("s", "")), "Bybit", data.get("b", []) + data.get("a", []))
    data = msg["data"] if isinstance(msg.get("data"), dict) else msg
    if data.get("e") != "depthUpdate":
        return None
    symbol = str(data.get("s", ""))
    if "pu" in data:
        market = "Binance COIN-M futures" if "_" in symbol else "Binance USD-M futures"
        return _finish(SyncRule.BINANCE_FUTURES, symbol, market, data.get("b", []) + data.get("a", []))
    return _finish(SyncRule.BINANCE_SPOT, symbol, "Binance spot", data.get("b", []) + data.get("a", []))


def _finish(rule: SyncRule, symbol: str, market: str, levels: list[Any]) -> Detected:
    known = KNOWN.get((rule, symbol))
    if known is not None:
        return Detected(rule, symbol, known[2], known[0], known[1], "known instrument")
    prices = [lv[0] for lv in levels if isinstance(lv, list) and len(lv) == 2]
    sizes = [lv[1] for lv in levels if isinstance(lv, list) and len(lv) == 2]
    if not prices:
        return Detected(rule, symbol, market, None, None, "detected")
    return Detected(rule, symbol, market, _width(prices), _width(sizes), "decimals from string widths")


def _width(numbers: list[Any]) -> int:
    return max(len(str(n).partition(".")[2]) for n in numbers)


def _from_name(name: str) -> Detected | None:
    low = name.lower()
    for needle, rule, market in (
        ("bybit", SyncRule.BYBIT, "Bybit"),
        ("spot", SyncRule.BINANCE_SPOT, "Binance spot"),
        ("usdm", SyncRule.BINANCE_FUTURES, "Binance USD-M futures"),
        ("coinm", SyncRule.BINANCE_FUTURES, "Binance COIN-M futures"),
        ("futures", SyncRule.BINANCE_FUTURES, "Binance futures"),
    ):
        if needle in low:
            return Detected(rule, "", market, None, None, "rule from file name")
    return None
