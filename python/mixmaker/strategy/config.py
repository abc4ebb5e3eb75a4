"""Controller configuration, validated with pydantic, in Hummingbot's units (spreads and
percentages as percent, times in seconds, amounts in base units), converted once into the
kernel's exact integers.

Percentages become integer fractions of `SCALE` (1e-8), so a percentage may carry at most six
decimals; amounts and prices must fall on the market's lot and tick grid when they are used.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mixmaker import money
from mixmaker.markets import MarketRules
from mixmaker.money import AmountError
from mixmaker.strategy.errors import ConfigError
from mixmaker.strategy.kernel import MAX_LEVELS_PER_SIDE, SCALE, ProposalParams

NS = 1_000_000_000


def pct_to_fraction(pct: Decimal, name: str) -> int:
    """Percent -> integer fraction of SCALE, exactly (0.1 % -> 100_000)."""
    v = pct * SCALE / 100
    if v != v.to_integral_value():
        raise ConfigError(f"{name}={pct} % has more precision than 1e-6 %")
    return int(v)


def seconds_to_ns(s: Decimal) -> int:
    return int((s * NS).to_integral_value())


def to_units(amount: Decimal, decimals: int, name: str) -> int:
    """A configured amount as integer units (`money.to_units`); a ConfigError naming the field
    if it has more than `decimals` decimals."""
    try:
        return money.to_units(amount, decimals, what=name)
    except AmountError as e:
        raise ConfigError(str(e)) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MarketConfig(_Strict):
    symbol: str
    base: str
    quote: str
    price_decimals: int = Field(ge=0, le=12)
    size_decimals: int = Field(ge=0, le=12)
    tick: Decimal = Field(gt=0, description="price increment")
    lot: Decimal = Field(gt=0, description="size increment")
    min_size: Decimal = Field(default=Decimal(0), ge=0)

    def rules(self) -> MarketRules:
        return MarketRules(
            self.symbol, self.base, self.quote, self.price_decimals, self.size_decimals,
            to_units(self.tick, self.price_decimals, "tick"), to_units(self.lot, self.size_decimals, "lot"),
            to_units(self.min_size, self.size_decimals, "min_size"),
        )


PriceType = Literal["mid_price", "last_price", "last_own_trade_price", "best_bid", "best_ask", "inventory_cost"]


class PMMConfig(_Strict):
    """Hummingbot's pure market making parameters (reference A5.1), same names and units."""

    kind: Literal["pmm"] = "pmm"
    bid_spread: Decimal = Field(gt=0, lt=100)
    ask_spread: Decimal = Field(gt=0, lt=100)
    minimum_spread: Decimal = Decimal(-100)
    order_refresh_time: Decimal = Field(default=Decimal(30), gt=0)
    max_order_age: Decimal = Field(default=Decimal(1800), gt=0)
    order_refresh_tolerance_pct: Decimal = Field(default=Decimal(0), ge=-10, le=10)
    order_amount: Decimal = Field(gt=0)
    order_levels: int = Field(default=1, ge=0, le=MAX_LEVELS_PER_SIDE)
    order_level_amount: Decimal = Decimal(0)
    order_level_spread: Decimal = Field(default=Decimal(1), ge=0)
    inventory_skew_enabled: bool = False
    inventory_target_base_pct: Decimal = Field(default=Decimal(50), ge=0, le=100)
    inventory_range_multiplier: Decimal = Field(default=Decimal(1), ge=0)
    inventory_price: Decimal = Field(default=Decimal(1), gt=0)
    filled_order_delay: Decimal = Field(default=Decimal(60), ge=0)
    hanging_orders_enabled: bool = False
    hanging_orders_cancel_pct: Decimal = Field(default=Decimal(10), ge=0, lt=100)
    order_optimization_enabled: bool = False
    bid_order_optimization_depth: Decimal = Field(default=Decimal(0), ge=0)
    ask_order_optimization_depth: Decimal = Field(default=Decimal(0), ge=0)
    optimization_book_levels: int = Field(default=50, ge=1, le=5000,
                                          description="book levels the depth walk may read")
    add_transaction_costs: bool = False
    fee_pct: Decimal = Field(default=Decimal(0), gt=-100, lt=100,
                             description="maker fee %, for transaction costs and the budget")
    price_ceiling: Decimal = Decimal(-1)
    price_floor: Decimal = Decimal(-1)
    moving_price_band_enabled: bool = False
    price_ceiling_pct: Decimal = Decimal(1)
    price_floor_pct: Decimal = Decimal(-1)
    price_band_refresh_time: Decimal = Field(default=Decimal(86400), gt=0)
    ping_pong_enabled: bool = False
    price_source: Literal["current_market", "external_market"] = "current_market"
    price_type: PriceType = "mid_price"
    take_if_crossed: bool = False
    should_wait_order_cancel_confirmation: bool = True
    cancel_on_desync: bool = Field(default=True, description="cancel our quotes while the book is not synced")

    @model_validator(mode="after")
    def _coherent(self) -> PMMConfig:
        if self.price_floor > 0 and self.price_ceiling > 0 and self.price_floor >= self.price_ceiling:
            raise ValueError(f"price_floor {self.price_floor} must be below price_ceiling {self.price_ceiling}")
        if self.moving_price_band_enabled and self.price_floor_pct >= self.price_ceiling_pct:
            raise ValueError("price_floor_pct must be below price_ceiling_pct")
        return self

    def params(self, rules: MarketRules) -> ProposalParams:
        sd = rules.size_decimals
        return ProposalParams(
            tick=rules.tick, lot=rules.lot, min_size=rules.min_size,
            bid_spread=pct_to_fraction(self.bid_spread, "bid_spread"),
            ask_spread=pct_to_fraction(self.ask_spread, "ask_spread"),
            level_spread=pct_to_fraction(self.order_level_spread, "order_level_spread"),
            order_amount=to_units(self.order_amount, sd, "order_amount"),
            level_amount=to_units(self.order_level_amount, sd, "order_level_amount"),
            levels=self.order_levels,
            skew_enabled=self.inventory_skew_enabled,
            target_base=pct_to_fraction(self.inventory_target_base_pct, "inventory_target_base_pct"),
            range_multiplier=pct_to_fraction(self.inventory_range_multiplier * 100, "inventory_range_multiplier"),
            optimize=self.order_optimization_enabled,
            bid_depth=to_units(self.bid_order_optimization_depth, sd, "bid_order_optimization_depth"),
            ask_depth=to_units(self.ask_order_optimization_depth, sd, "ask_order_optimization_depth"),
            add_costs=self.add_transaction_costs,
            fee=pct_to_fraction(self.fee_pct, "fee_pct"),
            take_if_crossed=self.take_if_crossed,
        )


