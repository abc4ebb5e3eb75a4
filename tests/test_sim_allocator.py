"""Issue 15's SimDirectAllocator on both simulators: money really moves (the bot's Mixin wallet,
the custody user, the exchange account), the ledger follows it through transit, and a call
repeated after a crash at any step neither moves it twice nor loses it."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator

import pytest

pytest.importorskip("picows", reason="the exchange simulator needs picows")

from mixin_world import make_world  # noqa: E402
from mixmaker.funds import accounts as acc  # noqa: E402
from mixmaker.funds.accounts import Flow  # noqa: E402
from mixmaker.funds.allocation import (  # noqa: E402
    AllocationState,
    Direction,
    SimDirectAllocator,
    SimVenueAccount,
    move_id,
)
from mixmaker.funds.assets import AssetMap, AssetSpec, VenueAsset  # noqa: E402
from mixmaker.funds.ledger import Ledger  # noqa: E402
from mixmaker.mixin.amounts import to_units as mixin_units  # noqa: E402
from mixmaker.mixin.payments import Payments  # noqa: E402
from mixmaker.sim.mixin.setup import BTC, USDT_ERC20  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402
from pool_helpers import connector_for, exchange_sim, sim_units  # noqa: E402

ASSETS = AssetMap([AssetSpec("BTC", BTC, 8, {"binance": VenueAsset("BTC")}),
                   AssetSpec("USDT", USDT_ERC20, 8, {"binance": VenueAsset("USDT")})])
POOL = "binance:BTC/USDT:tight"


class Crash(BaseException):
    """A process dying: not an Exception, so nothing on the way catches it."""


@pytest.fixture
def world():
    w = make_world(seed=16)
    w.custody = w.state.add_user(full_name="exchange custody").user_id
    w.state.deposit(w.custody, BTC, mixin_units("5"))
    w.state.deposit(w.custody, USDT_ERC20, mixin_units("100000"))
    w.state.deposit(w.bot["app_id"], BTC, mixin_units("1"))
    w.state.deposit(w.bot["app_id"], USDT_ERC20, mixin_units("1000"))
    yield w
    w.server.stop()


def fund_wallet(ledger: Ledger) -> None:
    """The bot's Mixin wallet as the ledger knows it (the deposits above)."""
    entries = [*acc.inflow(Flow.UNKNOWN_DEPOSIT, "BTC", 10**8, acc.WALLET, acc.unclaimed("seed")),
               *acc.inflow(Flow.UNKNOWN_DEPOSIT, "USDT", 1000 * 10**8, acc.WALLET, acc.unclaimed("seed"))]
    ledger.post_now("unknown-deposit:seed", entries)


@asynccontextmanager
async def allocator(world, store, ledger, xsim, conn, **kw) -> AsyncIterator[SimDirectAllocator]:
    client = world.client()
    try:
        yield SimDirectAllocator(store, ledger, ASSETS, Payments(client, store, uncertain_backoff_s=0.01),
                                 mixin_sim_url=world.server.url, custody_user_id=kw.pop("custody", world.custody),
                                 venues={"binance": SimVenueAccount(conn.venue, xsim.rest_url, "mm")}, **kw)
    finally:
        await client.close()


def holdings(world, ledger, xsim) -> dict:
    bot = world.bot["app_id"]
    return {"wallet": (world.state.balance(bot, BTC), world.state.balance(bot, USDT_ERC20)),
            "ledger_wallet": (ledger.owed(acc.WALLET, "BTC"), ledger.owed(acc.WALLET, "USDT")),
            "exchange": (sim_units(xsim, "BTC"), sim_units(xsim, "USDT")),
            "ledger_exchange": (ledger.owed(acc.exchange("binance"), "BTC"), ledger.owed(acc.exchange("binance"), "USDT")),
            "custody": (world.state.balance(world.custody, BTC), world.state.balance(world.custody, USDT_ERC20))}


AMOUNTS = {"BTC": 30_000_000, "USDT": 250 * 10**8}


def test_there_and_back_with_the_ledger_in_step(world, tmp_path):
    async def go():
        store = SqliteStore(tmp_path / "a.db")
        ledger = Ledger(store)
        ASSETS.register(ledger)
        fund_wallet(ledger)
        async with exchange_sim({}, feed=None) as xsim, connector_for(xsim) as conn:
            await conn.venue.load_markets()
            async with allocator(world, store, ledger, xsim, conn) as al:
                before = holdings(world, ledger, xsim)
                assert await al.to_exchange("o1", POOL, AMOUNTS) is AllocationState.DONE
                after = holdings(world, ledger, xsim)
                assert after["wallet"] == (before["wallet"][0] - AMOUNTS["BTC"], before["wallet"][1] - AMOUNTS["USDT"])
                assert after["custody"] == (before["custody"][0] + AMOUNTS["BTC"], before["custody"][1] + AMOUNTS["USDT"])
                assert after["exchange"] == (AMOUNTS["BTC"], AMOUNTS["USDT"])
                assert after["ledger_wallet"] == after["wallet"] and after["ledger_exchange"] == after["exchange"]
                assert ledger.holdings_of(acc.transit(move_id("o1", Direction.IN, "BTC"))) == {}
                # asked again (a worker's next pass, a restart): nothing moves twice
                assert await al.to_exchange("o1", POOL, AMOUNTS) is AllocationState.DONE
                assert holdings(world, ledger, xsim) == after and len(xsim.venue.deposits) == 2
                back = {"BTC": 10_000_000, "USDT": 100 * 10**8}
                assert await al.to_mixin("o1", POOL, back) is AllocationState.DONE
                assert await al.to_mixin("o1", POOL, back) is AllocationState.DONE
                end = holdings(world, ledger, xsim)
                assert end["wallet"] == (after["wallet"][0] + back["BTC"], after["wallet"][1] + back["USDT"])
                assert end["exchange"] == (AMOUNTS["BTC"] - back["BTC"], AMOUNTS["USDT"] - back["USDT"])
                assert end["ledger_wallet"] == end["wallet"] and end["ledger_exchange"] == end["exchange"]
                assert len(xsim.venue.withdrawals) == 2
                with pytest.raises(Exception, match="was asked for"):
                    await al.to_exchange("o1", POOL, {"BTC": 1})
        assert ledger.verify() == []
        store.close()

    asyncio.run(go())


