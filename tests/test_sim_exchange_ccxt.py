"""The real ccxt binance classes (async REST and pro) run a scripted session against the simulator."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import ccxt
import pytest

from sim_exchange_helpers import (
    MARKET,
    SECRET,
    START,
    SYMBOL,
    as_floats,
    pro_client,
    rest_client,
    run,
    started_sim,
    synced_book,
    until,
)


def test_scripted_session_rest_and_pro() -> None:
    async def session() -> None:
        async with started_sim() as sim, rest_client(sim) as rest, pro_client(sim) as pro:
            # load_markets: rules from exchangeInfo
            market = rest.market(MARKET)
            assert market["precision"]["price"] == 0.01 and market["precision"]["amount"] == 0.00001
            assert market["limits"]["cost"]["min"] == 5.0

            # fetch_order_book: the snapshot, with lastUpdateId as nonce
            ob = await rest.fetch_order_book(MARKET)
            last_id, bids, asks = sim.book(SYMBOL)
            assert ob["nonce"] == last_id and ob["bids"] == as_floats(bids) and ob["asks"] == as_floats(asks)

            # fetch_balance
            bal = await rest.fetch_balance()
            assert bal["BTC"]["free"] == 2.0 and bal["USDT"]["total"] == 100000.0

            # watch_order_book: sync by snapshot + diffs while the market moves, then match exactly
            async def market_moves() -> None:
                for i in range(20):
                    sim.venue.set_market_level(SYMBOL, "BUY", Decimal(59990 - i), Decimal(i + 1) / 10)
                    await asyncio.sleep(0.01)

            mover = asyncio.create_task(market_moves())
            await pro.watch_order_book(MARKET)
            await mover
            ob = await synced_book(pro, sim)
            _, bids, asks = sim.book(SYMBOL)
            assert ob["bids"] == as_floats(bids) and ob["asks"] == as_floats(asks)

            # watch_orders / watch_balance see a resting order placed over REST
            orders_w = asyncio.ensure_future(pro.watch_orders(MARKET))
            balance_w = asyncio.ensure_future(pro.watch_balance())
            await until(lambda: sim.venue.user_subscribers("alice") > 0)
            await asyncio.sleep(0.05)  # let both watchers register their futures
            resting = await rest.create_order(MARKET, "limit", "buy", 0.01, 59000, {"clientOrderId": "rest-1"})
            assert resting["status"] == "open" and resting["clientOrderId"] == "rest-1"
            seen = await asyncio.wait_for(orders_w, 5)
            assert [(o["id"], o["status"]) for o in seen] == [(resting["id"], "open")]
            balance = await asyncio.wait_for(balance_w, 5)
            assert balance["USDT"]["used"] == 590.0 and balance["USDT"]["free"] == 100000.0 - 590.0

            # fetch_order / fetch_open_orders (with and without symbol)
            assert (await rest.fetch_order(resting["id"], MARKET))["status"] == "open"
            assert [o["id"] for o in await rest.fetch_open_orders(MARKET)] == [resting["id"]]
            assert [o["id"] for o in await rest.fetch_open_orders()] == [resting["id"]]

            # a crossing order takes two levels: fills, fees, fetch_my_trades
            taker = await rest.create_order(MARKET, "limit", "buy", 0.6, 60002)
            assert taker["status"] == "closed" and taker["filled"] == 0.6 and len(taker["trades"]) == 2
            trades = await rest.fetch_my_trades(MARKET)
            assert [(t["price"], t["amount"], t["takerOrMaker"]) for t in trades] == [
                (60001.0, 0.5, "taker"),
                (60002.0, 0.1, "taker"),
            ]
            assert sum(t["fee"]["cost"] for t in trades) == pytest.approx(0.0006)
            free_btc, _ = sim.balance("alice", "BTC")
            assert free_btc == START["BTC"] + Decimal("0.6") - Decimal("0.0006")

            # cancel_order: status, the watcher's update, funds released
            orders_w = asyncio.ensure_future(pro.watch_orders(MARKET))
            await asyncio.sleep(0.05)
            cancelled = await rest.cancel_order(resting["id"], MARKET)
            assert cancelled["status"] == "canceled"
            seen = await asyncio.wait_for(orders_w, 5)
            assert any(o["id"] == resting["id"] and o["status"] == "canceled" for o in seen)
            assert sim.balance("alice", "USDT")[1] == 0
            assert await rest.fetch_open_orders(MARKET) == []
            every = await rest.fetch_orders(MARKET)  # allOrders
            assert [(o["id"], o["status"]) for o in every] == [(resting["id"], "canceled"), (taker["id"], "closed")]

            # deposit address, a deposit (seen by watch_balance), deposits history
            address = await rest.fetch_deposit_address("BTC")
            assert address["address"].startswith("bc1q") and address["currency"] == "BTC"
            balance_w = asyncio.ensure_future(pro.watch_balance())
            await asyncio.sleep(0.05)
            sim.venue.deposit("alice", "BTC", "1.25")
            balance = await asyncio.wait_for(balance_w, 5)
            assert balance["BTC"]["free"] == float(sim.balance("alice", "BTC")[0])
            deposits = await rest.fetch_deposits("BTC")
            assert [(d["amount"], d["status"], d["type"]) for d in deposits] == [(1.25, "ok", "deposit")]

            # withdraw and withdrawal history: "pending" while it is processed, then "ok" with a txid
            sim.venue.withdraw_delay_ms = 60_000
            before = sim.balance("alice", "BTC")[0]
            sent = await rest.withdraw("BTC", 0.5, "bc1qexampleaddress0000000000000")
            assert sent["id"]
            assert sim.balance("alice", "BTC")[0] == before - Decimal("0.5")
            withdrawals = await rest.fetch_withdrawals("BTC")
            assert [(w["id"], w["amount"], w["status"], w["txid"]) for w in withdrawals] == [(sent["id"], 0.5, "pending", None)]
            sim.venue.withdraw_delay_ms = 0
            (done,) = await rest.fetch_withdrawals("BTC")
            assert done["status"] == "ok" and done["txid"]

    run(session())


def test_binance_errors_reach_ccxt_as_its_typed_exceptions() -> None:
    async def session() -> None:
        async with started_sim() as sim, rest_client(sim) as rest:
            with pytest.raises(ccxt.OrderNotFound):
                await rest.cancel_order("424242", MARKET)
            with pytest.raises(ccxt.OrderNotFound):
                await rest.fetch_order("424242", MARKET)
            with pytest.raises(ccxt.InsufficientFunds):
                await rest.create_order(MARKET, "limit", "sell", 5, 70000)
            await rest.create_order(MARKET, "limit", "buy", 0.01, 59000, {"clientOrderId": "dup-1"})
            with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
                await rest.create_order(MARKET, "limit", "buy", 0.01, 59001, {"clientOrderId": "dup-1"})
            with pytest.raises(ccxt.OrderImmediatelyFillable):
                await rest.create_order(MARKET, "limit", "buy", 0.01, 60005, {"postOnly": True})
            with pytest.raises(ccxt.InsufficientFunds):
                await rest.withdraw("BTC", 100, "bc1qexampleaddress0000000000000")
            for bad in ("1e-3", "-0.01", "0x10"):  # Binance takes plain decimals only
                with pytest.raises(ccxt.BadRequest, match="-1100"):
                    await rest.private_post_order({"symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                                                   "timeInForce": "GTC", "quantity": bad, "price": "59000"})
            assert len(sim.open_orders("alice")) == 1

        async with started_sim() as sim:
            async with rest_client(sim, secret="wrong-secret") as bad:
                with pytest.raises(ccxt.AuthenticationError, match="Signature for this request is not valid"):
                    await bad.fetch_balance()
            async with rest_client(sim, apiKey="nobody") as bad:
                with pytest.raises(ccxt.AuthenticationError):
                    await bad.fetch_balance()
            # A clock 20 s behind the server's: outside the default 10 s recvWindow.
            async with rest_client(sim, options={**sim.ccxt_config("", "")["options"], "timeDifference": 20_000}) as late:
                with pytest.raises(ccxt.InvalidNonce):
                    await late.fetch_balance()
            # ...and 5 s ahead of it: Binance refuses more than 1 s into the future.
            async with rest_client(sim, options={**sim.ccxt_config("", "")["options"], "timeDifference": -5_000}) as early:
                with pytest.raises(ccxt.InvalidNonce):
                    await early.fetch_balance()
            assert sim.open_orders("alice") == []

    run(session())


def test_secret_never_printed() -> None:
    async def session() -> None:
        async with started_sim() as sim:
            key = sim.venue.keys.lookup("alice-key")
            assert SECRET not in repr(key) and SECRET not in str(key.secret)

    run(session())


def test_ws_api_order_entry_and_its_errors() -> None:
    async def session() -> None:
        async with started_sim() as sim, pro_client(sim) as pro:
            placed = await pro.create_order_ws(MARKET, "limit", "buy", 0.01, 59000)
            assert placed["status"] == "open" and [o.order_id for o in sim.open_orders("alice")] == [int(placed["id"])]
            assert (await pro.fetch_order_ws(placed["id"], MARKET))["status"] == "open"
            assert (await pro.cancel_order_ws(placed["id"], MARKET))["status"] == "canceled"
            with pytest.raises(ccxt.OrderNotFound):
                await pro.cancel_order_ws(placed["id"], MARKET)
            # ack_loss over the WebSocket API: the order is placed, the answer never comes.
            sim.faults.set("ack_loss", 1.0)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(pro.create_order_ws(MARKET, "limit", "buy", 0.01, 58000), 0.5)
            assert [o.price for o in sim.open_orders("alice")] == [Decimal(58000)]
        async with started_sim() as sim, pro_client(sim, secret="wrong-secret") as bad:
            with pytest.raises(ccxt.AuthenticationError):
                await bad.create_order_ws(MARKET, "limit", "buy", 0.01, 59000)
            assert sim.open_orders("alice") == []

    run(session())
