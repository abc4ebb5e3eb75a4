"""The money cycle's report (`mixmaker demo --json`, and the paper tests): for every asset the
ledger's figures and what the simulators themselves hold and paid, the difference between the
two, and every user order's final state and statement.

    {"assets": {"BTC": {"ledger": {payments, refunds, payouts, fees, bot_share, trading_result, held},
                        "observed": {"users": {id: {"before", "after"}}, "users_change",
                                     "fee_payers": {id: {"before", "after"}},
                                     "bot_wallet", "exchange": {account: amount}},
                        "difference": "0"}},
     "user_orders": [{"id", "state", "statement": {...}}],
     "reconciliation": {"places": [...], "users": {...}, "identity": {...}, "ledger_problems": [...]},
     "ok": true}

`difference` (decimal text, per asset) = |ledger wallet - the bot's balance on the Mixin
simulator| + the same for each exchange account (floored at the ledger's scale: the ledger books a
fee finer than a unit at its ceiling, so it holds the floor of the venue's balance) + |what the
ledger says the users got back net (refunds + payouts - payments) - the change of the users' own
balances on the simulator| (the users' and the operator's who funds the fee float, `fee_payers`:
their payments are payments too). "0" when all is well. `ok`: every difference 0, the ledger balanced
and its identity whole, every user order settled (or refunded) and nothing left to pay.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

from mixmaker.engine.audit import identity_gap, ledger_figures, observed_units
from mixmaker.funds import accounts as acc
from mixmaker.funds.assets import AssetMap
from mixmaker.funds.ledger import Ledger
from mixmaker.money import format_units, to_units
from mixmaker.users.orders import OrderBook, OrderState
from mixmaker.users.payouts import Outbox, PayoutKind, PayoutState
from mixmaker.users.statement import statement

LEDGER_KEYS = ("payments", "refunds", "payouts", "fees", "bot_share", "trading_result", "held")
DONE = (OrderState.SETTLED, OrderState.REFUNDED)


def _dec(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _text(ledger: Ledger, asset: str, units: int) -> str:
    return format_units(units, ledger.decimals(asset), trim=True)


def _amounts(ledger: Ledger, amounts: Mapping[str, int]) -> dict[str, str]:
    return {a: _text(ledger, a, u) for a, u in sorted(amounts.items()) if u}


def statement_json(ledger: Ledger, orders: OrderBook, outbox: Outbox, order_id: str) -> dict[str, Any]:
    st = statement(ledger, orders, outbox, order_id)
    o = st.order
    return {
        "pool": o.pool_id, "payer": o.payer,
        "payments": [{"snapshot": sid, "action": action, "asset": asset, "amount": _text(ledger, asset, units)}
                     for sid, action, asset, units in st.payments],
        "paid": _amounts(ledger, st.paid), "into_pool": _amounts(ledger, st.into_pool),
        "mints": [{k: str(v) for k, v in m.items()} for m in st.mints],
        "out_of_pool": _amounts(ledger, st.out_of_pool), "result": _amounts(ledger, st.result),
        "burn": {k: str(v) for k, v in st.burn.items()},
        "bot_share": _amounts(ledger, st.bot_share), "rounding": _amounts(ledger, st.rounding),
        "refunded": _amounts(ledger, st.refunded), "payouts": _amounts(ledger, st.payouts),
        "dust": _amounts(ledger, st.dust), "owed_now": _amounts(ledger, st.owed_now),
        "problems": st.problems(),
    }


def build(ledger: Ledger, orders: OrderBook, outbox: Outbox, assets: AssetMap, *,
          users_before: Mapping[str, Mapping[str, str]], users_after: Mapping[str, Mapping[str, str]],
          bot_wallet: Mapping[str, Decimal], exchanges: Mapping[str, Mapping[str, Decimal]],
          fee_payers: Collection[str] = ()) -> dict[str, Any]:
    """`users_*`: each payer's balance per asset symbol on the Mixin simulator (decimal text),
    the fee payers' (`fee_payers`: Mixin user ids) among them;
    `bot_wallet`: the bot's balance there; `exchanges`: each exchange account's free + locked."""
    report: dict[str, Any] = {"assets": {}, "user_orders": [], "reconciliation": {}, "ok": True}
    places, users_rec, identity = [], {}, {}
    ok = True
    for spec in assets:
        sym, dec = spec.symbol, ledger.decimals(spec.symbol)
        fig = ledger_figures(ledger, sym)
        gap = identity_gap(fig)
        identity[sym] = {"gap": _text(ledger, sym, gap), "unknown_deposits": _text(ledger, sym, fig["unknown_deposits"])}
        difference = 0
        w_ledger, w_seen = ledger.owed(acc.WALLET, sym), bot_wallet.get(sym, Decimal(0))
        difference += abs(w_ledger - observed_units(w_seen, dec))
        places.append({"place": "wallet", "asset": sym, "ledger": _text(ledger, sym, w_ledger), "observed": _dec(w_seen),
                       "difference": _text(ledger, sym, w_ledger - observed_units(w_seen, dec))})
        observed_ex = {}
        for name, held in sorted(exchanges.items()):
            e_ledger, e_seen = ledger.owed(acc.exchange(name), sym), held.get(sym, Decimal(0))
            difference += abs(e_ledger - observed_units(e_seen, dec))
            observed_ex[name] = _dec(e_seen)
            places.append({"place": f"exchange:{name}", "asset": sym, "ledger": _text(ledger, sym, e_ledger),
                           "observed": _dec(e_seen), "difference": _text(ledger, sym, e_ledger - observed_units(e_seen, dec))})
        users: dict[str, dict[str, str]] = {}
        payers: dict[str, dict[str, str]] = {}
        change = 0
        for uid in sorted(users_before):
            before = users_before[uid].get(sym, "0")
            after = users_after.get(uid, {}).get(sym, before)
            (payers if uid in fee_payers else users)[uid] = {"before": before, "after": after}
            change += to_units(after, dec) - to_units(before, dec)
        users_ledger = fig["refunds"] + fig["payouts"] - fig["payments"]
        difference += abs(users_ledger - change)
        users_rec[sym] = {"ledger": _text(ledger, sym, users_ledger), "observed": _text(ledger, sym, change),
                          "difference": _text(ledger, sym, users_ledger - change)}
        report["assets"][sym] = {
            "ledger": {k: _text(ledger, sym, fig[k]) for k in LEDGER_KEYS},
            "observed": {"users": users, "users_change": _text(ledger, sym, change), "fee_payers": payers,
                         "bot_wallet": _dec(w_seen), "exchange": observed_ex},
            "difference": _text(ledger, sym, difference),
        }
        ok = ok and difference == 0 and gap == 0
    problems = ledger.verify()
    for o in orders.all():
        st = statement_json(ledger, orders, outbox, o.order_id)
        report["user_orders"].append({"id": o.order_id, "state": o.state.value, "statement": st})
        ok = ok and o.state in DONE and not st["problems"] and not st["owed_now"]
    unpaid = [p.payout_id for p in outbox.all() if p.state in (PayoutState.QUEUED, PayoutState.FAILED)]
    report["reconciliation"] = {"places": places, "users": users_rec, "identity": identity,
                                "ledger_problems": problems, "unpaid": unpaid,
                                "refunds": [{"snapshot": p.snapshot_id, "to": p.opponent, "asset": p.asset,
                                             "amount": _text(ledger, p.asset, p.units), "reason": p.reason,
                                             "state": p.state.value} for p in outbox.all() if p.kind is PayoutKind.REFUND]}
    report["ok"] = bool(ok and not problems and not unpaid)
    return report
