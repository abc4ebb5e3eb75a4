"""What the end-to-end funds tests check at the end of a run, from the database and from what the
simulators really hold (read over their real APIs: Mixin outputs, the exchange's balances)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
from funds_engine import engine_catalog

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import AccountKind, Flow
from mixmaker.funds.ledger import Ledger
from mixmaker.funds.moves import Direction, MoveBook, MoveState
from mixmaker.mixin import Keystore, MixinClient
from mixmaker.money import Rounding, to_units
from mixmaker.store import SqliteStore
from mixmaker.users.orders import OrderBook, OrderState
from mixmaker.users.payouts import Outbox, PayoutState
from mixmaker.users.statement import statement

ASSETS = {"BTC": "c6d0c728-2624-429b-8e0d-d9d19b6592fa", "USDT": "4d8c508b-91c5-375b-92b0-ee702ed2dac5",
          "ETH": "43d61dcd-e413-450d-80b8-101d5e903357"}
CURRENCY = {"BTC": "BTC", "USDT": "USDT"}


async def venue_holdings(sims: dict[str, Any]) -> tuple[dict[str, int], dict[str, int], int]:
    """(the bot's Mixin wallet, the bot's exchange account, how many withdrawals the exchange
    made) per asset, in 1e-8 units, as the real clients read them."""
    async with MixinClient(Keystore.from_dict(sims["mixin"]["keystore"]), sims["mixin"]["url"]) as c:
        wallet = {sym: sum([o.units async for o in c.iter_outputs(asset=aid)]) for sym, aid in ASSETS.items()}
    ex = sims["exchange"]
    client = ccxt.binance({"apiKey": ex["api_key"], "secret": ex["api_secret"], "urls": ex["ccxt_urls"],
                           "options": ex["ccxt_options"], "enableRateLimit": False})
    client.number = str
    try:
        b = await client.fetch_balance()
        withdrawals = sum([len(await client.fetch_withdrawals(cur)) for cur in CURRENCY.values()])
    finally:
        await client.close()
    exchange = {sym: to_units(Decimal(str(b.get("total", {}).get(cur) or "0")), 8, rounding=Rounding.FLOOR)
                for sym, cur in CURRENCY.items()}
    return wallet, exchange, withdrawals


def check_books(db: str, sims: dict[str, Any], wallet: dict[str, int], exchange: dict[str, int], *,
                paid_in: Counter[str], received: Counter[str], orders_expected: int,
                mixin_withdrawals: int | None = None, exchange_withdrawals: int | None = None) -> dict[str, Any]:
    """Everything the issue asks at the end of a flow; returns figures for the test's own use.

    `paid_in`: what users and the operator really paid the bot, per asset; `received`: what users
    really got back (refunds and payouts), per asset, both read from the Mixin simulator."""
    store = SqliteStore(db)
    try:
        ledger = Ledger(store)
        orders = OrderBook(store)
        assert ledger.verify() == []
        states = Counter(o.state for o in orders.all())
        assert states[OrderState.SETTLED] == orders_expected, states
        # every move done, nothing left in transit
        moves = MoveBook(store, ledger)
        for m in moves.all():
            assert m.state in (MoveState.ARRIVED, MoveState.FAILED), (m.move_id, m.state, m.last_signal)
            assert ledger.holdings_of(m.transit) == {}, m.move_id
        # every withdrawal on either side is one of our moves, made once
        sent = [m for m in moves.all() if m.sent_ns or m.exchange_id]
        if mixin_withdrawals is not None:
            assert mixin_withdrawals == len([m for m in sent if m.direction is Direction.TO_EXCHANGE]), sent
        if exchange_withdrawals is not None:
            assert exchange_withdrawals == len([m for m in sent if m.direction is Direction.TO_MIXIN]), sent
        # the ledger equals what the simulators hold
        for sym in ("BTC", "USDT", "ETH"):
            assert ledger.owed(acc.WALLET, sym) == wallet[sym], f"Mixin wallet {sym}"
        for sym in ("BTC", "USDT"):
            assert ledger.owed(acc.exchange("binance"), sym) == exchange[sym], f"exchange {sym}"
        # nobody paid twice: each payout and refund row sent once; users got exactly the ledger's payouts
        cat = engine_catalog()
        outbox = Outbox(store, ledger, cat.assets, cat.limits, orders)
        assert not [p for p in outbox.all() if p.state is PayoutState.QUEUED]
        figures = {}
        for sym in ("BTC", "USDT", "ETH"):
            f = ledger.flows(sym)

            def flow(kind: Flow, f: dict = f, sym: str = sym) -> int:
                return f.get((kind, sym), 0)

            def owed(kind: AccountKind, ident: str | None = None, sym: str = sym) -> int:
                return -sum(u for (a, s), u in ledger.balances(kind).items() if s == sym and ident in (None, a.id))

            payments = flow(Flow.PAYMENT)
            trading = flow(Flow.TRADE) + flow(Flow.ROUNDING)  # fills, and fee ceilings given back in whole units
            fees = -(flow(Flow.FEE_TRADING) + flow(Flow.FEE_NETWORK) + flow(Flow.FEE_WITHDRAWAL))
            payouts, refunds = -flow(Flow.PAYOUT), -flow(Flow.REFUND)
            bot_share = owed(AccountKind.BOT, "share")
            held = (owed(AccountKind.USER_ORDER) + owed(AccountKind.POOL) + owed(AccountKind.REFUND)
                    + owed(AccountKind.UNCLAIMED) + owed(AccountKind.ROUNDING) + owed(AccountKind.BOT, "fees"))
            assert payments == paid_in[sym], (sym, payments, paid_in[sym])
            assert payouts + refunds == received[sym], (sym, payouts, refunds, received[sym])
            assert payments + trading + flow(Flow.UNKNOWN_DEPOSIT) == payouts + refunds + fees + bot_share + held, sym
            # what is held (the bot's share included) is exactly what the simulators hold
            assert bot_share + held == wallet[sym] + exchange.get(sym, 0), sym
            figures[sym] = {"payments": payments, "trading": trading, "fees": fees, "payouts": payouts,
                            "refunds": refunds, "bot_share": bot_share, "held": held}
        # every snapshot of the bot was explained: nothing unknown, nothing left unexplained
        intake = dict(store.query("SELECT class, COUNT(*) FROM user_intake GROUP BY class"))
        assert "unknown" not in intake and "not_ours" not in intake, intake
        kinds = {k for (k,) in store.query("SELECT kind FROM user_alerts")}
        assert not kinds & {"unknown_deposit", "unexpected_outgoing", "payment_refused", "return_failed"}, kinds
        funds_kinds = {k for (k,) in store.query("SELECT kind FROM funds_alerts")}
        assert not funds_kinds & {"move_mismatch", "reconciliation", "address_changed", "move_in_doubt"}, funds_kinds
        for o in orders.all():
            st = statement(ledger, orders, outbox, o.order_id)
            assert st.problems() == [], (o.order_id, st.problems())
            assert st.owed_now == {}, (o.order_id, st.owed_now)
        return figures
    finally:
        store.close()
