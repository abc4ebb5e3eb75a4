"""The seam where the engine chooses how users' funds move between Mixin and the exchanges.

Now: issue 15's stand-in, `SimDirectAllocator` (a real `Payments.transfer` to the exchange
simulator's custody user, then the exchange simulator's own deposit call; back by the exchange's
withdraw call and a transfer from the custody user), for `--paper` and the demo.

SWITCH (issue 16): when `mixmaker.funds.moves` (the funds mover, confirmed through the simulated
chain) and `mixmaker.funds.reconcile` are on main, `allocator_for` returns the real mover for
BOTH live and paper runs (their arrivals are chain deposits intake matches on `deposit_hash`),
and `sim_all_command` drops its zero withdrawal fees. Until then a live run is
refused: there is no way to move real funds that was built for it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import aiohttp

from mixmaker.engine.config import Mode
from mixmaker.engine.errors import EngineError
from mixmaker.engine.venues import Links
from mixmaker.funds.allocation import Allocator, SimDirectAllocator, SimVenueAccount
from mixmaker.funds.assets import AssetMap
from mixmaker.funds.ledger import Ledger
from mixmaker.mixin.payments import Payments
from mixmaker.store import Store

log = logging.getLogger("mixmaker.engine")

CUSTODY_NAMESPACE = uuid.UUID("4f1c2a57-6d0e-4b8e-9a43-0c7c1d6b2e11")
# The exchange simulator's hot wallet on the Mixin simulator: what a pool gained in an asset comes
# back from it, so it holds a float of every asset the catalog trades.
CUSTODY_FLOAT = {"BTC": "10", "ETH": "100", "USDT": "1000000"}
DEFAULT_FLOAT = "1000000"


def custody_user_id(app_id: str) -> str:
    return str(uuid.uuid5(CUSTODY_NAMESPACE, app_id))


async def ensure_custody(mixin_url: str, app_id: str, assets: AssetMap) -> str:
    """The custody user on the Mixin simulator with its float (once: a float already there is kept)."""
    custody = custody_user_id(app_id)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{mixin_url}/_sim/users", json={"user_id": custody, "full_name": "exchange custody"}) as r:
            if r.status != 200:
                raise EngineError(f"the Mixin simulator refused the custody user: {r.status} {await r.text()}")
        async with http.post(f"{mixin_url}/_sim/balances", json={"user_id": custody}) as r:
            balances: Mapping[str, str] = (await r.json())["data"]
        for spec in assets:
            if balances.get(spec.mixin_asset_id, "0") in ("0", ""):
                amount = CUSTODY_FLOAT.get(spec.symbol, DEFAULT_FLOAT)
                async with http.post(f"{mixin_url}/_sim/deposits", json={
                        "user_id": custody, "asset_id": spec.mixin_asset_id, "amount": amount}) as r:
                    if r.status != 200:
                        raise EngineError(f"the Mixin simulator refused the custody float of {spec.symbol}: {r.status}")
                log.info("custody float: %s %s", amount, spec.symbol)
    return custody


def check_supported(links: Links) -> None:
    """Refuses, before anything connects, a run whose funds could not move."""
    if links.mode is Mode.LIVE or links.sims is None:
        raise EngineError("a live run needs issue 16's funds mover (Mixin <-> exchange moves confirmed on chain), "
                          "which is not built yet; run with --paper against the simulators")


async def allocator_for(links: Links, store: Store, ledger: Ledger, assets: AssetMap, payments: Payments,
                        connectors: Mapping[str, Any]) -> tuple[Allocator, Any]:
    """(the allocator, what intake asks about our own funds coming back: its OwnDeposits)."""
    check_supported(links)
    sims = links.sims
    assert sims is not None
    custody = await ensure_custody(links.mixin_url, links.keystore.app_id, assets)
    allocator = SimDirectAllocator(store, ledger, assets, payments, mixin_sim_url=links.mixin_url,
                                   custody_user_id=custody,
                                   venues={name: SimVenueAccount(conn.venue, sims.rest_url, sims.account)
                                           for name, conn in connectors.items()})
    return allocator, allocator
