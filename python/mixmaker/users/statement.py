"""A user order's statement: what it paid, what went into its pool and came back, the bot's share,
what was refunded or paid out, and what it is still owed — all read from the ledger's
transactions about the order (ref = order id), so the statement and the ledger cannot disagree.

Per asset, in ledger units:

    paid - into pool + out of pool - refunded - paid out - dust = owed now

where "out of pool" is what the burn credited (the order's part of the pool at the burn, less
the bot's share of its gain), and "result" = out of pool + bot's share + rounding - into pool is
the pool's result over the order's stay, in kind, before the bot's share.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import AccountKind, Flow
from mixmaker.funds.ledger import Ledger
from mixmaker.users.orders import OrderBook, UserOrder
from mixmaker.users.payouts import Outbox, Payout

_ORDER_FLOWS = {Flow.PAYMENT: "paid", Flow.MINT: "into_pool", Flow.BURN: "out_of_pool", Flow.REFUND: "refunded",
                Flow.PAYOUT: "payouts", Flow.DUST: "dust"}


@dataclass
class Statement:
    order: UserOrder
    payments: list[tuple[str, str, str, int]]  # (snapshot id, action, asset, units)
    paid: dict[str, int] = field(default_factory=dict)
    into_pool: dict[str, int] = field(default_factory=dict)
    out_of_pool: dict[str, int] = field(default_factory=dict)
    bot_share: dict[str, int] = field(default_factory=dict)
    rounding: dict[str, int] = field(default_factory=dict)
    refunded: dict[str, int] = field(default_factory=dict)
    payouts: dict[str, int] = field(default_factory=dict)
    dust: dict[str, int] = field(default_factory=dict)
    owed_now: dict[str, int] = field(default_factory=dict)
    mints: list[dict[str, object]] = field(default_factory=list)  # each mint's detail (shares, value, mid)
    burn: dict[str, object] = field(default_factory=dict)  # the burn's detail (value now, fees if known)
    sent: list[Payout] = field(default_factory=list)
    events: list[tuple[str, str, str, str]] = field(default_factory=list)

    @property
    def result(self) -> dict[str, int]:
        """The pool's result over the order's stay, per asset in kind, before the bot's share."""
        assets = set(self.into_pool) | set(self.out_of_pool)
        return {a: self.out_of_pool.get(a, 0) + self.bot_share.get(a, 0) + self.rounding.get(a, 0)
                - self.into_pool.get(a, 0) for a in sorted(assets)}

    def problems(self) -> list[str]:
        """Where the statement's own sum differs from what the ledger says the order is owed."""
        out = []
        assets = set(self.paid) | set(self.owed_now) | set(self.out_of_pool)
        for a in sorted(assets):
            expect = (self.paid.get(a, 0) - self.into_pool.get(a, 0) + self.out_of_pool.get(a, 0)
                      - self.refunded.get(a, 0) - self.payouts.get(a, 0) - self.dust.get(a, 0))
            if expect != self.owed_now.get(a, 0):
                out.append(f"{a}: the statement sums to {expect}, the ledger owes {self.owed_now.get(a, 0)}")
        return out

    def render(self, ledger: Ledger) -> str:
        o = self.order
        lines = [f"user order {o.order_id}  {o.state.value}  pool {o.pool_id}  payer {o.payer}"]
        for sid, action, asset, units in self.payments:
            lines.append(f"  paid      {ledger.format(asset, units):>24} {asset:<6} {action:<6} snapshot {sid}")
        for m in self.mints:
            lines.append(f"  minted    {str(m.get('shares', '?')):>24} shares  value {m.get('value', '?')} mid {m.get('mid', '?')}")
        sections = (("into pool", self.into_pool), ("from pool", self.out_of_pool), ("result", self.result),
                    ("bot share", self.bot_share), ("rounding", self.rounding), ("refunded", self.refunded),
                    ("paid out", self.payouts), ("dust", self.dust), ("owed now", self.owed_now))
        for title, amounts in sections:
            for asset, units in sorted(amounts.items()):
                if units:
                    lines.append(f"  {title:<9} {ledger.format(asset, units):>24} {asset}")
        for key, title in (("value_at_mint", "value at mint"), ("value_now", "value at burn"), ("mid", "mid at burn"),
                           ("fees", "fees")):
            if key in self.burn:
                lines.append(f"  {title:<13} {self.burn[key]} (quote units)" if key != "fees" else f"  fees {self.burn[key]}")
        return "\n".join(lines)


def statement(ledger: Ledger, orders: OrderBook, outbox: Outbox, order_id: str) -> Statement:
    st = Statement(orders.order(order_id), orders.payments(order_id))
    mine = acc.user_order(order_id)
    sums: dict[str, Counter[str]] = {name: Counter() for name in (*_ORDER_FLOWS.values(), "bot_share", "rounding")}
    for p in ledger.transactions(ref=order_id):
        for e in p.entries:
            if e.account == mine and e.flow in _ORDER_FLOWS:
                delta = -e.units  # claims are negative: what the order is owed moves the other way
                name = _ORDER_FLOWS[e.flow]
                sums[name][e.asset] += delta if e.flow in (Flow.PAYMENT, Flow.BURN) else -delta
            elif e.account.kind is AccountKind.BOT and e.flow is Flow.BOT_SHARE:
                sums["bot_share"][e.asset] -= e.units
            elif e.account.kind is AccountKind.ROUNDING and e.flow is Flow.ROUNDING:
                sums["rounding"][e.asset] -= e.units
        if p.cause == "mint":
            st.mints.append(dict(p.detail))
        elif p.cause == "burn":
            st.burn = dict(p.detail)
    for name, counter in sums.items():
        setattr(st, name, {a: u for a, u in sorted(counter.items()) if u})
    st.owed_now = {a: u for a, u in ledger.holdings_of(mine).items() if u}
    st.sent = outbox.of_order(order_id)
    st.events = orders.events(order_id)
    return st
