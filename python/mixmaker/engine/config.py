"""The engine's config: one TOML file, validated by pydantic, refused at start with EVERY problem
listed, each naming its key (`engine.metrics_port: ...`, `presets.tight.bid_spread: ...`).

    [engine]      database, metrics port, log format, clocks
    [mixin]       the bot's keystore file and the API URL
    [exchanges.NAME]  an exchange account: kind, keys from the environment or a file
    [assets.SYMBOL]   Mixin asset id, ledger decimals, its name on each exchange account
    [markets."NAME:BASE/QUOTE"]  price and size decimals
    [presets.NAME]    a strategy config (mixmaker.strategy.config: kind = "pmm" | "avellaneda")
    [limits]      bot share, funding timeout; [limits.assets.SYMBOL] min, max_per_user, dust
    [pools]       which market x preset pairs are offered (default all), which are paused
    [funds]       moving funds Mixin <-> exchange: batching, fee limits, the per-asset minimum of a
                  move, how long each stage may take, retries, the fee float's payers, and how
                  often the ledger is reconciled with the venues
    [paper]       where `--paper` finds the simulators (`mixmaker sim all --state DIR`)

Numbers in the file are read as `Decimal` exactly as written (never through a float). Secrets
never sit in the file: exchange keys come from environment variables or a keys file, the Mixin
keys from the keystore file; a problem with them is reported without the value
(`secrets.py` holds them as `SecretStr`).

Each section is validated on its own, and the cross-checks (a market's assets and exchange, the
limits' assets and their exact units, the pools' markets and presets) run on the sections that
parsed, so one mistake never hides another.
"""

from __future__ import annotations

import difflib
import enum
import re
import tomllib
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from mixmaker.engine.errors import ConfigInvalidError
from mixmaker.errors import MixmakerError
from mixmaker.funds.assets import AssetMap, AssetSpec, TagRule, VenueAsset
from mixmaker.funds.mover import MoverConfig
from mixmaker.funds.moves import Timing
from mixmaker.funds.outcomes import RetryPolicy
from mixmaker.funds.worker import FundsConfig
from mixmaker.money import AmountError, to_units
from mixmaker.strategy.config import AvellanedaConfig, PMMConfig
from mixmaker.users.catalog import (
    AssetLimits,
    Catalog,
    Limits,
    MarketSpec,
    Preset,
    parse_market_name,
    parse_pool_id,
)

NS = 1_000_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogFormat(enum.Enum):
    HUMAN = "human"
    JSON = "json"


class Mode(enum.Enum):
    LIVE = "live"  # real venues: the keystore and the exchange keys must be there
    PAPER = "paper"  # the local simulators: their sims.json gives URLs and credentials


class EngineSection(_Strict):
    database: Path = Path("mixmaker-state/mixmaker.db")
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=9108, ge=0, le=65535, description="0: any free port; absent: none")
    log_format: LogFormat = LogFormat.HUMAN
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    tick_s: Decimal = Field(default=Decimal(1), gt=0, description="the strategies' clock")
    intake_poll_s: Decimal = Field(default=Decimal(1), gt=0, description="how often Mixin snapshots are read")
    worker_interval_s: Decimal = Field(default=Decimal(1), gt=0, description="user orders and payouts are driven")
    tracker_poll_s: Decimal = Field(default=Decimal(2), gt=0, description="open orders asked by REST")
    connect_timeout_s: Decimal = Field(default=Decimal(60), gt=0, description="how long a venue may not answer at start")
    sample_interval_s: Decimal = Field(default=Decimal(5), gt=0, description="the run report's samples")
    stop_timeout_s: Decimal = Field(default=Decimal(20), gt=0, description="a graceful stop's cancels and steps")


class MixinSection(_Strict):
    keystore: Path | None = Field(default=None, description="the bot's keystore JSON (live)")
    url: str = "https://api.mixin.one"

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http(s):// URL")
        return v.rstrip("/")


