"""The asset map checked at start against both sides: the Mixin simulator's assets and chains, and
what the exchange simulator's `capital/config/getall` offers (read through ccxt); refused with
every problem named."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the exchange simulator needs picows")

from connector_helpers import venue_for  # noqa: E402
from mixin_world import make_world  # noqa: E402

from mixmaker.funds.assets import (  # noqa: E402
    AssetCheckError,
    AssetMap,
    AssetSpec,
    TagRule,
    VenueAsset,
    check_assets,
    exchange_networks,
)
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig  # noqa: E402
from mixmaker.sim.mixin.setup import BTC, EOS, ETH, USDT_ERC20  # noqa: E402


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def _check(specs: list[AssetSpec], tweak=None):
    world = make_world(3)
    sim = ExchangeSim(SimConfig(seed=3, withdraw_fees={"BTC": Decimal("0.0002"), "USDT": Decimal("1")}))
    sim.add_account("mm", "mm-key", "mm-secret", {})
    try:
        async with sim:
            if tweak is not None:
                tweak(sim)
            venue = await venue_for(sim, "mm-key", "mm-secret")
            try:
                async with world.client() as c:
                    return await check_assets(AssetMap(specs), c, {"binance": venue})
            finally:
                await venue.exchange.close()
    finally:
        world.server.stop()


def good() -> list[AssetSpec]:
    return [AssetSpec("BTC", BTC, 8, {"binance": VenueAsset("BTC", "BTC")}),
            AssetSpec("USDT", USDT_ERC20, 8, {"binance": VenueAsset("USDT", "ETH")}),
            AssetSpec("ETH", ETH, 8)]


def test_a_map_that_matches_both_sides_passes_and_says_what_the_exchange_offers():
    offered = run(_check(good()))
    assert offered[("binance", "BTC")].withdraw_fee == Decimal("0.0002")
    assert offered[("binance", "USDT")].network == "ETH" and offered[("binance", "USDT")].deposit


def test_every_mismatch_is_refused_and_named():
    specs = [AssetSpec("BTC", BTC, 8, {"binance": VenueAsset("BTC", "BTC")}),
             # USDT on a network the exchange does not offer it on, and the wrong Mixin chain
             AssetSpec("USDT", USDT_ERC20, 8, {"binance": VenueAsset("USDT", "TRX")}),
             # an asset Mixin does not have
             AssetSpec("XYZ", "00000000-0000-0000-0000-00000000abcd", 8, {"binance": VenueAsset("XYZ", "ETH")}),
             # EOS: Mixin allows tags, but the exchange does not list EOS
             AssetSpec("EOS", EOS, 8, {"binance": VenueAsset("EOS", "EOS", TagRule.REQUIRED)}),
             # a tag on a chain whose Mixin withdrawals cannot carry one
             AssetSpec("ETH", ETH, 8, {"binance": VenueAsset("ETH", "ETH", TagRule.REQUIRED)})]
    with pytest.raises(AssetCheckError) as e:
        run(_check(specs))
    text = str(e.value)
    assert "USDT on binance" in text and "does not offer USDT on TRX" in text and "ETH chain, not TRX" in text
    assert "XYZ: Mixin has no asset" in text
    assert "EOS on binance" in text  # the exchange simulator does not list EOS
    assert "ETH on binance (ETH via ETH): the network needs a tag but Mixin cannot withdraw ETH with one" in text
    assert not any(p.startswith("BTC") for p in e.value.problems)


def test_suspended_deposits_or_withdrawals_are_refused():
    def suspend(sim: ExchangeSim) -> None:
        sim.venue.capital.set_network("USDT", "ETH", deposit=True, withdraw=False)
        sim.venue.capital.set_network("BTC", "BTC", deposit=False, withdraw=True)

    with pytest.raises(AssetCheckError) as e:
        run(_check(good(), suspend))
    assert any("withdrawals of USDT on ETH suspended" in p for p in e.value.problems)
    assert any("deposits of BTC on BTC suspended" in p for p in e.value.problems)


def test_the_simulator_serves_capital_config_and_refuses_a_withdrawal_on_an_unknown_network():
    async def go():
        sim = ExchangeSim(SimConfig(seed=3, withdraw_fees={"BTC": Decimal("0.0002")}))
        sim.add_account("mm", "mm-key", "mm-secret", {"BTC": "1"})
        async with sim:
            venue = await venue_for(sim, "mm-key", "mm-secret")
            try:
                nets = await exchange_networks(venue)
                assert nets[("BTC", "BTC")].withdraw and nets[("BTC", "BTC")].withdraw_fee == Decimal("0.0002")
                from mixmaker.orders.errors import OrderRejectedError

                with pytest.raises(OrderRejectedError):
                    await venue.withdraw("mmtest1", "BTC", Decimal("0.1"), "bc1qxyz", network="TRX")
                assert sim.venue.withdrawals == []
            finally:
                await venue.exchange.close()

    run(go())
