"""The simulated chain between the Mixin simulator and the exchange simulator, driven through the
real clients (our MixinClient/Payments, ccxt's binance class through CcxtVenue) on 127.0.0.1.

The chain runs under a test clock and is stepped by hand, so every delay, confirmation and fault
is observed at a known point; the venues themselves run for real (HTTP, their own threads)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the exchange simulator's WebSocket side needs picows")

from connector_helpers import venue_for  # noqa: E402
from mixin_world import World, make_world  # noqa: E402

from mixmaker.connectors.ccxt_account import CcxtVenue  # noqa: E402
from mixmaker.mixin.amounts import to_units  # noqa: E402
from mixmaker.mixin.payments import Payments  # noqa: E402
from mixmaker.mixin.snapshots import SnapshotReader  # noqa: E402
from mixmaker.sim.chain import (  # noqa: E402
    Chain,
    ChainConfig,
    ChainError,
    Fault,
    HttpExchange,
    HttpMixin,
    MoveState,
    Place,
)
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig  # noqa: E402
from mixmaker.sim.mixin.setup import BTC, ETH, USDT_ERC20  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402

SEND, BLOCK, CONFS = 5.0, 2.0, 3
EXCHANGE_FEES = {"BTC": Decimal("0.0002"), "USDT": Decimal("1")}


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Linked:
    mixin: World
    exchange: ExchangeSim
    chain: Chain
    clock: Clock
    venue: CcxtVenue  # the bot's exchange account through ccxt
    tmp: Path

    @property
    def bot(self) -> str:
        return self.mixin.bot["app_id"]

    async def at(self, seconds: float) -> None:
        """Moves the chain's clock on and lets it act."""
        self.clock.advance(seconds)
        await self.chain.step()

    def payments(self, client) -> Payments:
        return Payments(client, SqliteStore(self.tmp / "payments.db"))

    def exchange_free(self, coin: str) -> Decimal:
        free, locked = self.exchange.balance("mm", coin)
        return free + locked


@asynccontextmanager
async def linked(tmp_path: Path, seed: int = 1, *, remote: bool = False, **switches):
    mixin = make_world(seed)
    mixin.state.deposit(mixin.bot["app_id"], BTC, to_units("1"))
    mixin.state.deposit(mixin.bot["app_id"], ETH, to_units("1"))
    exchange = ExchangeSim(SimConfig(seed=seed, publish_interval=0.05, withdraw_fees=EXCHANGE_FEES))
    exchange.add_account("mm", "mm-key", "mm-secret", {"USDT": "1000", "BTC": "1"})
    clock = Clock()
    config = ChainConfig(seed=seed, send_delay_s=SEND, block_time_s=BLOCK, confirmations=CONFS, **switches)
    async with exchange:
        if remote:  # the chain as its own process would see the venues: over their /_sim endpoints
            mixin_side, exchange_side = HttpMixin(mixin.server.url), HttpExchange(exchange.rest_url)
            chain = Chain(mixin_side, exchange_side, config, clock=clock)
        else:
            chain = Chain.in_process(mixin.state, exchange.venue, config, clock=clock)
        await chain.attach()
        venue = await venue_for(exchange, "mm-key", "mm-secret")
        try:
            yield Linked(mixin, exchange, chain, clock, venue, tmp_path)
        finally:
            await venue.exchange.close()
            if remote:
                await mixin_side.close()
                await exchange_side.close()
            mixin.server.stop()


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def mixin_to_exchange(w: Linked, client, cause: str, amount: str) -> str:
    """The bot withdraws BTC to its exchange deposit address; returns the Mixin request id."""
    address = await w.venue.deposit_address("BTC")
    p = await w.payments(client).withdraw(cause, BTC, amount, address.address)
    await w.chain.step()
    return p.request_id


def exchange_to_mixin(w: Linked, entry: dict, request_id: str, amount: str) -> str:
    """The exchange account withdraws USDT on ETH to the bot's Mixin deposit entry; returns the id."""
    return w.exchange.venue.withdraw("mm", {"coin": "USDT", "network": "ETH", "amount": amount,
                                            "address": entry["destination"], "withdrawOrderId": request_id})["id"]