class ExchangeSection(_Strict):
    kind: Literal["binance"] = "binance"
    api_key_env: str | None = Field(default=None, description="environment variable holding the API key")
    api_secret_env: str | None = Field(default=None, description="environment variable holding the API secret")
    keys_file: Path | None = Field(default=None, description="TOML or JSON with api_key and api_secret")
    rest_url: str | None = None  # other endpoints than the venue's own (a simulator without sims.json)
    ws_market_url: str | None = None
    ws_api_url: str | None = None

    @model_validator(mode="after")
    def _keys(self) -> ExchangeSection:
        env = (self.api_key_env is not None, self.api_secret_env is not None)
        if env == (True, False) or env == (False, True):
            raise ValueError("api_key_env and api_secret_env go together")
        if all(env) and self.keys_file is not None:
            raise ValueError("give the keys either by api_key_env/api_secret_env or by keys_file, not both")
        urls = (self.rest_url, self.ws_market_url, self.ws_api_url)
        if any(u is not None for u in urls) and not all(u is not None for u in urls):
            raise ValueError("rest_url, ws_market_url and ws_api_url go together")
        return self

    @property
    def has_keys(self) -> bool:
        return self.keys_file is not None or self.api_key_env is not None


class VenueAssetModel(_Strict):
    currency: str = Field(min_length=1, description="the exchange's code of the asset")
    network: str = Field(default="", description="the exchange's network (chain) it moves on")
    tag_rule: TagRule = Field(default=TagRule.NONE, description="the chain's tag/memo rule for deposits")
    chain_symbol: str = Field(default="", description="Mixin's chain asset symbol, if not the network's name")


class AssetModel(_Strict):
    mixin_asset_id: uuid.UUID
    decimals: int = Field(default=8, ge=8, le=18)
    venues: dict[str, VenueAssetModel] = Field(default_factory=dict)


class MarketModel(_Strict):
    price_decimals: int = Field(ge=0, le=18)
    size_decimals: int = Field(ge=0, le=18)


class AssetLimitsModel(_Strict):
    min: Decimal = Field(default=Decimal(0), ge=0, description="smallest funding an order takes")
    max_per_user: Decimal | None = Field(default=None, gt=0, description="cap over one user's live orders")
    dust: Decimal = Field(default=Decimal(0), ge=0, description="a refund below this is kept, not sent")


class LimitsModel(_Strict):
    bot_share: Decimal = Field(default=Decimal(0), ge=0, lt=1, description="of a member's gain, on stop")
    funding_timeout_s: Decimal = Field(default=Decimal(3600), gt=0)
    assets: dict[str, AssetLimitsModel] = Field(default_factory=dict)


class PoolsModel(_Strict):
    offer: list[str] | None = Field(default=None, description='"NAME:BASE/QUOTE:PRESET"; default every pair')
    paused: list[str] = Field(default_factory=list)


