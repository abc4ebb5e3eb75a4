"""`mixmaker sim all --state DIR` as a real process: used through the real clients, SIGKILLed with
a move in flight, started again on the same folder: the world is as it was, and the move lands."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")

from mixmaker._core import Side
from mixmaker.connectors import RateLimiter  # noqa: E402
from mixmaker.connectors import binance_limits as bl  # noqa: E402
from mixmaker.connectors.ccxt_routing import route_through  # noqa: E402
from mixmaker.connectors.ccxt_account import CcxtVenue  # noqa: E402
from mixmaker.mixin import Keystore, MixinClient  # noqa: E402
from mixmaker.mixin.amounts import to_units  # noqa: E402
from mixmaker.mixin.payments import Payments  # noqa: E402
from mixmaker.orders.protocol import OrderRequest  # noqa: E402
from mixmaker.sim.mixin.setup import BTC  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402
from sim_all_helpers import wait_ready  # noqa: E402

SWITCHES = ["--seed", "5", "--send-delay", "0.3", "--block-time", "0.2", "--confirmations", "2", "--symbols", "BTCUSDT"]


def start(state: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mixmaker.cli", "sim", "all", "--state", str(state), *SWITCHES, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def until(check, what: str, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def exchange_venue(d: dict) -> CcxtVenue:
    ex = d["exchange"]
    client = ccxt.binance({"apiKey": ex["api_key"], "secret": ex["api_secret"], "urls": ex["ccxt_urls"],
                           "options": ex["ccxt_options"], "enableRateLimit": False, "timeout": 10_000})
    limiter = RateLimiter(bl.spot_pools())
    route_through(client, limiter, cost=bl.request_cost, usage=bl.usage_from_headers, retry_after=bl.retry_after_s)
    venue = CcxtVenue(client, limiter, name="binance")
    await venue.load_markets()
    return venue


async def post(url: str, body: dict) -> dict:
    async with aiohttp.ClientSession() as s, s.post(url, json=body) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def observe(d: dict) -> dict:
    """What the bot sees of the world, through the real clients."""
    venue = await exchange_venue(d)
    try:
        async with MixinClient(Keystore.from_dict(d["mixin"]["keystore"]), d["mixin"]["url"]) as c:
            outputs = [(o.output_id, o.units) for o in await c.outputs(asset=BTC)]
            snapshots = [(s.snapshot_id, s.units) for s in await c.snapshots(offset_ns=0)]
            entry = (await c.deposit_entry(BTC))["destination"]
        balances = {a: b.total for a, b in (await venue.fetch_balances()).items() if b.total}
        return {
            "mixin_outputs": outputs, "mixin_snapshots": snapshots, "mixin_entry": entry,
            "exchange_balances": balances,
            "open_orders": [(o.client_id, o.price, o.quantity) for o in await venue.fetch_open_orders("BTCUSDT")],
            "trades": [(t.trade_id, t.price, t.qty) for t in await venue.fetch_my_trades("BTCUSDT")],
            "address": (await venue.deposit_address("BTC")).address,
            "deposits": [(t.exchange_id, t.txid, t.amount, t.status) for t in await venue.deposits("BTC")],
            "withdrawals": [(t.exchange_id, t.request_id, t.amount, t.status, t.txid) for t in await venue.withdrawals("BTC")],
        }
    finally:
        await venue.exchange.close()


def test_sim_all_keeps_the_world_across_a_sigkill_and_a_move_in_flight_lands_after_restart(tmp_path):
    state = tmp_path / "sims"
    proc = start(state)
    try:
        d = wait_ready(proc, state)
        assert oct((state / "sims.json").stat().st_mode & 0o777) == "0o600"
        printed = ""

        async def use() -> tuple[dict, str]:
            bot = d["mixin"]["keystore"]["app_id"]
            await post(d["mixin"]["url"] + "/_sim/deposits", {"user_id": bot, "asset_id": BTC, "amount": "1"})
            venue = await exchange_venue(d)
            try:
                async with MixinClient(Keystore.from_dict(d["mixin"]["keystore"]), d["mixin"]["url"]) as c:
                    # Mixin -> exchange through the chain.
                    address = (await venue.deposit_address("BTC")).address
                    await Payments(c, SqliteStore(tmp_path / "p.db")).withdraw("to-exchange", BTC, "0.5", address)

                    async def credited():
                        return any(t.status == "ok" for t in await venue.deposits("BTC"))
                    await until(credited, "the deposit on the exchange")
                    # Trade: one order resting far from the market, one sold into it.
                    m = venue.market("BTCUSDT")
                    await venue.create_order(OrderRequest("rest-1", "BTCUSDT", Side.SELL, m.price("900000"), m.size("0.1")))
                    await venue.exchange.create_order("BTC/USDT", "market", "sell", "0.01")
                    # Exchange -> Mixin, stuck on chain when the simulator is killed.
                    await post(d["chain"]["url"] + "/chain/faults", {"next": [{"fault": "stuck", "source": "exchange"}]})
                    entry = (await c.deposit_entry(BTC))["destination"]
                    w = await venue.withdraw("back-1", "BTC", Decimal("0.2"), entry)

                    async def on_chain():
                        found = await venue.find_withdrawal("BTC", "back-1")
                        return found if found and found.txid else None
                    txid = (await until(on_chain, "the withdrawal on chain")).txid
                    assert w.request_id == "back-1"
            finally:
                await venue.exchange.close()
            return await observe(d), txid

        before, txid = asyncio.run(use())
        assert before["open_orders"] and before["trades"] and before["withdrawals"]

        def saved() -> bool:  # the state file has caught up with all of it
            doc = json.loads((state / "state.json").read_text())
            moves = {m["move_id"]: m["state"] for m in doc["chain"]["moves"]}
            orders = [o["client_order_id"] for o in doc["exchange"]["orders"]]
            return moves.get("exchange:wd1") == "broadcast" and "rest-1" in orders

        end = time.monotonic() + 30
        while not saved():
            assert time.monotonic() < end, "state.json never caught up"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

        proc = start(state)
        again = wait_ready(proc, state)
        assert (again["mixin"]["url"], again["exchange"]["rest_url"], again["chain"]["url"]) == (
            d["mixin"]["url"], d["exchange"]["rest_url"], d["chain"]["url"])  # same ports, same credentials
        assert again["mixin"]["keystore"] == d["mixin"]["keystore"] and again["exchange"]["api_key"] == d["exchange"]["api_key"]

        async def after() -> tuple[dict, dict]:
            now = await observe(again)
            status = await post(again["chain"]["url"] + "/chain/release", {})
            async with MixinClient(Keystore.from_dict(again["mixin"]["keystore"]), again["mixin"]["url"]) as c:
                async def landed():
                    page = await c.snapshots(offset_ns=0, asset=BTC)
                    return [s for s in page if s.deposit and s.deposit["deposit_hash"] == txid]
                (snap,) = await until(landed, "the stuck move's deposit on Mixin")
                assert snap.units == to_units("0.2") - to_units("0.0002")  # the exchange's fee came off
            return now, status

        now, released = asyncio.run(after())
        assert released == {"released": 1}
        assert now == before  # balances, outputs, snapshots, orders, trades, addresses, deposits, withdrawals
        printed = proc.stdout.readline() if proc.stdout else ""
        assert "mixin" in printed and "api_secret" not in printed and d["exchange"]["api_secret"] not in printed
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        out = (proc.stdout.read() if proc.stdout else "") + (proc.stderr.read() if proc.stderr else "")
        assert d["exchange"]["api_secret"] not in out and d["mixin"]["keystore"]["spend_private_key"] not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_second_sim_all_on_the_same_folder_is_refused(tmp_path):
    state = tmp_path / "sims"
    first = start(state)
    try:
        wait_ready(first, state)
        second = subprocess.run([sys.executable, "-m", "mixmaker.cli", "sim", "all", "--state", str(state)],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "in use" in second.stderr
    finally:
        first.kill()
        first.wait(10)


def test_bad_switches_are_refused_each_by_name(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mixmaker.cli", "sim", "all", "--state", str(tmp_path / "s"),
                        "--send-delay", "-1", "--fail", "3", "--confirmations", "0", "--withdraw-fees", "BTC=x",
                        "--mixin-port", "70000"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    for name in ("send_delay_s", "fail", "confirmations", "--withdraw-fees", "--mixin-port"):
        assert name in r.stderr
    assert not (tmp_path / "s").exists()


def _line(stream, prefix: str, timeout: float = 60) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = stream.readline()
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line starting {prefix!r}")


def test_sim_chain_links_simulators_started_as_separate_processes(tmp_path):
    """`mixmaker sim mixin`, `mixmaker sim exchange` and `mixmaker sim chain`, three processes: an
    exchange withdrawal to the bot's Mixin deposit entry arrives as a deposit snapshot."""
    cli = [sys.executable, "-m", "mixmaker.cli", "sim"]
    ks = tmp_path / "bot.json"
    procs = []
    try:
        mixin = subprocess.Popen([*cli, "mixin", "--port", "0", "--keystore-out", str(ks)], stderr=subprocess.PIPE, text=True)
        procs.append(mixin)
        mixin_url = _line(mixin.stderr, "Mixin simulator on").split()[3]
        exchange = subprocess.Popen([*cli, "exchange", "--port", "0", "--feed", "none"], stdout=subprocess.PIPE, text=True)
        procs.append(exchange)
        rest = _line(exchange.stdout, "rest").split()[1].removesuffix("/api/v3")
        chain = subprocess.Popen([*cli, "chain", "--mixin", mixin_url, "--exchange", rest, "--port", "0",
                                  "--send-delay", "0.2", "--block-time", "0.1", "--confirmations", "2",
                                  "--state", str(tmp_path / "chain")], stdout=subprocess.PIPE, text=True)
        procs.append(chain)
        chain_url = _line(chain.stdout, "chain").split()[1].removesuffix("/chain/status")
        keystore = json.loads(ks.read_text())

        async def go():
            async with MixinClient(Keystore.from_dict(keystore), mixin_url) as c, aiohttp.ClientSession() as s:
                entry = (await c.deposit_entry(BTC))["destination"]
                client = ccxt.binance({"apiKey": "demo-key", "secret": "demo-secret", "enableRateLimit": False,
                                       "urls": {"api": {"public": rest + "/api/v3", "private": rest + "/api/v3",
                                                        "sapi": rest + "/sapi/v1"}},
                                       "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                                                   "fetchMargins": False}})
                try:
                    async def attached():  # the chain holds the venues' withdrawals before we make one
                        async with s.get(chain_url + "/chain/status") as r:
                            return (await r.json())["attached"]
                    await until(attached, "the chain attached to both venues")
                    sent = await client.withdraw("BTC", "0.5", entry, {"withdrawOrderId": "cli-1"})

                    async def landed():
                        return [x for x in await c.snapshots(offset_ns=0, asset=BTC) if x.deposit]
                    (snap,) = await until(landed, "the deposit snapshot")
                    (w,) = await client.fetch_withdrawals("BTC")
                    assert w["id"] == sent["id"] and snap.deposit["deposit_hash"] == w["txid"]
                    assert snap.units == to_units("0.5")  # the standalone exchange charges no fee by default
                    async with s.get(chain_url + "/chain/moves") as r:
                        (move,) = await r.json()
                    assert (move["state"], move["tx_hash"]) == ("arrived", w["txid"])
                finally:
                    await client.close()

        asyncio.run(go())
        saved = json.loads((tmp_path / "chain" / "chain.json").read_text())
        chain.send_signal(signal.SIGTERM)
        assert chain.wait(20) == 0
        assert [m["state"] for m in json.loads((tmp_path / "chain" / "chain.json").read_text())["moves"]] == ["arrived"]
        assert saved["moves"]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)


def test_sim_all_moves_the_market_from_a_recording(tmp_path):
    from conftest import recording_path

    recording = recording_path("spot")
    state = tmp_path / "sims"
    proc = start(state, "--feed", str(recording), "--feed-symbol", "BTCUSDT", "--speed", "5")
    try:
        d = wait_ready(proc, state)

        async def go():
            async with aiohttp.ClientSession() as s:
                async def depth():
                    async with s.get(d["exchange"]["rest_url"] + "/api/v3/depth?symbol=BTCUSDT&limit=5") as r:
                        return await r.json()

                first = await until(lambda: _with_bids(depth), "the recording's book")
                await until(lambda: _moved(depth, first["lastUpdateId"]), "the book to move")

        asyncio.run(go())
    finally:
        proc.kill()
        proc.wait(10)


async def _with_bids(depth):
    book = await depth()
    return book if book["bids"] and book["asks"] else None


async def _moved(depth, since: int):
    return (await depth())["lastUpdateId"] > since


def test_sim_all_refuses_a_missing_recording_and_leaves_the_folder_free(tmp_path):
    state = tmp_path / "sims"
    r = subprocess.run([sys.executable, "-m", "mixmaker.cli", "sim", "all", "--state", str(state),
                        "--feed", str(tmp_path / "nope.gz")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no such recording" in r.stderr
    again = start(state, "--feed", "none")  # the lock was released
    try:
        wait_ready(again, state)
    finally:
        again.kill()
        again.wait(10)