def deposit_snapshots(w: Linked, asset: str) -> list:
    return [s for s in w.mixin.state.snapshots if s.user_id == w.bot and s.asset_id == asset and s.deposit
            and s.deposit["sender"].startswith("chain:")]


# ---- the two directions, over the wire ----------------------------------------------------------


@pytest.mark.parametrize("remote", [False, True], ids=["in-process", "over-http"])
def test_a_mixin_withdrawal_to_the_exchange_deposit_address_arrives_with_its_hash(tmp_path, remote):
    async def go():
        async with linked(tmp_path, remote=remote) as w, w.mixin.client() as c:
            pay = w.payments(c)
            request_id = await mixin_to_exchange(w, c, "move-1", "0.25")
            assert (await pay.refresh_withdrawal(request_id)).withdrawal_hash is None  # not on chain yet
            assert await w.venue.deposits("BTC") == []
            await w.at(SEND)
            h = (await pay.refresh_withdrawal(request_id)).withdrawal_hash
            assert h and h.startswith("bc") is False and len(h) == 64
            (d,) = await w.venue.deposits("BTC")
            assert (d.txid, d.amount, d.status) == (h, Decimal("0.25"), "pending")  # seen, 0 confirmations
            assert w.exchange_free("BTC") == Decimal("1")
            await w.at(BLOCK * (CONFS - 1))
            (d,) = await w.venue.deposits("BTC")
            assert d.status == "pending" and w.exchange_free("BTC") == Decimal("1")
            await w.at(BLOCK)
            (d,) = await w.venue.deposits("BTC")
            assert (d.txid, d.status) == (h, "ok")
            assert w.exchange_free("BTC") == Decimal("1.25")  # exactly the withdrawn amount
            assert w.mixin.state.balance(w.bot, BTC) == to_units("1") - to_units("0.25") - to_units("0.0001")
            (move,) = w.chain.moves.values()
            assert (move.state, move.destination, move.tx_hash) == (MoveState.ARRIVED, Place.EXCHANGE, h)
            await w.at(100)  # nothing more happens
            assert w.exchange_free("BTC") == Decimal("1.25") and len(await w.venue.deposits("BTC")) == 1

    run(go())


@pytest.mark.parametrize("remote", [False, True], ids=["in-process", "over-http"])
def test_an_exchange_withdrawal_to_the_mixin_deposit_entry_arrives_as_a_deposit_snapshot(tmp_path, remote):
    async def go():
        async with linked(tmp_path, remote=remote) as w, w.mixin.client() as c:
            entry = await c.deposit_entry(ETH)  # USDT (ERC-20) lives on the ETH chain
            assert entry["destination"].startswith("0x") and len(entry["destination"]) == 42
            sent = await w.venue.withdraw("wd-move-2", "USDT", Decimal("100"), entry["destination"], network="ETH")
            assert (sent.request_id, sent.amount, sent.fee) == ("wd-move-2", Decimal("99"), Decimal("1"))
            assert w.exchange_free("USDT") == Decimal("900")
            await w.chain.step()
            await w.at(SEND)
            done = await w.venue.find_withdrawal("USDT", "wd-move-2")
            assert done is not None and done.status == "ok" and done.txid and done.txid.startswith("0x")
            pending = await c.request("GET", "/safe/deposits", query=[("asset", USDT_ERC20)], idempotent=True)
            assert [(p["transaction_hash"], p["amount"], p["state"]) for p in pending] == [(done.txid, "99", "pending")]
            assert deposit_snapshots(w, USDT_ERC20) == []
            await w.at(BLOCK * CONFS)
            snaps = [s for s in await c.snapshots(offset_ns=0, asset=USDT_ERC20) if s.deposit]
            assert [(s.deposit["deposit_hash"], s.amount) for s in snaps] == [(done.txid, Decimal("99"))]
            assert snaps[0].deposit["destination"] == entry["destination"]
            outputs = await c.outputs(asset=USDT_ERC20)
            assert [o.units for o in outputs] == [to_units("99")]  # a new unspent output for the bot
            assert await c.request("GET", "/safe/deposits", idempotent=True) == []

    run(go())


# ---- the switches ------------------------------------------------------------------------------


