"""The assets the bot handles: a configured SYMBOL ("BTC", "USDT") keys the ledger, and each asset
says its Mixin asset id, its ledger scale and what it is called on each exchange account.

The ledger keeps an asset at `decimals` (8 = Mixin's precision unless an asset needs more, never
less: every Mixin amount must be exact in the ledger). Conversions between Mixin's 1e-8 units and
ledger units live here, exact both ways; what a ledger amount holds below Mixin's precision is
returned apart, so the caller books it (as dust) instead of dropping it.

Issue 16 adds the chain checks (network, tag rule) and deposit addresses per venue.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping

from mixmaker.funds.errors import FundsError
from mixmaker.money import MAX_DECIMALS, MIXIN_DECIMALS


class AssetError(FundsError):
    """An asset that is not configured, or configured twice, or at an impossible scale."""


class TagRule(enum.Enum):
    """Whether a deposit address on a venue needs a tag/memo (EOS, XRP) or must not have one."""

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True, slots=True)
class VenueAsset:
    """What one exchange account calls the asset, and on which network it moves it."""

    currency: str
    network: str = ""
    tag_rule: TagRule = TagRule.NONE

    def __post_init__(self) -> None:
        if not self.currency or not isinstance(self.currency, str):
            raise AssetError(f"a venue asset needs its currency code, got {self.currency!r}")


@dataclass(frozen=True, slots=True)
class AssetSpec:
    symbol: str
    mixin_asset_id: str
    decimals: int = MIXIN_DECIMALS
    venues: Mapping[str, VenueAsset] = field(default_factory=dict)  # venue account -> its name there

    def __post_init__(self) -> None:
        if not self.symbol or not isinstance(self.symbol, str) or any(c in self.symbol for c in ": \t\n/"):
            raise AssetError(f"bad asset symbol {self.symbol!r} (no ':', '/' or spaces)")
        if not isinstance(self.mixin_asset_id, str) or len(self.mixin_asset_id) != 36:
            raise AssetError(f"asset {self.symbol}: mixin_asset_id must be a UUID, got {self.mixin_asset_id!r}")
        if type(self.decimals) is not int or not MIXIN_DECIMALS <= self.decimals <= MAX_DECIMALS:
            raise AssetError(f"asset {self.symbol}: decimals must be {MIXIN_DECIMALS}..{MAX_DECIMALS} "
                             f"(a Mixin amount must be exact in the ledger), got {self.decimals!r}")
        object.__setattr__(self, "mixin_asset_id", self.mixin_asset_id.lower())
        object.__setattr__(self, "venues", MappingProxyType(dict(self.venues)))

    @property
    def _shift(self) -> int:
        return 10 ** (self.decimals - MIXIN_DECIMALS)

    def from_mixin(self, mixin_units: int) -> int:
        """Mixin's 1e-8 units -> ledger units (always exact)."""
        return mixin_units * self._shift

    def to_mixin(self, units: int) -> tuple[int, int]:
        """Ledger units -> (Mixin units, the ledger units left below Mixin's precision)."""
        whole, rest = divmod(units, self._shift)
        return whole, rest


class AssetMap:
    """The configured assets, found by symbol, by Mixin asset id, or by (venue account, currency)."""

    def __init__(self, specs: Iterable[AssetSpec]) -> None:
        self._by_symbol: dict[str, AssetSpec] = {}
        self._by_mixin: dict[str, AssetSpec] = {}
        self._by_venue: dict[tuple[str, str], AssetSpec] = {}
        for s in specs:
            if s.symbol in self._by_symbol:
                raise AssetError(f"asset {s.symbol} is configured twice")
            if s.mixin_asset_id in self._by_mixin:
                raise AssetError(f"Mixin asset {s.mixin_asset_id} is both {self._by_mixin[s.mixin_asset_id].symbol} "
                                 f"and {s.symbol}")
            self._by_symbol[s.symbol] = s
            self._by_mixin[s.mixin_asset_id] = s
            for venue, va in s.venues.items():
                key = (venue, va.currency)
                if key in self._by_venue:
                    raise AssetError(f"{venue} currency {va.currency} is both {self._by_venue[key].symbol} and {s.symbol}")
                self._by_venue[key] = s

    def __iter__(self):
        return iter(self._by_symbol.values())

    def __len__(self) -> int:
        return len(self._by_symbol)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def symbol(self, symbol: str) -> AssetSpec:
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise AssetError(f"asset {symbol!r} is not configured (known: {', '.join(sorted(self._by_symbol))})") from None

    def by_mixin_id(self, asset_id: str) -> AssetSpec | None:
        """The asset with this Mixin id, or None when the bot does not handle it."""
        return self._by_mixin.get(asset_id.lower())

    def by_venue(self, venue_account: str, currency: str) -> AssetSpec | None:
        return self._by_venue.get((venue_account, currency))

    def register(self, ledger: object) -> None:
        """Declares every asset in the ledger at its scale (a scale never changes there)."""
        for s in self:
            ledger.register_asset(s.symbol, s.decimals)  # type: ignore[attr-defined]