class FundsSection(_Strict):
    """How users' funds move between the Mixin wallet and the exchange accounts (mixmaker.funds)."""

    reconcile_interval_s: Decimal = Field(default=Decimal(30), gt=0, description="ledger vs what the venues hold")
    batch_wait_s: Decimal = Field(default=Decimal(2), ge=0, description="a request waits for others to join its move")
    max_fee_fraction: Decimal = Field(default=Decimal("0.05"), ge=0, lt=1, description="of a move, its fee at most")
    fee_hold_s: Decimal = Field(default=Decimal(600), ge=0, description="then a move not worth its fee is decided")
    consolidate_at: int = Field(default=200, ge=2, le=256, description="unspent outputs of an asset, then merged")
    min: dict[str, Decimal] = Field(default_factory=dict, description="per asset: the smallest move to an exchange")
    to_send_s: Decimal = Field(default=Decimal(600), gt=0, description="planned -> the source has it, else stuck")
    to_chain_s: Decimal = Field(default=Decimal(3600), gt=0, description="sent -> its hash on chain, else stuck")
    to_credit_s: Decimal = Field(default=Decimal(3600), gt=0, description="on chain -> credited, else stuck")
    retry_attempts: int = Field(default=3, ge=1, le=20, description="attempts of a move that failed, the first included")
    retry_delay_s: Decimal = Field(default=Decimal(5), ge=0, description="a retry waits this long after the failure")
    fee_payers: list[uuid.UUID] = Field(default_factory=list, description="Mixin users whose payments fund the fee float")
    defer_s: Decimal = Field(default=Decimal(600), gt=0, description="a deposit that may be ours waits for its hash")

    def funds_config(self, assets: AssetMap) -> FundsConfig:
        """The funds layer's config (`min` in each asset's ledger units, checked exact by `parse`)."""
        mins = {sym: to_units(v, assets.symbol(sym).decimals, what=f"funds.min.{sym}") for sym, v in self.min.items()}
        return FundsConfig(
            mover=MoverConfig(min_units=mins, max_fee_fraction=Fraction(self.max_fee_fraction),
                              batch_wait_s=float(self.batch_wait_s), fee_hold_s=float(self.fee_hold_s),
                              consolidate_at=self.consolidate_at,
                              retry=RetryPolicy(max_attempts=self.retry_attempts, delay_s=float(self.retry_delay_s))),
            timing=Timing(float(self.to_send_s), float(self.to_chain_s), float(self.to_credit_s)),
            reconcile_every_s=float(self.reconcile_interval_s), fee_payers=frozenset(str(u) for u in self.fee_payers),
            defer_s=float(self.defer_s))


class PaperSection(_Strict):
    sims: Path = Field(default=Path("sims"), description="the folder of `mixmaker sim all --state DIR`, or its sims.json")


StrategyConfig = Annotated[PMMConfig | AvellanedaConfig, Field(discriminator="kind")]

_SECTIONS: dict[str, Any] = {
    "engine": EngineSection, "mixin": MixinSection, "exchanges": ExchangeSection, "assets": AssetModel,
    "markets": MarketModel, "limits": LimitsModel, "pools": PoolsModel, "funds": FundsSection, "paper": PaperSection,
}
_TABLES = {"exchanges": dict[str, ExchangeSection], "assets": dict[str, AssetModel], "markets": dict[str, MarketModel]}
_REQUIRED = ("exchanges", "assets", "markets", "presets")


@dataclass(frozen=True)
class EngineConfig:
    """A validated config: the sections as parsed, and the catalog they make."""

    source: str
    engine: EngineSection
    mixin: MixinSection
    exchanges: dict[str, ExchangeSection]
    catalog: Catalog
    paper: PaperSection
    funds: FundsSection = field(default_factory=FundsSection)

    def funds_config(self) -> FundsConfig:
        return self.funds.funds_config(self.catalog.assets)

    def with_database(self, path: Path) -> EngineConfig:
        return _replace(self, engine=self.engine.model_copy(update={"database": path}))

    def with_engine(self, **changes: Any) -> EngineConfig:
        return _replace(self, engine=self.engine.model_copy(update=changes))


def _replace(cfg: EngineConfig, **changes: Any) -> EngineConfig:
    from dataclasses import replace

    return replace(cfg, **changes)


# --- reading -------------------------------------------------------------------------------------