def test_jitter_stretches_each_delay_the_same_way_for_the_same_seed(tmp_path):
    async def timeline(seed: int) -> list[float]:
        async with linked(tmp_path / str(seed), seed=seed, jitter=0.5) as w:
            entry = w.mixin.state.deposit_entry(w.bot, ETH)
            for n in range(3):
                exchange_to_mixin(w, entry, f"j{n}", "10")
            await w.chain.step()
            return [m.send_at - m.seen_at for m in w.chain.moves.values()]

    (tmp_path / "1").mkdir(), (tmp_path / "2").mkdir()
    first, again, other = run(timeline(1)), run(timeline(1)), run(timeline(2))
    assert first == again and first != other
    assert all(SEND <= d <= SEND * 1.5 for d in first + other) and len(set(first)) == 3


def test_a_stuck_move_waits_until_released_then_arrives(tmp_path):
    async def go():
        async with linked(tmp_path) as w, w.mixin.client() as c:
            w.chain.faults.add(Fault.STUCK, source=Place.MIXIN)
            request_id = await mixin_to_exchange(w, c, "stuck-1", "0.1")
            await w.at(SEND)
            h = (await w.payments(c).refresh_withdrawal(request_id)).withdrawal_hash
            assert h  # on chain ...
            await w.at(3600)
            (d,) = await w.venue.deposits("BTC")
            assert d.status == "pending" and d.txid == h and w.exchange_free("BTC") == Decimal("1")  # ... but stuck
            (move,) = w.chain.in_flight()
            assert move.stuck and move.confirmations == 0
            assert w.chain.release() == 1
            await w.at(BLOCK * CONFS - 0.001)
            assert (await w.venue.deposits("BTC"))[0].status == "pending"
            await w.at(0.001)
            assert (await w.venue.deposits("BTC"))[0].status == "ok" and w.exchange_free("BTC") == Decimal("1.1")
            with pytest.raises(ChainError):
                w.chain.release("mixin:no-such-move")

    run(go())


def test_a_stuck_move_with_a_timeout_arrives_by_itself(tmp_path):
    async def go():
        async with linked(tmp_path, stuck_for_s=600) as w:
            entry = w.mixin.state.deposit_entry(w.bot, ETH)
            w.chain.faults.add(Fault.STUCK)
            exchange_to_mixin(w, entry, "stuck-2", "50")
            await w.chain.step()
            await w.at(SEND + 599)
            assert deposit_snapshots(w, USDT_ERC20) == []
            await w.at(1 + BLOCK * CONFS)
            assert [s.amount for s in deposit_snapshots(w, USDT_ERC20)] == [to_units("49")]

    run(go())


def test_a_failed_exchange_withdrawal_ends_failed_and_its_amount_and_fee_return(tmp_path):
    async def go():
        async with linked(tmp_path) as w, w.mixin.client() as c:
            entry = await c.deposit_entry(ETH)
            w.chain.faults.add(Fault.FAIL, source=Place.EXCHANGE)
            await w.venue.withdraw("wd-fail", "USDT", Decimal("100"), entry["destination"], network="ETH")
            assert w.exchange_free("USDT") == Decimal("900")
            await w.chain.step()
            await w.at(SEND)
            failed = await w.venue.find_withdrawal("USDT", "wd-fail")
            assert failed is not None and failed.status == "failed" and failed.txid is None
            assert failed.exchange_id == w.exchange.venue.withdrawals[0].id
            assert w.exchange.venue.withdrawals[0].status == 5  # Binance's "Failure"
            assert w.exchange_free("USDT") == Decimal("1000")  # amount and fee back, as Binance does
            await w.at(BLOCK * CONFS * 10)
            assert deposit_snapshots(w, USDT_ERC20) == [] and w.mixin.state.balance(w.bot, USDT_ERC20) == 0
            # Another withdrawal with a new id goes through.
            await w.venue.withdraw("wd-retry", "USDT", Decimal("100"), entry["destination"], network="ETH")
            await w.chain.step()
            await w.at(SEND + BLOCK * CONFS)
            assert w.mixin.state.balance(w.bot, USDT_ERC20) == to_units("99")

    run(go())


def test_a_rejected_exchange_withdrawal_reports_status_3(tmp_path):
    async def go():
        async with linked(tmp_path, exchange_fail_status="REJECTED") as w:
            entry = w.mixin.state.deposit_entry(w.bot, ETH)
            w.chain.faults.add(Fault.FAIL)
            exchange_to_mixin(w, entry, "wd-rej", "20")
            await w.chain.step()
            await w.at(SEND)
            (t,) = w.exchange.venue.withdrawals
            assert (t.status, t.tx_id) == (3, "") and w.exchange_free("USDT") == Decimal("1000")

    run(go())


