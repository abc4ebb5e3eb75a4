"""The assets the bot handles: a configured SYMBOL ("BTC", "USDT") keys the ledger, and each asset
says its Mixin asset id, its ledger scale and what it is called on each exchange account.

The ledger keeps an asset at `decimals` (8 = Mixin's precision unless an asset needs more, never
less: every Mixin amount must be exact in the ledger). Conversions between Mixin's 1e-8 units and
ledger units live here, exact both ways; what a ledger amount holds below Mixin's precision is
returned apart, so the caller books it (as dust) instead of dropping it.

Each venue asset also names the NETWORK it moves on (Binance's name: "BTC", "ETH") and its tag
rule. `check_assets` compares all of it, at start, with both sides: the Mixin asset exists and
sits on that chain, and the exchange offers deposits and withdrawals of that currency on that
network with a compatible tag rule; anything else is refused with every problem named. Deposit
addresses are kept by `mixmaker.funds.addresses`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Protocol

from mixmaker.funds.errors import FundsError
from mixmaker.money import MAX_DECIMALS, MIXIN_DECIMALS


class AssetError(FundsError):
    """An asset that is not configured, or configured twice, or at an impossible scale."""


class AssetCheckError(AssetError):
    """The configuration does not match what Mixin or an exchange offers; `problems` names each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the asset map does not match the venues:\n  " + "\n  ".join(problems))


class TagRule(enum.Enum):
    """Whether a deposit address on a venue needs a tag/memo (EOS, XRP) or must not have one."""

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


# Mixin's `withdrawal_memo_possibility`: can a withdrawal of this asset carry a tag at all?
_MIXIN_TAGS = {"negative": TagRule.NONE, "possible": TagRule.OPTIONAL, "positive": TagRule.REQUIRED}


@dataclass(frozen=True, slots=True)
class VenueAsset:
    """What one exchange account calls the asset, and on which network it moves it.

    `network` is the exchange's network name (Binance's `network`: "BTC", "ETH", "TRX"); the
    Mixin chain of the asset must be the chain whose own asset is `chain_symbol` (default: the
    network's name, which is the chain coin's symbol for most chains; "BNB" for Binance's "BSC").
    `tag_rule` is the chain's: NONE, or a tag/memo with every deposit address (REQUIRED)."""

    currency: str
    network: str = ""
    tag_rule: TagRule = TagRule.NONE
    chain_symbol: str = ""

    def __post_init__(self) -> None:
        if not self.currency or not isinstance(self.currency, str):
            raise AssetError(f"a venue asset needs its currency code, got {self.currency!r}")
        if not isinstance(self.tag_rule, TagRule):
            raise AssetError(f"{self.currency}: tag_rule must be a TagRule, got {self.tag_rule!r}")

    @property
    def mixin_chain_symbol(self) -> str:
        return self.chain_symbol or self.network


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
        return int(10 ** (self.decimals - MIXIN_DECIMALS))

    def from_mixin(self, mixin_units: int) -> int:
        """Mixin's 1e-8 units -> ledger units (always exact)."""
        return mixin_units * self._shift

    def to_mixin(self, units: int) -> tuple[int, int]:
        """Ledger units -> (Mixin units, the ledger units left below Mixin's precision)."""
        whole, rest = divmod(units, self._shift)
        return whole, rest


class AssetRegistry(Protocol):
    """Where assets are declared at their scale (the ledger)."""

    def register_asset(self, asset: str, decimals: int) -> None: ...


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

    def __iter__(self) -> Iterator[AssetSpec]:
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

    def register(self, ledger: AssetRegistry) -> None:
        """Declares every asset in the ledger at its scale (a scale never changes there)."""
        for s in self:
            ledger.register_asset(s.symbol, s.decimals)


# --- checks against the venues ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NetworkInfo:
    """What an exchange says of one currency on one network (Binance's `capital/config/getall`,
    ccxt's `fetch_currencies` elsewhere), exact."""

    currency: str
    network: str
    deposit: bool
    withdraw: bool
    withdraw_fee: Decimal
    withdraw_min: Decimal
    tag_required: bool


def _dec(v: Any) -> Decimal:
    try:
        d = Decimal(str(v)) if v not in (None, "") else Decimal(0)
    except InvalidOperation:
        raise AssetError(f"not an amount: {v!r}") from None
    return d


def parse_binance_networks(rows: list[dict[str, Any]]) -> dict[tuple[str, str], NetworkInfo]:
    """Binance's `GET /sapi/v1/capital/config/getall` as {(coin, network): NetworkInfo}."""
    out = {}
    for coin in rows:
        for n in coin.get("networkList") or ():
            out[(n["coin"], n["network"])] = NetworkInfo(
                n["coin"], n["network"], bool(n.get("depositEnable")), bool(n.get("withdrawEnable")),
                _dec(n.get("withdrawFee")), _dec(n.get("withdrawMin")), bool(n.get("memoRegex")) or bool(n.get("sameAddress")))
    return out