def load(path: str | Path, *, mode: Mode = Mode.PAPER) -> EngineConfig:
    """Reads and validates a config file; `ConfigInvalidError` lists every problem."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigInvalidError(str(p), [f"{p}: no such file"]) from None
    except OSError as e:
        raise ConfigInvalidError(str(p), [f"{p}: cannot be read ({e.strerror})"]) from None
    return parse_text(text, str(p), mode=mode)


def parse_text(text: str, source: str = "config", *, mode: Mode = Mode.PAPER) -> EngineConfig:
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as e:
        raise ConfigInvalidError(source, [f"not valid TOML: {e}"]) from None
    return parse(data, source, mode=mode)


def parse(data: dict[str, Any], source: str = "config", *, mode: Mode = Mode.PAPER) -> EngineConfig:
    problems: list[str] = []
    parsed: dict[str, Any] = {}
    for name in sorted(set(data) - set(_SECTIONS) - {"presets"}):
        problems.append(f"{key_path((name,))}: unknown section (known: {', '.join(sorted([*_SECTIONS, 'presets']))})")
    for name in _REQUIRED:
        if name not in data:
            problems.append(f"{name}: missing section")
    for name, model in _SECTIONS.items():
        raw = data.get(name, {})
        if name in _TABLES and isinstance(raw, dict):
            parsed[name] = {}  # entry by entry: one bad entry does not hide the others' checks
            for key, value in raw.items():
                try:
                    parsed[name][key] = TypeAdapter(model).validate_python(value)
                except ValidationError as e:
                    problems += _messages((name, key), e)
            continue
        try:
            parsed[name] = TypeAdapter(_TABLES.get(name, model)).validate_python(raw)
        except ValidationError as e:
            problems += _messages((name,), e)
    presets: dict[str, Any] = {}
    raw_presets = data.get("presets", {})
    if not isinstance(raw_presets, dict):
        problems.append("presets: must be a table of presets")
        raw_presets = {}
    for pname, raw in raw_presets.items():
        try:
            presets[pname] = TypeAdapter(StrategyConfig).validate_python(raw)
        except ValidationError as e:
            problems += _messages(("presets", pname), e, drop_tags=("pmm", "avellaneda"))
    catalog = _catalog(data, parsed, presets, problems)
    if mode is Mode.LIVE:
        problems += live_problems(parsed.get("mixin"), parsed.get("exchanges") or {})
    if problems or catalog is None:
        raise ConfigInvalidError(source, problems or ["the catalog could not be built"])
    return EngineConfig(source, parsed["engine"], parsed["mixin"], parsed["exchanges"], catalog, parsed["paper"],
                        parsed["funds"])


# --- cross-checks --------------------------------------------------------------------------------


def _names(data: dict[str, Any], section: str) -> set[str]:
    raw = data.get(section)
    return set(raw) if isinstance(raw, dict) else set()


def _catalog(data: dict[str, Any], parsed: dict[str, Any], presets: dict[str, Any], problems: list[str]) -> Catalog | None:
    """The catalog of what parsed; each cross-section problem named by its key. A name that is
    in the file but did not parse is not reported again where it is used."""
    start = len(problems)
    exchange_names, asset_names = _names(data, "exchanges"), _names(data, "assets")
    specs: list[AssetSpec] = []
    misnamed: set[str] = set()  # assets naming an exchange account that is not configured
    for symbol, a in (parsed.get("assets") or {}).items():
        for venue in a.venues:
            if venue not in exchange_names:
                misnamed.add(symbol)
                problems.append(f"{key_path(('assets', symbol, 'venues', venue))}: no exchange account {venue!r} "
                                f"(configured: {', '.join(sorted(exchange_names)) or 'none'})")
        try:
            specs.append(AssetSpec(symbol, str(a.mixin_asset_id), a.decimals,
                                   {v: VenueAsset(va.currency, va.network, va.tag_rule, va.chain_symbol)
                                    for v, va in a.venues.items()}))
        except MixmakerError as e:
            problems.append(f"{key_path(('assets', symbol))}: {e}")
    try:
        assets = AssetMap(specs)
    except MixmakerError as e:
        problems.append(f"assets: {e}")
        assets = AssetMap([])

    markets: list[MarketSpec] = []
    for name, m in (parsed.get("markets") or {}).items():
        key = key_path(("markets", name))
        try:
            venue, symbol = parse_market_name(name)
            base, _, quote = symbol.partition("/")
            spec = MarketSpec(venue, symbol, base, quote, m.price_decimals, m.size_decimals)
            if venue not in exchange_names:
                raise ValueError(f"no exchange account {venue!r} (configured: {', '.join(sorted(exchange_names)) or 'none'})")
            unknown = [a for a in (base, quote) if a not in asset_names]
            if unknown:
                raise ValueError(f"asset{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} not configured under [assets]")
            if any(a not in assets for a in (base, quote)):
                continue  # that asset's own problem is listed already
            for a in (base, quote):
                if venue not in assets.symbol(a).venues and a not in misnamed:  # else said at the asset
                    raise ValueError(f"asset {a} has no name on {venue} (add [assets.{a}.venues.{venue}])")
            Catalog(assets, [spec], [])  # the market's exactness checks
            markets.append(spec)
        except (MixmakerError, ValueError) as e:
            problems.append(f"{key}: {e}")

    preset_list: list[Preset] = []
    for pname, cfg in presets.items():
        try:
            preset_list.append(Preset(pname, cfg))
        except MixmakerError as e:
            problems.append(f"{key_path(('presets', pname))}: {e}")

    limits = _limits(parsed.get("limits"), assets, asset_names, problems)
    _funds(parsed.get("funds"), data.get("funds"), assets, asset_names, problems)
    pools = parsed.get("pools")
    pairs: list[tuple[str, str]] | None = None
    market_names, preset_names = _names(data, "markets"), _names(data, "presets")
    if pools is not None:
        if pools.offer is not None:
            pairs = []
            for i, pid in enumerate(pools.offer):
                pair = _pool_pair(pid, ("pools", "offer", i), market_names, preset_names, problems)
                if pair:
                    pairs.append(pair)
        for i, pid in enumerate(pools.paused):
            _pool_pair(pid, ("pools", "paused", i), market_names, preset_names, problems)
    if len(problems) > start or limits is None or any(k not in parsed for k in _SECTIONS):
        return None
    try:
        return Catalog(assets, markets, preset_list, limits, pools=pairs, paused=pools.paused if pools else ())
    except MixmakerError as e:
        problems.append(f"pools: {e}")
        return None


def _pool_pair(pid: str, key: tuple[Any, ...], markets: set[str], presets: set[str],
               problems: list[str]) -> tuple[str, str] | None:
    try:
        venue, symbol, preset = parse_pool_id(pid)
    except MixmakerError as e:
        problems.append(f"{key_path(key)}: {e}")
        return None
    market = f"{venue}:{symbol}"
    if market not in markets:
        problems.append(f"{key_path(key)}: market {market} is not under [markets]")
    elif preset not in presets:
        problems.append(f"{key_path(key)}: preset {preset!r} is not under [presets]")
    else:
        return market, preset
    return None


def _limits(lm: LimitsModel | None, assets: AssetMap, asset_names: set[str], problems: list[str]) -> Limits | None:
    if lm is None:
        return None
    per_asset: dict[str, AssetLimits] = {}
    for symbol, al in lm.assets.items():
        base = ("limits", "assets", symbol)
        if symbol not in assets:
            if symbol not in asset_names:
                problems.append(f"{key_path(base)}: asset {symbol} is not configured under [assets]")
            continue
        decimals = assets.symbol(symbol).decimals
        units: dict[str, int | None] = {}
        for name in ("min", "max_per_user", "dust"):
            value = getattr(al, name)
            if value is None:
                units[name] = None
                continue
            try:
                units[name] = to_units(value, decimals, what=name)
            except AmountError:
                problems.append(f"{key_path((*base, name))}: {value:f} is finer than {symbol}'s {decimals} decimals")
        if len(units) == 3:
            per_asset[symbol] = AssetLimits(units["min"] or 0, units["max_per_user"], units["dust"] or 0)
    timeout_ns = lm.funding_timeout_s * NS
    if timeout_ns != timeout_ns.to_integral_value():
        problems.append("limits.funding_timeout_s: finer than a nanosecond")
        return None
    return Limits(per_asset, bot_share=Fraction(lm.bot_share), funding_timeout_ns=int(timeout_ns))


def _funds(fs: FundsSection | None, raw: Any, assets: AssetMap, asset_names: set[str], problems: list[str]) -> None:
    """The per-asset minimums against the assets (also when another key of [funds] is wrong: one
    mistake never hides another), and the fee payers listed once."""
    mins: dict[str, Decimal] = {}
    if fs is not None:
        mins = fs.min
    elif isinstance(raw, dict):
        try:
            mins = TypeAdapter(dict[str, Decimal]).validate_python(raw.get("min", {}))
        except ValidationError:
            mins = {}  # its own message is listed already
    for symbol, value in mins.items():
        key = key_path(("funds", "min", symbol))
        if symbol not in assets:
            if symbol not in asset_names:
                problems.append(f"{key}: asset {symbol} is not configured under [assets]")
            continue
        if value < 0:
            problems.append(f"{key}: must be >= 0")
            continue
        try:
            to_units(value, assets.symbol(symbol).decimals, what="min")
        except AmountError:
            problems.append(f"{key}: {value:f} is finer than {symbol}'s {assets.symbol(symbol).decimals} decimals")
    seen: set[uuid.UUID] = set()
    for i, payer in enumerate(fs.fee_payers if fs is not None else []):
        if payer in seen:
            problems.append(f"{key_path(('funds', 'fee_payers', i))}: {payer} is listed twice")
        seen.add(payer)


def live_problems(mixin: MixinSection | None, exchanges: dict[str, ExchangeSection]) -> list[str]:
    """What a live run needs besides a valid file: the keystore and every exchange's keys (values
    never shown)."""
    from mixmaker.engine.secrets import exchange_keys, keystore_problem

    out = []
    if mixin is not None:
        problem = keystore_problem(mixin.keystore)
        if problem:
            out.append(f"mixin.keystore: {problem}")
    for name, ex in exchanges.items():
        if not ex.has_keys:
            out.append(f"{key_path(('exchanges', name))}: a live run needs api_key_env/api_secret_env or keys_file")
            continue
        try:
            exchange_keys(ex)
        except ValueError as e:
            field = "keys_file" if ex.keys_file is not None else "api_secret_env"
            out.append(f"{key_path(('exchanges', name, field))}: {e}")
    return out


# --- messages ------------------------------------------------------------------------------------

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def key_path(parts: tuple[Any, ...]) -> str:
    """A TOML dotted key: `markets."binance:BTC/USDT".price_decimals`, list items as `offer[0]`."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
            continue
        text = str(p) if _BARE.match(str(p)) else '"' + str(p).replace('"', '\\"') + '"'
        out += ("." if out else "") + text
    return out