def test_a_failed_mixin_withdrawal_never_gets_a_hash_and_its_amount_comes_back(tmp_path):
    async def go():
        async with linked(tmp_path) as w, w.mixin.client() as c:
            w.chain.faults.add(Fault.FAIL, source=Place.MIXIN)
            request_id = await mixin_to_exchange(w, c, "fail-1", "0.3")
            await w.at(SEND)
            p = await w.payments(c).refresh_withdrawal(request_id)
            assert p.state == "sent" and p.withdrawal_hash is None  # never confirmed
            refunds = [s for s in w.mixin.state.snapshots if s.memo == f"WITHDRAWAL_FAILED:{request_id}".encode()]
            assert [s.amount for s in refunds] == [to_units("0.3")]
            assert w.mixin.state.balance(w.bot, BTC) == to_units("1") - to_units("0.0001")  # the fee is not returned
            await w.at(BLOCK * CONFS * 10)
            assert await w.venue.deposits("BTC") == [] and w.exchange_free("BTC") == Decimal("1")

    run(go())


def test_a_duplicated_notification_is_shown_twice_on_mixin_and_credited_once(tmp_path):
    async def go():
        async with linked(tmp_path) as w, w.mixin.client() as c:
            entry = await c.deposit_entry(ETH)
            w.chain.faults.add(Fault.DUPLICATE)
            exchange_to_mixin(w, entry, "dup-1", "30")
            await w.chain.step()
            await w.at(SEND + BLOCK * CONFS)
            page = [s for s in await c.snapshots(offset_ns=0, asset=USDT_ERC20) if s.deposit]
            assert len(page) == 2 and page[0].snapshot_id == page[1].snapshot_id  # the same item, again
            assert w.mixin.state.balance(w.bot, USDT_ERC20) == to_units("29")  # one output
            assert len(await c.outputs(asset=USDT_ERC20)) == 1
            handled = []
            reader = SnapshotReader(c, SqliteStore(w.tmp / "reader.db"), asset=USDT_ERC20)
            await reader.poll(lambda tx, s: handled.append(s.snapshot_id))
            assert handled == [page[0].snapshot_id]  # a reader keyed on snapshot_id credits it once

    run(go())


def test_a_duplicated_notification_is_listed_twice_on_the_exchange_and_credited_once(tmp_path):
    async def go():
        async with linked(tmp_path) as w, w.mixin.client() as c:
            w.chain.faults.add(Fault.DUPLICATE, source=Place.MIXIN)
            request_id = await mixin_to_exchange(w, c, "dup-2", "0.2")
            await w.at(SEND + BLOCK * CONFS)
            h = (await w.payments(c).refresh_withdrawal(request_id)).withdrawal_hash
            rows = await w.venue.deposits("BTC")
            assert [(d.exchange_id, d.txid, d.status) for d in rows] == [(rows[0].exchange_id, h, "ok")] * 2
            assert w.exchange_free("BTC") == Decimal("1.2")  # credited once

    run(go())