class AvellanedaConfig(_Strict):
    """Avellaneda-Stoikov parameters (reference A6.1). gamma, eta, and the estimators are
    model parameters and use floats; prices and sizes stay exact."""

    kind: Literal["avellaneda"] = "avellaneda"
    order_amount: Decimal = Field(gt=0)
    risk_factor: float = Field(default=1.0, gt=0)
    order_amount_shape_factor: float = Field(default=0.0, ge=0, le=1)
    min_spread: Decimal = Field(default=Decimal(0), ge=0, description="% of mid")
    order_refresh_time: Decimal = Field(default=Decimal(10), gt=0)
    max_order_age: Decimal = Field(default=Decimal(1800), gt=0)
    order_refresh_tolerance_pct: Decimal = Field(default=Decimal(0), ge=-10, le=10)
    filled_order_delay: Decimal = Field(default=Decimal(60), ge=0)
    inventory_target_base_pct: Decimal = Field(default=Decimal(50), ge=0, le=100)
    order_optimization_enabled: bool = True
    add_transaction_costs: bool = False
    fee_pct: Decimal = Field(default=Decimal(0), gt=-100, lt=100)
    volatility_buffer_size: int = Field(default=200, ge=1, le=10_000)
    trading_intensity_buffer_size: int = Field(default=200, ge=1, le=10_000)
    order_levels: int = Field(default=1, ge=1, le=MAX_LEVELS_PER_SIDE)
    level_distances: Decimal = Field(default=Decimal(0), ge=0, description="% of half the optimal spread")
    execution_timeframe: Literal["infinite", "from_date_to_date", "daily_between_times"] = "infinite"
    start_time_ns: int | None = Field(default=None, description="from_date_to_date: ns since the epoch")
    end_time_ns: int | None = None
    start_time_of_day: dt.time | None = Field(default=None, description="daily_between_times: UTC, e.g. 09:30:00")
    end_time_of_day: dt.time | None = None
    cancel_on_desync: bool = True

    @model_validator(mode="after")
    def _window(self) -> AvellanedaConfig:
        if self.execution_timeframe == "from_date_to_date":
            if self.start_time_ns is None or self.end_time_ns is None or self.end_time_ns <= self.start_time_ns:
                raise ValueError("from_date_to_date needs start_time_ns < end_time_ns")
        if self.execution_timeframe == "daily_between_times":
            if self.start_time_of_day is None or self.end_time_of_day is None or self.end_time_of_day <= self.start_time_of_day:
                raise ValueError("daily_between_times needs start_time_of_day < end_time_of_day (UTC, within one day)")
        return self


class BacktestConfig(_Strict):
    """The simulated venue: starting balances, latency, fees, and the clock's tick."""

    base_balance: Decimal = Field(ge=0)
    quote_balance: Decimal = Field(ge=0)
    latency_ms: Decimal = Field(default=Decimal(20), ge=0)
    maker_fee_pct: Decimal = Field(default=Decimal("0.02"), gt=-1, lt=10)
    taker_fee_pct: Decimal = Field(default=Decimal("0.05"), gt=-1, lt=10)
    tick_seconds: Decimal = Field(default=Decimal(1), gt=0)
    queue_model: Literal["risk_averse", "front"] = "risk_averse"
    post_only: bool = Field(default=True, description="reject (or expire) orders that would take; False lets them take at the taker fee")

    @field_validator("latency_ms")
    @classmethod
    def _whole_us(cls, v: Decimal) -> Decimal:
        if (v * 1000) != (v * 1000).to_integral_value():
            raise ValueError("latency_ms must be a whole number of microseconds")
        return v


class RunConfig(_Strict):
    market: MarketConfig
    strategy: PMMConfig | AvellanedaConfig = Field(discriminator="kind")
    backtest: BacktestConfig | None = None


def load_config(path: str | Path) -> RunConfig:
    """Read a TOML file ([market], [strategy] with kind = "pmm" | "avellaneda", [backtest])."""
    p = Path(path)
    try:
        data: dict[str, Any] = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {p} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p} is not valid TOML: {e}") from None
    return parse_config(data, str(p))


def parse_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as e:
        lines = [f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise ConfigError(f"{source} is invalid:\n  " + "\n  ".join(lines)) from None
    if isinstance(cfg.strategy, PMMConfig):
        cfg.strategy.params(cfg.market.rules())  # amounts on the lot grid, percentages exact
    return cfg