def _messages(prefix: tuple[Any, ...], e: ValidationError, drop_tags: tuple[str, ...] = ()) -> list[str]:
    """One line per mistake: its key and pydantic's message, never the input (it may be a secret).
    A misspelt key is one mistake, not two: an unknown key close to a required one missing beside
    it is said once, with the key it should be."""
    errors: list[tuple[tuple[int | str, ...], str, str]] = []
    for err in e.errors(include_input=False, include_url=False):
        where = tuple(err["loc"])
        if where and where[0] in drop_tags:
            where = where[1:]
        errors.append((where, err["type"], err["msg"]))
    missing = {loc: i for i, (loc, kind, _) in enumerate(errors) if kind == "missing" and loc}
    said: dict[int, str] = {}
    dropped: set[int] = set()
    for i, (loc, kind, _) in enumerate(errors):
        if kind != "extra_forbidden" or not loc:
            continue
        near = {str(m[-1]): j for m, j in missing.items() if m[:-1] == loc[:-1] and j not in dropped}
        match = difflib.get_close_matches(str(loc[-1]), list(near), n=1, cutoff=0.75)
        if match:
            said[i] = f"unknown key; did you mean {match[0]!r}? (it is required)"
            dropped.add(near[match[0]])
    out = []
    for i, (loc, _, msg) in enumerate(errors):
        if i in dropped:
            continue
        msg = said.get(i, msg)
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.append(f"{key_path((*prefix, *loc))}: {msg}")
    return out