def test_a_withdrawal_to_an_address_no_venue_owns_leaves_the_simulated_world(tmp_path):
    async def go():
        async with linked(tmp_path) as w:
            w.exchange.venue.withdraw("mm", {"coin": "BTC", "amount": "0.5", "address": "bc1qsomeoneelse000000000000000"})
            await w.chain.step()
            await w.at(SEND + BLOCK * CONFS)
            (move,) = w.chain.moves.values()
            assert (move.state, move.destination) == (MoveState.LEFT, Place.OUTSIDE) and move.tx_hash
            (t,) = w.exchange.venue.withdrawals
            assert (t.status, t.tx_id) == (6, move.tx_hash) and w.exchange_free("BTC") == Decimal("0.5")

    run(go())


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_seeded_fault_rates_conserve_every_unit(tmp_path, seed):
    """Many moves both ways under random stuck/fail/duplicate: each move ends arrived (credited
    once, exactly its amount) or failed (returned); nothing is created or lost."""
    rates = {Fault.STUCK: 0.3, Fault.FAIL: 0.3, Fault.DUPLICATE: 0.3}

    async def go():
        async with linked(tmp_path, seed=seed, rates=rates) as w, w.mixin.client() as c:
            entry = await c.deposit_entry(ETH)
            btc_address = (await w.venue.deposit_address("BTC")).address
            pay = w.payments(c)
            amounts = [Decimal(n) for n in range(5, 17)]
            for n, amount in enumerate(amounts):
                exchange_to_mixin(w, entry, f"r{n}", str(amount))
                await pay.withdraw(f"m{n}", BTC, f"0.0{n + 1}", btc_address)
            for _ in range(40):
                await w.at(BLOCK)
            w.chain.release()
            for _ in range(10):
                await w.at(BLOCK)
            moves = list(w.chain.moves.values())
            assert len(moves) == 24 and all(m.state in (MoveState.ARRIVED, MoveState.FAILED) for m in moves)
            fates = Counter((m.source, m.state) for m in moves)
            assert sum(1 for m in moves if m.faults) > 0
            # Exchange -> Mixin: what arrived on Mixin is what left the exchange net of fees.
            arrived = [m for m in moves if m.source is Place.EXCHANGE and m.state is MoveState.ARRIVED]
            assert w.mixin.state.balance(w.bot, USDT_ERC20) == sum(to_units(m.amount) for m in arrived)
            assert len(deposit_snapshots(w, USDT_ERC20)) == len(arrived)
            sent_total = sum(t.amount + t.fee for t in w.exchange.venue.withdrawals if t.status == 6)
            assert w.exchange_free("USDT") == Decimal("1000") - sent_total
            # Mixin -> exchange: what the exchange credited is what Mixin withdrew and did not refund.
            to_exchange = [m for m in moves if m.source is Place.MIXIN and m.state is MoveState.ARRIVED]
            assert w.exchange_free("BTC") == Decimal("1") + sum((m.amount for m in to_exchange), Decimal(0))
            failed_btc = sum(to_units(m.amount) for m in moves if m.source is Place.MIXIN and m.state is MoveState.FAILED)
            fees = 12 * to_units("0.0001")
            withdrawn = sum(to_units(f"0.0{n + 1}") for n in range(12))
            assert w.mixin.state.balance(w.bot, BTC) == to_units("1") - withdrawn - fees + failed_btc
            return fates, sorted((m.move_id, tuple(sorted(f.value for f in m.faults))) for m in moves)

    fates, faults = run(go())
    assert fates[(Place.EXCHANGE, MoveState.FAILED)] + fates[(Place.MIXIN, MoveState.FAILED)] > 0


# ---- the chain's own durability ------------------------------------------------------------------


def test_a_restarted_chain_resumes_its_moves_and_a_repeated_step_pays_nothing_twice(tmp_path):
    async def go():
        async with linked(tmp_path) as w, w.mixin.client() as c:
            entry = await c.deposit_entry(ETH)
            exchange_to_mixin(w, entry, "r-1", "10")
            await mixin_to_exchange(w, c, "r-2", "0.05")
            await w.at(SEND + BLOCK)  # both on chain, one confirmation each
            saved = json.loads(json.dumps(w.chain.dump()))
            again = Chain.in_process(w.mixin.state, w.exchange.venue, w.chain.config, clock=w.clock)
            again.load(saved)
            assert {m.move_id: m.state for m in again.moves.values()} == {m.move_id: m.state for m in w.chain.moves.values()}
            w.clock.advance(BLOCK * CONFS)
            await again.step()
            await w.chain.step()  # the old one acts too, as after a crash between a venue call and its record
            assert w.mixin.state.balance(w.bot, USDT_ERC20) == to_units("9")
            assert w.exchange_free("BTC") == Decimal("1.05")
            assert all(m.state is MoveState.ARRIVED for m in again.moves.values())

    run(go())


def test_bad_switches_are_refused_with_every_problem_named():
    with pytest.raises(ChainError) as e:
        ChainConfig(send_delay_s=-1, confirmations=0, rates={Fault.FAIL: 2}, exchange_fail_status="LOST")
    message = str(e.value)
    for part in ("send_delay_s", "confirmations", "fail", "exchange_fail_status"):
        assert part in message.lower()
