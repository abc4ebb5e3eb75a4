"""Issue 15 end to end, on the Mixin simulator and the exchange simulator: four users fund orders by
memo (one bad memo, refunded; one order in two payments; two orders in one pool), the pools trade
against a moving market, the users stop, and the statements, the ledger and both simulators agree
to the unit."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import AsyncIterator

import pytest

pytest.importorskip("picows", reason="the connector and the simulator need picows")

from mixin_world import make_world  # noqa: E402
from mixmaker.funds import accounts as acc  # noqa: E402
from mixmaker.funds.accounts import AccountKind, Flow  # noqa: E402
from mixmaker.funds.allocation import SimDirectAllocator, SimVenueAccount  # noqa: E402
from mixmaker.funds.assets import AssetMap, AssetSpec, VenueAsset  # noqa: E402
from mixmaker.funds.ledger import Ledger  # noqa: E402
from mixmaker.mixin.amounts import to_units as mixin_units  # noqa: E402
from mixmaker.mixin.payments import Payments  # noqa: E402
from mixmaker.mixin.snapshots import SnapshotReader  # noqa: E402
from mixmaker.sim.exchange.server import ExchangeSim  # noqa: E402
from mixmaker.sim.mixin.setup import BTC, USDT_ERC20  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402
from mixmaker.strategy import PMMConfig  # noqa: E402
from mixmaker.users import memo as m  # noqa: E402
from mixmaker.users.catalog import AssetLimits, Catalog, Limits, MarketSpec, Preset  # noqa: E402
from mixmaker.users.intake import Intake, RefundReason  # noqa: E402
from mixmaker.users.lifecycle import OrderWorker  # noqa: E402
from mixmaker.users.orders import OrderBook, OrderState  # noqa: E402
from mixmaker.users.payouts import Outbox, PayoutWorker  # noqa: E402
from mixmaker.users.pool_fills import FillBook  # noqa: E402
from mixmaker.users.pool_runtime import PoolRuntime, setups_from_catalog  # noqa: E402
from mixmaker.users.pools import PoolLedger, Pools, terms_from_catalog  # noqa: E402
from mixmaker.users.statement import statement  # noqa: E402
from pool_helpers import connector_for, exchange_sim, sim_units, until  # noqa: E402

MARKET = "binance:BTC/USDT"
TIGHT, WIDE = f"{MARKET}:tight", f"{MARKET}:wide"
ASSETS = {"BTC": BTC, "USDT": USDT_ERC20}


def catalog() -> Catalog:
    def u(x: str) -> int:
        return int(Decimal(x).scaleb(8))

    quick = {"order_amount": Decimal("0.001"), "order_refresh_time": Decimal("2"), "filled_order_delay": Decimal("0.2")}
    return Catalog(
        AssetMap([AssetSpec("BTC", BTC, 8, {"binance": VenueAsset("BTC", "BTC")}),
                  AssetSpec("USDT", USDT_ERC20, 8, {"binance": VenueAsset("USDT", "ETH")})]),
        [MarketSpec("binance", "BTC/USDT", "BTC", "USDT", 2, 5)],
        [Preset("tight", PMMConfig(bid_spread=Decimal("0.0001"), ask_spread=Decimal("0.0001"), **quick)),
         Preset("wide", PMMConfig(bid_spread=Decimal("0.0003"), ask_spread=Decimal("0.0003"), **quick))],
        Limits({"BTC": AssetLimits(u("0.0001"), u("1"), u("0.00000100")),
                "USDT": AssetLimits(u("10"), u("100000"), u("0.01"))}, bot_share=Fraction(1, 10)),
    )


@dataclass
class Wired:
    """Issue 15's parts on one database, as the engine (issue 17) will wire them."""

    store: SqliteStore
    ledger: Ledger
    orders: OrderBook
    outbox: Outbox
    intake: Intake
    worker: OrderWorker
    payer: PayoutWorker
    reader: SnapshotReader
    rt: PoolRuntime
    xsim: ExchangeSim

    async def cycle(self) -> None:
        """One pass of every worker: intake, the order lifecycle, payouts."""
        await self.reader.poll(self.intake.handle)
        await self.worker.run_once()
        await self.payer.run_once()


