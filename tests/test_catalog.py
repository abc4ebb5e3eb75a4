"""The catalog refuses what could not run exactly; assets convert Mixin units exactly."""

from __future__ import annotations

from fractions import Fraction

import pytest
from users_catalog import MARKET, POOL_TIGHT, POOL_WIDE, assets, catalog

from mixmaker.errors import MixmakerError
from mixmaker.funds.assets import AssetError, AssetMap, AssetSpec
from mixmaker.sim.mixin.setup import BTC, ETH
from mixmaker.users.catalog import (Catalog, CatalogError, Limits, MarketSpec, parse_market_name, parse_pool_id,
                                    pool_id)


def test_pools_are_market_times_preset_with_readable_ids():
    c = catalog()
    assert {p.pool_id for p in c.pools} == {POOL_TIGHT, POOL_WIDE}
    assert c.pool_by_id(POOL_TIGHT).account.name == f"pool:{POOL_TIGHT}"
    assert parse_pool_id(POOL_TIGHT) == ("binance", "BTC/USDT", "tight")
    assert parse_market_name(MARKET) == ("binance", "BTC/USDT")
    assert pool_id(MARKET, "wide") == POOL_WIDE
    assert c.limits.bot_share == Fraction(1, 10)
    assert c.find_pool(MARKET, "nope") is None
    with pytest.raises(CatalogError, match="unknown market"):
        c.market("binance:ETH/USDT")


def test_a_market_finer_than_the_quote_ledger_scale_is_refused():
    with pytest.raises(CatalogError, match="would not be exact"):
        Catalog(assets(), [MarketSpec("binance", "BTC/USDT", "BTC", "USDT", 4, 5)], [])
    with pytest.raises(CatalogError, match="not configured"):
        Catalog(assets(), [MarketSpec("binance", "ETH/USDT", "ETH", "USDT", 2, 4)], [])


@pytest.mark.parametrize("bad", ["binance", "bin ance:BTC/USDT", "binance:BTCUSDT", "binance:BTC/USDT/X", ""])
def test_bad_market_names_are_typed_errors(bad):
    with pytest.raises(CatalogError) as e:
        parse_market_name(bad)
    assert isinstance(e.value, MixmakerError)


def test_limits_are_exact():
    with pytest.raises(CatalogError, match="exact"):
        Limits(bot_share=0.1)  # type: ignore[arg-type]
    with pytest.raises(CatalogError, match=r"\[0, 1\)"):
        Limits(bot_share=Fraction(1))
    assert Limits(bot_share="0.15").bot_share == Fraction(3, 20)  # type: ignore[arg-type]


def test_asset_map_lookups_and_exact_mixin_units():
    m = assets()
    assert m.by_mixin_id(BTC.upper()).symbol == "BTC"
    assert m.by_mixin_id(ETH) is None
    assert m.by_venue("binance", "USDT").symbol == "USDT"
    fine = AssetSpec("X", ETH, 12)
    assert fine.from_mixin(3) == 30_000
    assert fine.to_mixin(30_001) == (3, 1)
    with pytest.raises(AssetError, match="decimals"):
        AssetSpec("Y", ETH, 6)
    with pytest.raises(AssetError, match="both A and B"):
        AssetMap([AssetSpec("A", ETH), AssetSpec("B", ETH)])
