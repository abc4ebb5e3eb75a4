"""The ledger's figures per asset and what the simulators hold: the figures of `mixmaker demo
--json` and of the paper tests (`cycle_report.py`). The engine's periodic check of the ledger
against Mixin and the exchanges is `mixmaker.funds.reconcile` (run by `FundsWorker`; its table is
what `mixmaker status` and the dashboard read).

Per asset, in ledger units, the ledger figures: payments, refunds, payouts, fees (trading, the
network fees of moves, the exchanges' withdrawal fees), the bot's share (with its fee float), the
trading result and what is still held for others (pools, orders, refunds owed, rounding,
unclaimed), from `Ledger.flows` and the claim balances. They satisfy
    payments + trading_result = refunds + payouts + fees + bot_share + held
(unknown deposits aside: they are reported, and break the identity by their amount).

An exchange balance is compared at the ledger's scale, floored: the ledger books a fee finer than
a unit at its ceiling (`pool_fills`), so it is the floor of what the venue holds, never more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from mixmaker.funds.accounts import FEES, AccountKind, Flow
from mixmaker.funds.assets import AssetMap
from mixmaker.funds.ledger import Ledger
from mixmaker.money import Rounding, to_units

_HELD = (AccountKind.POOL, AccountKind.USER_ORDER, AccountKind.REFUND, AccountKind.ROUNDING, AccountKind.UNCLAIMED)


def ledger_figures(ledger: Ledger, asset: str) -> dict[str, int]:
    f = ledger.flows(asset)

    def flow(kind: Flow) -> int:
        return f.get((kind, asset), 0)

    def owed(kinds: Iterable[AccountKind]) -> int:
        total = 0
        for kind in kinds:
            total -= sum(u for (_, a), u in ledger.balances(kind).items() if a == asset)
        return total

    return {
        "payments": flow(Flow.PAYMENT),
        "refunds": -flow(Flow.REFUND),
        "payouts": -flow(Flow.PAYOUT),
        "fees": -sum(flow(k) for k in FEES),
        "bot_share": owed([AccountKind.BOT]),
        # fills' TRADE entries, plus the whole units of fees booked at their ceiling given back
        "trading_result": flow(Flow.TRADE) + flow(Flow.ROUNDING),
        "held": owed(_HELD),
        "unknown_deposits": flow(Flow.UNKNOWN_DEPOSIT) + flow(Flow.ADJUSTMENT),
    }


def identity_gap(fig: Mapping[str, int]) -> int:
    """payments + trading result - (refunds + payouts + fees + bot share + held); 0 when whole."""
    return (fig["payments"] + fig["trading_result"] + fig["unknown_deposits"]
            - fig["refunds"] - fig["payouts"] - fig["fees"] - fig["bot_share"] - fig["held"])


def observed_units(value: Decimal, decimals: int) -> int:
    return to_units(value, decimals, what="observed balance", rounding=Rounding.FLOOR)


async def exchange_balances(venue: Any, account: str, assets: AssetMap) -> dict[str, Decimal]:
    """The exchange account's free + locked per asset symbol."""
    got = await venue.fetch_balances()
    out: dict[str, Decimal] = {}
    for spec in assets:
        va = spec.venues.get(account)
        if va is not None:
            b = got.get(va.currency)
            out[spec.symbol] = b.total if b is not None else Decimal(0)
    return out


async def observe_paper(sims: Any, assets: AssetMap, accounts: Iterable[str]) -> tuple[dict[str, Decimal],
                                                                                       dict[str, dict[str, Decimal]]]:
    """What the simulators hold: the bot's balance on the Mixin simulator, and each exchange
    account's (all on the simulator's one account) free + locked, asked through ccxt."""
    import aiohttp

    from mixmaker.connectors.binance import BinanceSpotConnector

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sims.mixin_url}/_sim/balances", json={"user_id": sims.app_id}) as r:
            got = (await r.json())["data"]
    wallet = {spec.symbol: Decimal(got.get(spec.mixin_asset_id, "0")) for spec in assets}
    exchanges = {}
    async with BinanceSpotConnector(sims.credentials(), sims.endpoints, name="observer") as conn:
        for name in accounts:
            exchanges[name] = await exchange_balances(conn.venue, name, assets)
    return wallet, exchanges