@asynccontextmanager
async def wired(world, path, custody: str) -> AsyncIterator[Wired]:
    cat = catalog()
    store = SqliteStore(path)
    ledger = Ledger(store)
    cat.assets.register(ledger)
    orders = OrderBook(store)
    outbox = Outbox(store, ledger, cat.assets, cat.limits, orders)
    client = world.client()
    payments = Payments(client, store, uncertain_backoff_s=0.01)
    async with exchange_sim({}) as xsim, connector_for(xsim) as conn:
        allocator = SimDirectAllocator(store, ledger, cat.assets, payments, mixin_sim_url=world.server.url,
                                       custody_user_id=custody,
                                       venues={"binance": SimVenueAccount(conn.venue, xsim.rest_url, "mm")})
        intake = Intake(store, ledger, cat, orders, outbox, app_id=world.bot["app_id"], own_deposits=allocator)
        book = PoolLedger(store, ledger, terms_from_catalog(cat))
        rt = PoolRuntime(conn, store, book, FillBook(store, ledger), setups_from_catalog(cat, "binance"),
                         assets=cat.assets, tick_s="0.1", poll_s=0.5)
        worker = OrderWorker(store, ledger, orders, outbox, allocator, Pools(book, {"binance": rt}))
        await rt.start()
        try:
            yield Wired(store, ledger, orders, outbox, intake, worker, PayoutWorker(outbox, payments),
                        SnapshotReader(client, store), rt, xsim)
        finally:
            await rt.stop()
            await client.close()
            store.close()


