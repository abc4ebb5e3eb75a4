"""What the operator offers: markets, presets, the pools they make, and the limits on users' money.

- A market is one symbol on one exchange account, written `binance:BTC/USDT` (the venue ACCOUNT's
  configured name, then the symbol).
- A preset is a named strategy configuration (`mixmaker.strategy.config`, PMM or Avellaneda).
- A pool is (market, preset); its id is `binance:BTC/USDT:tight` and its ledger account
  `pool:binance:BTC/USDT:tight`.
- Limits: per asset a minimum order funding, a cap over one user's live orders, and a dust
  threshold below which a refund is not sent (it is kept in `unclaimed:dust`); the bot's share of
  gains as an exact fraction; the funding timeout.

All plain frozen dataclasses; issue 17 builds a `Catalog` from a validated TOML file. The catalog
refuses at construction what could not run exactly (a market whose fill values are finer than the
quote asset's ledger scale, an asset no one configured).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

from mixmaker.funds import accounts
from mixmaker.funds.accounts import Account
from mixmaker.funds.assets import AssetMap, AssetSpec
from mixmaker.strategy.config import AvellanedaConfig, PMMConfig
from mixmaker.users.errors import CatalogError

StrategyConfig = PMMConfig | AvellanedaConfig

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$")  # venue accounts and presets
_SYMBOL = re.compile(r"^[A-Za-z0-9_.\-]{1,20}/[A-Za-z0-9_.\-]{1,20}$")
MAX_NAME = 32
MAX_MARKET_NAME = 64  # a memo names its market in at most this many bytes (users.memo)

DEFAULT_FUNDING_TIMEOUT_NS = 3600 * 1_000_000_000


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise CatalogError(f"bad {kind} name {name!r}: 1-{MAX_NAME} letters, digits, '_', '.', '-'")
    return name


@dataclass(frozen=True, slots=True)
class MarketSpec:
    venue_account: str
    symbol: str  # "BTC/USDT": base/quote as the ledger's asset symbols
    base: str
    quote: str
    price_decimals: int
    size_decimals: int

    def __post_init__(self) -> None:
        _check_name("venue account", self.venue_account)
        if not isinstance(self.symbol, str) or not _SYMBOL.match(self.symbol):
            raise CatalogError(f"bad market symbol {self.symbol!r}: BASE/QUOTE")
        for what in ("price_decimals", "size_decimals"):
            v = getattr(self, what)
            if type(v) is not int or not 0 <= v <= 18:
                raise CatalogError(f"market {self.name}: {what} must be 0..18, got {v!r}")

    @property
    def name(self) -> str:
        return market_name(self.venue_account, self.symbol)

    @property
    def assets(self) -> tuple[str, str]:
        return (self.base, self.quote)


def market_name(venue_account: str, symbol: str) -> str:
    return f"{venue_account}:{symbol}"


def parse_market_name(text: str) -> tuple[str, str]:
    """`binance:BTC/USDT` -> ("binance", "BTC/USDT"); CatalogError on anything else."""
    venue, sep, symbol = text.partition(":") if isinstance(text, str) else ("", "", "")
    if not sep:
        raise CatalogError(f"a market is written VENUE_ACCOUNT:BASE/QUOTE, got {text!r}")
    _check_name("venue account", venue)
    if not _SYMBOL.match(symbol):
        raise CatalogError(f"bad market symbol {symbol!r} in {text!r}: BASE/QUOTE")
    return venue, symbol


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    config: StrategyConfig

    def __post_init__(self) -> None:
        _check_name("preset", self.name)


def pool_id(market: str, preset: str) -> str:
    """The pool of a market and a preset: `binance:BTC/USDT:tight`."""
    return f"{market}:{preset}"


def parse_pool_id(text: str) -> tuple[str, str, str]:
    """`binance:BTC/USDT:tight` -> (venue account, symbol, preset)."""
    market, sep, preset = text.rpartition(":")
    if not sep:
        raise CatalogError(f"a pool id is VENUE_ACCOUNT:BASE/QUOTE:PRESET, got {text!r}")
    venue, symbol = parse_market_name(market)
    return venue, symbol, _check_name("preset", preset)


@dataclass(frozen=True, slots=True)
class PoolSpec:
    market: MarketSpec
    preset: str

    @property
    def pool_id(self) -> str:
        return pool_id(self.market.name, self.preset)

    @property
    def account(self) -> Account:
        return accounts.pool(self.pool_id)


@dataclass(frozen=True, slots=True)
class AssetLimits:
    """In ledger units of the asset. `max_units_per_user` None = no cap."""

    min_units: int = 0
    max_units_per_user: int | None = None
    dust_units: int = 0  # a refund or payout below this is not sent: it goes to unclaimed:dust

    def __post_init__(self) -> None:
        for what in ("min_units", "dust_units"):
            v = getattr(self, what)
            if type(v) is not int or v < 0:
                raise CatalogError(f"{what} must be a whole number of units >= 0, got {v!r}")
        cap = self.max_units_per_user
        if cap is not None and (type(cap) is not int or cap <= 0):
            raise CatalogError(f"max_units_per_user must be a whole number of units > 0, got {cap!r}")


def exact_fraction(value: Fraction | Decimal | str | int, what: str) -> Fraction:
    """"0.10" -> Fraction(1, 10). Floats are refused: a share of money is exact."""
    if isinstance(value, (float, bool)):
        raise CatalogError(f"{what} must be exact (a string, Decimal or Fraction), not {value!r}")
    try:
        f = Fraction(value)
    except (ValueError, TypeError, ZeroDivisionError):
        raise CatalogError(f"{what} is not a number: {value!r}") from None
    return f


@dataclass(frozen=True, slots=True)
class Limits:
    per_asset: Mapping[str, AssetLimits] = field(default_factory=dict)  # asset symbol -> limits
    bot_share: Fraction = Fraction(0)  # of a member's gain, on burn
    funding_timeout_ns: int = DEFAULT_FUNDING_TIMEOUT_NS

    def __post_init__(self) -> None:
        share = exact_fraction(self.bot_share, "bot_share")
        if not 0 <= share < 1:
            raise CatalogError(f"bot_share must be in [0, 1), got {self.bot_share}")
        object.__setattr__(self, "bot_share", share)
        if type(self.funding_timeout_ns) is not int or self.funding_timeout_ns <= 0:
            raise CatalogError(f"funding_timeout_ns must be a positive int, got {self.funding_timeout_ns!r}")
        object.__setattr__(self, "per_asset", MappingProxyType(dict(self.per_asset)))

    def of(self, asset: str) -> AssetLimits:
        return self.per_asset.get(asset, _NO_LIMITS)


_NO_LIMITS = AssetLimits()


class Catalog:
    """Markets, presets, pools and limits at runtime. Pools default to every market x preset."""

    def __init__(self, assets: AssetMap, markets: Iterable[MarketSpec], presets: Iterable[Preset],
                 limits: Limits | None = None, *, pools: Iterable[tuple[str, str]] | None = None,
                 paused: Iterable[str] = ()) -> None:
        self.assets = assets
        self.limits = limits or Limits()
        self._markets: dict[str, MarketSpec] = {}
        for m in markets:
            if m.name in self._markets:
                raise CatalogError(f"market {m.name} is configured twice")
            self._check_market(m)
            self._markets[m.name] = m
        self._presets: dict[str, Preset] = {}
        for p in presets:
            if p.name in self._presets:
                raise CatalogError(f"preset {p.name} is configured twice")
            self._presets[p.name] = p
        pairs = list(pools) if pools is not None else [(m, p) for m in self._markets for p in self._presets]
        self._pools: dict[str, PoolSpec] = {}
        for market_name_, preset_name in pairs:
            spec = PoolSpec(self.market(market_name_), self.preset(preset_name).name)
            if spec.pool_id in self._pools:
                raise CatalogError(f"pool {spec.pool_id} is configured twice")
            self._pools[spec.pool_id] = spec
        self.paused = frozenset(paused)
        for pid in self.paused:
            self.pool_by_id(pid)
        for symbol in self.limits.per_asset:
            self.assets.symbol(symbol)

    def _check_market(self, m: MarketSpec) -> None:
        if len(m.name.encode()) > MAX_MARKET_NAME:
            raise CatalogError(f"market {m.name}: its name is longer than the {MAX_MARKET_NAME} bytes a memo can "
                               "carry, so no user could pay into it (use a shorter venue account name)")
        base, quote = self._asset_of(m, m.base), self._asset_of(m, m.quote)
        if m.symbol != f"{m.base}/{m.quote}":
            raise CatalogError(f"market {m.name}: symbol must be {m.base}/{m.quote} (base/quote as configured assets)")
        if m.price_decimals + m.size_decimals > quote.decimals:
            raise CatalogError(
                f"market {m.name}: price_decimals {m.price_decimals} + size_decimals {m.size_decimals} exceed "
                f"{quote.symbol}'s {quote.decimals} ledger decimals: a fill's value would not be exact")
        if m.size_decimals > base.decimals:
            raise CatalogError(f"market {m.name}: size_decimals {m.size_decimals} exceed {base.symbol}'s "
                               f"{base.decimals} ledger decimals")

    def _asset_of(self, m: MarketSpec, symbol: str) -> AssetSpec:
        if symbol not in self.assets:
            raise CatalogError(f"market {m.name}: asset {symbol} is not configured")
        return self.assets.symbol(symbol)

    # --- lookups ----------------------------------------------------------------------------

    @property
    def markets(self) -> tuple[MarketSpec, ...]:
        return tuple(self._markets.values())

    @property
    def presets(self) -> tuple[Preset, ...]:
        return tuple(self._presets.values())

    @property
    def pools(self) -> tuple[PoolSpec, ...]:
        return tuple(self._pools.values())

    def market(self, name: str) -> MarketSpec:
        m = self._markets.get(name)
        if m is None:
            raise CatalogError(f"unknown market {name!r} (offered: {', '.join(sorted(self._markets)) or 'none'})")
        return m

    def find_market(self, name: str) -> MarketSpec | None:
        return self._markets.get(name)

    def preset(self, name: str) -> Preset:
        p = self._presets.get(name)
        if p is None:
            raise CatalogError(f"unknown preset {name!r} (offered: {', '.join(sorted(self._presets)) or 'none'})")
        return p

    def find_preset(self, name: str) -> Preset | None:
        return self._presets.get(name)

    def find_pool(self, market: str, preset: str) -> PoolSpec | None:
        return self._pools.get(pool_id(market, preset))

    def pool_by_id(self, pid: str) -> PoolSpec:
        p = self._pools.get(pid)
        if p is None:
            raise CatalogError(f"unknown pool {pid!r}")
        return p

    def is_paused(self, pid: str) -> bool:
        return pid in self.paused
