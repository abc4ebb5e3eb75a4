"""The ledger next to what the venues really hold: the engine's periodic check, the dashboard's
"last reconciliation", and the figures of `mixmaker demo --json`.

Per asset, in ledger units:
- ledger figures: payments, refunds, payouts, fees, the bot's share, the trading result and what
  is still held for others (pools, orders, refunds owed, rounding, unclaimed), from `Ledger.flows`
  and the claim balances. They satisfy
      payments + trading_result = refunds + payouts + fees + bot_share + held
  (unknown deposits aside: they are reported, and break the identity by their amount).
- places: the ledger's Mixin wallet and each exchange account against the wallet's unspent
  outputs and the exchange's balances (free + locked). The exchange is compared at the ledger's
  scale, floored: the ledger books a fee finer than a unit at its ceiling (`pool_fills`), so it is
  the floor of what the venue holds, never more.
- users (the demo's): the change of each payer's own balance on the Mixin simulator against what
  the ledger says they paid and got back.

A difference while a move or a payment is in flight can be the flight itself (`settled` False);
issue 16's `funds.reconcile` decides what persists. This module only measures.

SWITCH (issue 16): the periodic check moves to `mixmaker.funds.reconcile` (and its table, which
`mixmaker status` reads); the demo's figures stay here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import FEES, AccountKind, Flow
from mixmaker.funds.assets import AssetMap
from mixmaker.funds.ledger import Ledger
from mixmaker.money import MIXIN_DECIMALS, Rounding, format_units, to_decimal, to_units
from mixmaker.store import Store

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


def in_flight(store: Store) -> dict[str, int]:
    """Moves and Mixin payments not finished: a difference now may be their flight."""
    out = {"moves": 0, "payments": 0}
    tables = {r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "fund_moves" in tables:
        out["moves"] = store.query("SELECT COUNT(*) FROM fund_moves WHERE state IN ('new', 'sent')")[0][0]
    if "mixin_payments" in tables:
        out["payments"] = store.query("SELECT COUNT(*) FROM mixin_payments WHERE state IN ('pending', 'signed')")[0][0]
    return out


@dataclass(frozen=True)
class PlaceCheck:
    place: str  # "wallet", "exchange:<account>"
    asset: str
    ledger: int
    observed: int  # ledger units (floored at the ledger's scale)
    observed_text: str  # exactly what the venue said

    @property
    def difference(self) -> int:
        return self.ledger - self.observed


@dataclass
class Audit:
    at_ns: int
    checks: list[PlaceCheck] = field(default_factory=list)
    flight: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def settled(self) -> bool:
        return not any(self.flight.values())

    @property
    def differences(self) -> list[PlaceCheck]:
        return [c for c in self.checks if c.difference]

    @property
    def clean(self) -> bool:
        return not self.errors and not self.differences

    def as_json(self, ledger: Ledger) -> dict[str, Any]:
        return {"at_ns": self.at_ns, "clean": self.clean, "settled": self.settled, "in_flight": self.flight,
                "errors": self.errors,
                "checks": [{"place": c.place, "asset": c.asset, "ledger": ledger.format(c.asset, c.ledger),
                            "observed": c.observed_text, "difference": ledger.format(c.asset, c.difference)}
                           for c in self.checks]}


AUDIT_MIGRATIONS = [
    """CREATE TABLE engine_audit (
        name TEXT PRIMARY KEY, at_ns BIGINT NOT NULL, clean INTEGER NOT NULL, settled INTEGER NOT NULL,
        summary TEXT NOT NULL)""",
]


def record(store: Store, ledger: Ledger, a: Audit) -> None:
    """Keeps the last check, for `mixmaker status` (one row: the latest)."""
    if a.clean:
        summary = "ledger = Mixin wallet = exchange accounts, to the unit"
    else:
        summary = "; ".join([*a.errors, *(f"{c.place} {c.asset} ledger {ledger.format(c.asset, c.ledger)} "
                                           f"observed {c.observed_text}" for c in a.differences)])
        if not a.settled:
            summary += " (in flight: " + ", ".join(f"{n} {k}" for k, n in a.flight.items() if n) + ")"
    with store.transaction() as tx:
        tx.execute("INSERT INTO engine_audit (name, at_ns, clean, settled, summary) VALUES ('last', ?, ?, ?, ?) "
                   "ON CONFLICT (name) DO UPDATE SET at_ns = excluded.at_ns, clean = excluded.clean, "
                   "settled = excluded.settled, summary = excluded.summary",
                   (a.at_ns, int(a.clean), int(a.settled), summary))


def observed_units(value: Decimal, decimals: int) -> int:
    return to_units(value, decimals, what="observed balance", rounding=Rounding.FLOOR)


async def wallet_balances(mixin: Any, assets: AssetMap) -> dict[str, Decimal]:
    """The bot's unspent outputs per asset symbol (Mixin's own answer)."""
    out: dict[str, Decimal] = {}
    for spec in assets:
        units = 0
        async for o in mixin.iter_outputs(asset=spec.mixin_asset_id):
            units += o.units
        out[spec.symbol] = to_decimal(units, MIXIN_DECIMALS)
    return out


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


async def audit(ledger: Ledger, store: Store, assets: AssetMap, mixin: Any, venues: Mapping[str, Any]) -> Audit:
    """One check of every place the ledger holds money: the Mixin wallet and each exchange account."""
    result = Audit(time.time_ns(), flight=in_flight(store))
    places: list[tuple[str, Any, dict[str, Decimal] | None]] = []
    try:
        places.append(("wallet", acc.WALLET, await wallet_balances(mixin, assets)))
    except Exception as e:  # noqa: BLE001 - a venue that does not answer is a finding, not a crash
        result.errors.append(f"wallet: {type(e).__name__}: {e}")
    for name, venue in venues.items():
        try:
            places.append((f"exchange:{name}", acc.exchange(name), await exchange_balances(venue, name, assets)))
        except Exception as e:  # noqa: BLE001
            result.errors.append(f"exchange:{name}: {type(e).__name__}: {e}")
    for place, account, observed in places:
        assert observed is not None
        for symbol, value in sorted(observed.items()):
            decimals = ledger.decimals(symbol)
            result.checks.append(PlaceCheck(place, symbol, ledger.owed(account, symbol),
                                            observed_units(value, decimals), _text(value)))
    return result


def _text(value: Decimal) -> str:
    s = format(value.normalize(), "f") if value else "0"
    return s


def units_text(ledger: Ledger, asset: str, units: int) -> str:
    return format_units(units, ledger.decimals(asset), trim=True)


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