@pytest.mark.parametrize("step", ["paid", "deposited", "withdrawn", "custody_paid"])
def test_a_crash_after_any_external_call_resumes_without_doubling(world, tmp_path, step):
    async def go():
        store = SqliteStore(tmp_path / "a.db")
        ledger = Ledger(store)
        ASSETS.register(ledger)
        fund_wallet(ledger)

        def die(s: str, mid: str) -> None:
            if s == step and mid.endswith(".BTC"):
                raise Crash(f"{s} {mid}")

        async with exchange_sim({}, feed=None) as xsim, connector_for(xsim) as conn:
            await conn.venue.load_markets()
            async with allocator(world, store, ledger, xsim, conn, crash_at=die) as al:
                try:
                    await al.to_exchange("o1", POOL, AMOUNTS)
                    await al.to_mixin("o1", POOL, AMOUNTS)
                except Crash:
                    pass
                else:
                    raise AssertionError(f"never reached {step}")
            async with allocator(world, store, ledger, xsim, conn) as al:  # a new process on the same files
                assert await al.to_exchange("o1", POOL, AMOUNTS) is AllocationState.DONE
                assert await al.to_mixin("o1", POOL, AMOUNTS) is AllocationState.DONE
                h = holdings(world, ledger, xsim)
        assert h["wallet"] == h["ledger_wallet"] == (10**8, 1000 * 10**8)  # all of it back, once
        assert h["exchange"] == h["ledger_exchange"] == (0, 0)
        assert len(xsim.venue.deposits) == 2 and len(xsim.venue.withdrawals) == 2
        assert ledger.verify() == []
        store.close()

    asyncio.run(go())


def test_the_intake_seam_books_the_transfer_back_once_whoever_sees_it_first(world, tmp_path):
    async def go():
        store = SqliteStore(tmp_path / "a.db")
        ledger = Ledger(store)
        ASSETS.register(ledger)
        fund_wallet(ledger)

        def stop_before_recording(s: str, mid: str) -> None:
            if s == "custody_paid":
                raise Crash(mid)

        async with exchange_sim({}, feed=None) as xsim, connector_for(xsim) as conn:
            await conn.venue.load_markets()
            async with allocator(world, store, ledger, xsim, conn, crash_at=stop_before_recording) as al:
                assert await al.to_exchange("o1", POOL, {"USDT": 100 * 10**8}) is AllocationState.DONE
                with pytest.raises(Crash):
                    await al.to_mixin("o1", POOL, {"USDT": 100 * 10**8})
                back = [s for s in await al.payments.client.snapshots(opponent=world.custody, order="DESC")
                        if s.units > 0]
                assert len(back) == 1
                with store.transaction() as tx:  # intake sees the transfer first
                    assert al.matches(tx, back[0])
                    al.book(tx, back[0])
                    assert not al.matches(tx, type(back[0])(**{**back[0].__dict__, "opponent_id": str(uuid.uuid4())}))
            async with allocator(world, store, ledger, xsim, conn) as al:
                assert await al.to_mixin("o1", POOL, {"USDT": 100 * 10**8}) is AllocationState.DONE
                h = holdings(world, ledger, xsim)
        assert h["wallet"] == h["ledger_wallet"] and h["exchange"] == h["ledger_exchange"] == (0, 0)
        assert ledger.verify() == []
        store.close()

    asyncio.run(go())


def test_refusals_fail_the_move_and_move_nothing(world, tmp_path):
    async def go():
        store = SqliteStore(tmp_path / "a.db")
        ledger = Ledger(store)
        ASSETS.register(ledger)
        fund_wallet(ledger)
        async with exchange_sim({}, feed=None) as xsim, connector_for(xsim) as conn:
            await conn.venue.load_markets()
            before = holdings(world, ledger, xsim)
            # Mixin refuses the transfer for good (invalid receivers): nothing left the wallet
            world.server.faults.add("api_error", "/safe/transaction/requests", code=20150, times=1)
            async with allocator(world, store, ledger, xsim, conn) as al:
                assert await al.to_exchange("o1", POOL, {"BTC": 1000}) is AllocationState.FAILED
                assert await al.to_exchange("o1", POOL, {"BTC": 1000}) is AllocationState.FAILED
            # the exchange refuses a withdrawal it cannot fund: nothing left the exchange
            async with allocator(world, store, ledger, xsim, conn) as al:
                assert await al.to_mixin("o2", POOL, {"USDT": 5 * 10**8}) is AllocationState.FAILED
            assert holdings(world, ledger, xsim) == before
        assert ledger.verify() == []
        store.close()

    asyncio.run(go())