def test_four_users_pay_trade_stop_and_every_unit_is_accounted_for(tmp_path):
    world = make_world(seed=15)
    state = world.state
    bot = world.bot["app_id"]
    custody = state.add_user(full_name="exchange custody").user_id
    for asset_id, amount in ((BTC, "10"), (USDT_ERC20, "1000000")):
        state.deposit(custody, asset_id, mixin_units(amount))  # the exchange's hot wallet float
    users = {name: state.add_user(full_name=name).user_id for name in ("u1", "u2", "u3", "u4")}
    for uid in users.values():
        state.deposit(uid, BTC, mixin_units("1"))
        state.deposit(uid, USDT_ERC20, mixin_units("5000"))
    start = {uid: (state.balance(uid, BTC), state.balance(uid, USDT_ERC20)) for uid in users.values()}

    def pay(user: str, asset: str, amount: str, extra: bytes) -> None:
        state.user_sends(users[user], bot, ASSETS[asset], mixin_units(amount), extra)

    async def cycle_until(w: Wired, check, what: str, timeout: float = 90) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not check():
            if loop.time() > end:
                raise AssertionError(f"timed out waiting for {what}: "
                                     f"{[(o.order_id[:8], o.state.value) for o in w.orders.all()]}")
            await w.cycle()
            await asyncio.sleep(0.05)

    async def go() -> None:
        async with wired(world, tmp_path / "mixmaker.db", custody) as w:
            o2, o3, o4 = (str(uuid.uuid4()) for _ in range(3))
            pay("u1", "USDT", "50", b"not a memo at all")  # refunded: bad memo
            # u2 funds one order in two payments; u2 and u3 share the tight pool; u4 is alone in wide
            pay("u2", "USDT", "120", m.to_extra(m.CreateMemo(o2, MARKET, "tight", 0, mixin_units("200"))))
            pay("u3", "BTC", "0.004", m.to_extra(m.CreateMemo(o3, MARKET, "tight", mixin_units("0.004"), 0)))
            pay("u4", "BTC", "0.003", m.to_extra(m.CreateMemo(o4, MARKET, "wide", mixin_units("0.003"),
                                                              mixin_units("150"))))
            await w.cycle()
            assert w.orders.order(o2).state is OrderState.AWAITING_FUNDS
            pay("u2", "USDT", "80", m.to_extra(m.AddMemo(o2)))
            pay("u4", "USDT", "150", m.to_extra(m.AddMemo(o4)))
            await cycle_until(w, lambda: all(w.orders.order(o).state is OrderState.ACTIVE for o in (o2, o3, o4)),
                              "every order active")
            fills = Counter()

            def count_fills() -> bool:
                fills.clear()
                for pid in (TIGHT, WIDE):
                    fills[pid] = sum(1 for t in w.ledger.transactions(ref=pid) if t.cause == "fill")
                return fills[TIGHT] >= 4 and fills[WIDE] >= 2

            await until(count_fills, "the pools to trade against the moving market", timeout=150)
            # stops: u3 leaves the tight pool first (u2 stays in it), then the others
            pay("u3", "USDT", "1", m.to_extra(m.StopMemo(o3)))
            await cycle_until(w, lambda: w.orders.order(o3).state is OrderState.SETTLED, "u3 settled")
            assert w.rt.engines[TIGHT].executor.status.name == "RUNNING"  # the pool went on for u2
            pay("u2", "USDT", "1", m.to_extra(m.StopMemo(o2)))
            pay("u4", "BTC", "0.0001", m.to_extra(m.StopMemo(o4)))
            await cycle_until(w, lambda: all(w.orders.order(o).state is OrderState.SETTLED for o in (o2, o3, o4))
                              and not w.outbox.queued(), "every order settled and paid")
            assert await w.rt.stop()
            await w.cycle()

            # --- u1's bad memo was refunded, in full, to u1 -------------------------------------
            refund = [p for p in w.outbox.all() if p.reason == RefundReason.BAD_MEMO.value]
            assert len(refund) == 1 and refund[0].opponent == users["u1"]
            assert (state.balance(users["u1"], BTC), state.balance(users["u1"], USDT_ERC20)) == start[users["u1"]]

            # --- the ledger balances, and equals both simulators ---------------------------------
            assert w.ledger.verify() == []
            for sym, asset_id in ASSETS.items():
                assert w.ledger.owed(acc.WALLET, sym) == state.balance(bot, asset_id), f"Mixin wallet {sym}"
                assert w.ledger.owed(acc.exchange("binance"), sym) == sim_units(w.xsim, sym), f"exchange {sym}"
                assert w.ledger.holdings_of(acc.transit(f"{o2}.in.{sym}")) == {}

            # --- statements: each one sums, and they agree with the pools' fills to the unit ----
            sts = {o: statement(w.ledger, w.orders, w.outbox, o) for o in (o2, o3, o4)}
            for st in sts.values():
                assert st.problems() == []
                assert st.owed_now == {}  # paid out in full
                assert st.mints and st.burn
            fill_txs = {pid: [t for t in w.ledger.transactions(ref=pid) if t.cause == "fill"] for pid in (TIGHT, WIDE)}
            assert sum(len(v) for v in fill_txs.values()) == len(w.xsim.venue.engine.my_trades("mm", "BTCUSDT"))
            # the two pools never met each other: no order of ours was expired by the venue's STP
            assert not [o for o in w.xsim.venue.engine.orders.values() if o.status == "EXPIRED_IN_MATCH"]
            for pid, members in ((TIGHT, (o2, o3)), (WIDE, (o4,))):
                assert w.ledger.holdings_of(acc.pool(pid)) == {}  # its last member took the rest
                traded: Counter[str] = Counter()
                for t in fill_txs[pid]:
                    for e in t.entries:
                        if e.account == acc.pool(pid):
                            traded[e.asset] -= e.units  # the pool's claim grew by what it gained
                result: Counter[str] = Counter()
                for o in members:
                    for a, u in sts[o].result.items():
                        result[a] += u
                assert {a: u for a, u in result.items() if u} == {a: u for a, u in traded.items() if u}, pid

            # --- for every asset: payments = refunds + pools + fees + bot + payouts (+ rounding ...) -
            for sym in ASSETS:
                f = w.ledger.flows(sym)

                def flow(kind: Flow) -> int:
                    return f.get((kind, sym), 0)

                def owed(kind: AccountKind) -> int:
                    return -sum(u for (_, s_), u in w.ledger.balances(kind).items() if s_ == sym)

                payments_in = flow(Flow.PAYMENT)
                trading_result = flow(Flow.TRADE)  # what the pools' fills brought in, before fees
                fee_giveback = flow(Flow.ROUNDING)  # fees booked at their ceiling, the excess in whole units
                assert payments_in == sum(st.paid.get(sym, 0) for st in sts.values()) + sum(
                    r.units for r in refund if r.asset == sym)
                assert -flow(Flow.PAYOUT) == sum(st.payouts.get(sym, 0) for st in sts.values())
                assert owed(AccountKind.BOT) == sum(st.bot_share.get(sym, 0) for st in sts.values())
                assert -flow(Flow.FEE_TRADING) == sum(
                    e.units for ts in fill_txs.values() for t in ts for e in t.entries
                    if e.flow is Flow.FEE_TRADING and e.asset == sym and e.account.kind is AccountKind.EXCHANGE) * -1
                assert payments_in + trading_result + fee_giveback == (
                    -flow(Flow.REFUND) + owed(AccountKind.POOL) - flow(Flow.FEE_TRADING) + owed(AccountKind.BOT)
                    - flow(Flow.PAYOUT) + owed(AccountKind.USER_ORDER) + owed(AccountKind.ROUNDING)
                    + owed(AccountKind.UNCLAIMED) + owed(AccountKind.REFUND)), sym
            assert fills[TIGHT] >= 4 and fills[WIDE] >= 2


    try:
        asyncio.run(asyncio.wait_for(go(), 400))
    finally:
        world.server.stop()