def parse_ccxt_networks(currencies: Mapping[str, Any]) -> dict[tuple[str, str], NetworkInfo]:
    """ccxt's unified `fetch_currencies()` as {(code, network id): NetworkInfo}."""
    out = {}
    for code, c in currencies.items():
        for net in (c.get("networks") or {}).values():
            nid = str(net.get("id") or net.get("network") or "")
            limits = (net.get("limits") or {}).get("withdraw") or {}
            info = net.get("info") or {}
            out[(code, nid)] = NetworkInfo(code, nid, bool(net.get("deposit")), bool(net.get("withdraw")),
                                           _dec(net.get("fee")), _dec(limits.get("min")),
                                           bool(info.get("memoRegex")) or bool(info.get("sameAddress")))
    return out


async def exchange_networks(venue: Any) -> dict[tuple[str, str], NetworkInfo]:
    """The networks an exchange account offers, per (currency, network). On Binance (and the
    simulator) its own `capital/config/getall`; on other ccxt venues `fetch_currencies`. Through
    the venue's `_call`: its rate limiter and error translation."""
    exchange = venue.exchange
    if hasattr(exchange, "sapi_get_capital_config_getall"):
        rows = await venue._call(lambda: exchange.sapi_get_capital_config_getall())
        return parse_binance_networks(rows)
    return parse_ccxt_networks(await venue._call(lambda: exchange.fetch_currencies()))


async def check_assets(assets: AssetMap, mixin: Any, venues: Mapping[str, Any]) -> dict[tuple[str, str], NetworkInfo]:
    """Checks every configured asset against Mixin (`mixin`: a MixinClient) and each exchange
    account it names (`venues`: account name -> VenueAccount). Raises `AssetCheckError` naming
    every problem; returns what each exchange offers, per (account, symbol)."""
    problems: list[str] = []
    offered: dict[tuple[str, str], NetworkInfo] = {}
    networks: dict[str, dict[tuple[str, str], NetworkInfo]] = {}
    for name in sorted({v for s in assets for v in s.venues}):
        if name not in venues:
            problems.append(f"exchange account {name!r} is configured for assets but not connected")
            continue
        try:
            networks[name] = await exchange_networks(venues[name])
        except Exception as e:  # noqa: BLE001 - reported with the others, never half-checked
            problems.append(f"{name}: cannot read its currencies and networks: {type(e).__name__}: {e}")
    chains: dict[str, dict[str, Any]] = {}
    for spec in assets:
        try:
            a = await mixin.asset(spec.mixin_asset_id)
        except Exception as e:  # noqa: BLE001
            problems.append(f"{spec.symbol}: Mixin has no asset {spec.mixin_asset_id} ({type(e).__name__}: {e})")
            continue
        chain_id = str(a.get("chain_id") or "")
        if chain_id not in chains:
            try:
                chains[chain_id] = await mixin.asset(chain_id)
            except Exception as e:  # noqa: BLE001
                problems.append(f"{spec.symbol}: Mixin's chain {chain_id} of {spec.mixin_asset_id} cannot be read: {e}")
                continue
        chain_symbol = str(chains[chain_id].get("symbol") or "")
        mixin_tags = _MIXIN_TAGS.get(str(a.get("withdrawal_memo_possibility") or "negative"), TagRule.NONE)
        for name, va in sorted(spec.venues.items()):
            where = f"{spec.symbol} on {name} ({va.currency} via {va.network or '?'})"
            if not va.network:
                problems.append(f"{where}: no network configured")
                continue
            if chain_symbol.upper() != va.mixin_chain_symbol.upper():
                problems.append(f"{where}: Mixin asset {spec.mixin_asset_id} is on the {chain_symbol} chain, "
                                f"not {va.mixin_chain_symbol} (set chain_symbol if the names differ)")
            if va.tag_rule is TagRule.REQUIRED and mixin_tags is TagRule.NONE:
                problems.append(f"{where}: the network needs a tag but Mixin cannot withdraw {spec.symbol} with one")
            if name not in networks:
                continue
            info = networks[name].get((va.currency, va.network))
            if info is None:
                have = sorted(n for c, n in networks[name] if c == va.currency)
                problems.append(f"{where}: {name} does not offer {va.currency} on {va.network} "
                                f"(it offers: {', '.join(have) or 'nothing'})")
                continue
            if not info.deposit:
                problems.append(f"{where}: {name} has deposits of {va.currency} on {va.network} suspended")
            if not info.withdraw:
                problems.append(f"{where}: {name} has withdrawals of {va.currency} on {va.network} suspended")
            if info.tag_required and va.tag_rule is TagRule.NONE:
                problems.append(f"{where}: {name} needs a tag/memo on {va.network}; configure tag_rule")
            offered[(name, spec.symbol)] = info
    if problems:
        raise AssetCheckError(problems)
    return offered
