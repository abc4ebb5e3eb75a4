"""A small catalog for the user-layer tests: BTC and USDT on the Mixin simulator's asset ids, one
Binance-like account, two presets (so two pools on one market)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from mixmaker.funds.assets import AssetMap, AssetSpec, VenueAsset
from mixmaker.sim.mixin.setup import BTC, USDT_ERC20
from mixmaker.strategy.config import PMMConfig
from mixmaker.users.catalog import AssetLimits, Catalog, Limits, MarketSpec, Preset

MARKET = "binance:BTC/USDT"
TIGHT, WIDE = "tight", "wide"
POOL_TIGHT = f"{MARKET}:{TIGHT}"
POOL_WIDE = f"{MARKET}:{WIDE}"


def assets() -> AssetMap:
    return AssetMap([
        AssetSpec("BTC", BTC, 8, {"binance": VenueAsset("BTC", "BTC")}),
        AssetSpec("USDT", USDT_ERC20, 8, {"binance": VenueAsset("USDT", "ETH")}),
    ])


def catalog(*, timeout_s: float = 3600, min_btc: str = "0.001", cap_btc: str = "2", dust_btc: str = "0.00001",
            min_usdt: str = "10", cap_usdt: str = "100000", dust_usdt: str = "0.01", paused: tuple[str, ...] = (),
            bot_share: str = "0.10") -> Catalog:
    def u(x: str) -> int:
        return int(Decimal(x).scaleb(8))

    pmm = PMMConfig(bid_spread=Decimal("0.1"), ask_spread=Decimal("0.1"), order_amount=Decimal("0.001"))
    wide = PMMConfig(bid_spread=Decimal("1"), ask_spread=Decimal("1"), order_amount=Decimal("0.001"))
    return Catalog(
        assets(),
        [MarketSpec("binance", "BTC/USDT", "BTC", "USDT", 2, 5)],
        [Preset(TIGHT, pmm), Preset(WIDE, wide)],
        Limits({"BTC": AssetLimits(u(min_btc), u(cap_btc), u(dust_btc)),
                "USDT": AssetLimits(u(min_usdt), u(cap_usdt), u(dust_usdt))},
               bot_share=Fraction(bot_share), funding_timeout_ns=int(timeout_s * 1e9)),
        paused=paused,
    )
