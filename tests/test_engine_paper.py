"""`mixmaker run --paper examples/paper.toml` against simulators started separately exactly as the
demo starts them (the chain between them carries every move): the operator funds the fee float,
users pay by memo (one refunded, one order in two payments, two pools), the funds go to the
exchange by chain, the pools trade. The engine is SIGKILLed twice -- while a move to the exchange
is on the chain, and while one back to Mixin is (users stopping, the pools still trading) -- and
started again on the same database each time; the funds come back by chain, and the cycle finishes with the ledger equal to what
the simulators hold and paid, to the unit, every user paid once. Along the way: /health and
/metrics of the running engine, JSON logs with ids and no secret, and a graceful SIGTERM that
leaves no order open on the exchange."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

pytest.importorskip("picows", reason="the connector and the simulator need picows")

from engine_helpers import (  # noqa: E402
    fills,
    free_port,
    order_states,
    query,
    queued_payouts,
    run_paper,
    sims_process,
    stop,
)

from mixmaker.engine import config as c  # noqa: E402
from mixmaker.engine import cycle_report  # noqa: E402
from mixmaker.engine.audit import observe_paper  # noqa: E402
from mixmaker.engine.crowd import Crowd, plan  # noqa: E402
from mixmaker.engine.sims import wait_for_sims  # noqa: E402
from mixmaker.funds.ledger import Ledger  # noqa: E402
from mixmaker.funds.moves import Direction, MoveBook, MoveState  # noqa: E402
from mixmaker.mixin.client import MixinClient  # noqa: E402
from mixmaker.store import SqliteStore  # noqa: E402
from mixmaker.users.orders import OrderBook  # noqa: E402
from mixmaker.users.payouts import Outbox  # noqa: E402

SEED = 11
DURATION = 30.0


async def _get(url: str) -> tuple[int, str]:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, http.get(url) as r:
            return r.status, await r.text()
    except (TimeoutError, aiohttp.ClientError, OSError):
        return 0, ""


def _diagnosis(db: Path, logs: list[Path]) -> str:
    tail = "".join(p.read_text()[-3000:] for p in logs if p.exists())
    return (f"orders {order_states(db)}\npayouts {query(db, 'SELECT payout_id, state FROM user_payouts')}\n"
            f"moves {query(db, 'SELECT move_id, direction, state, last_signal, error FROM funds_moves')}\n"
            f"halts {query(db, 'SELECT message FROM funds_halts WHERE cleared_ns = 0')}\n"
            f"alerts {query(db, 'SELECT kind, message FROM funds_alerts')[-10:]}\n"
            f"pool orders live {query(db, 'SELECT COUNT(*) FROM pool_orders')}\nlogs:\n{tail}")


async def _until(check, what: str, timeout: float, crowd: Crowd | None = None,  # type: ignore[no-untyped-def]
                 diagnose=lambda: "") -> None:
    end = time.monotonic() + timeout
    while True:
        if crowd is not None:
            await crowd.act()
        if await check() if asyncio.iscoroutinefunction(check) else check():
            return
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{diagnose()}")
        await asyncio.sleep(0.25)


def moves_in_flight(db: Path, direction: str) -> list[tuple]:  # type: ignore[type-arg]
    """Moves one way that left their source and have not arrived yet."""
    return query(db, "SELECT move_id, state FROM funds_moves WHERE direction = ? AND state IN ('sent', 'seen')",
                 (direction,))


def arrived(db: Path, moves: list[tuple]) -> bool:  # type: ignore[type-arg]
    states = dict(query(db, f"SELECT move_id, state FROM funds_moves WHERE move_id IN ({', '.join('?' for _ in moves)})",
                        tuple(m for m, _ in moves)))
    return len(states) == len(moves) and set(states.values()) == {"arrived"}


async def sends_by_request(bot: MixinClient, people: set[str]) -> Counter[tuple[str, str]]:
    """From the bot's own snapshots: transfers it sent to each person, per request id (each must be 1)."""
    sends: Counter[tuple[str, str]] = Counter()
    seen: set[str] = set()
    offset = 0
    while True:
        page = await bot.snapshots(offset_ns=offset, limit=500, order="ASC")
        fresh = [x for x in page if x.snapshot_id not in seen]
        for x in fresh:
            seen.add(x.snapshot_id)
            if x.units < 0 and x.opponent_id in people:
                sends[(x.opponent_id, x.request_id)] += 1
        if len(page) < 500 or not fresh:
            return sends
        offset = page[-1].created_at_ns


def test_paper_run_killed_mid_run_and_restarted_finishes_the_cycle(tmp_path: Path) -> None:
    cfg = c.load(Path(__file__).resolve().parent.parent / "examples" / "paper.toml")
    db, sims_dir, port = tmp_path / "paper.db", tmp_path / "sims", free_port()
    logs = [tmp_path / "engine-1.log", tmp_path / "engine-2.log", tmp_path / "engine-3.log"]

    async def play(engine_procs: list) -> dict:  # type: ignore[type-arg]
        sims = await wait_for_sims(sims_dir, 60)
        engine_procs.append(run_paper(db, sims_dir, port, logs[0], "--log-format", "json"))
        people = plan(SEED, 4, "binance:BTC/USDT", ("tight", "wide"), operator=str(cfg.funds.fee_payers[0]))
        async with MixinClient(sims.bot_keystore(), sims.mixin_url) as bot:
            crowd = Crowd(tmp_path, people, cfg.catalog.assets, sims.mixin_url, bot, duration_s=DURATION, seed=SEED)
            # a move on its way to the exchange (the Mixin withdrawal sent, not credited yet): killed
            await _until(lambda: bool(moves_in_flight(db, "to_exchange")), "a move to the exchange in flight", 120, crowd,
                         lambda: _diagnosis(db, logs))
            in_flight = moves_in_flight(db, "to_exchange")
            engine_procs[0].send_signal(signal.SIGKILL)
            engine_procs[0].wait(10)
            engine_procs.append(run_paper(db, sims_dir, port, logs[1], "--log-format", "json"))
            # every order active and the pools trading: what the operator sees
            await _until(lambda: len(order_states(db)) == 3 and set(order_states(db).values()) == {"active"}
                         and fills(db) >= 1, "orders active and a fill", 120, crowd,
                         lambda: _diagnosis(db, logs))
            status, body = await _get(f"http://127.0.0.1:{port}/health")
            assert status == 200, body
            parts = json.loads(body)["parts"]
            assert {"database", "mixin", "exchange:binance", "book:binance:BTC/USDT", "funds", "intake", "orders",
                    "payouts", "reconciliation"} <= set(parts) and all(p["ready"] for p in parts.values()), parts
            # the move killed in flight was followed to its end by the next process
            assert arrived(db, in_flight), query(db, "SELECT move_id, state, last_signal FROM funds_moves")
            status, text = await _get(f"http://127.0.0.1:{port}/metrics")
            for name in ("mixmaker_book_synced{market=\"binance:BTC/USDT\"} 1.0", "mixmaker_fills_total",
                         "mixmaker_tick_duration_seconds", "mixmaker_limiter_429_total", 'mixmaker_moves{state="sent"}',
                         "mixmaker_move_oldest_age_seconds{", "mixmaker_reconciliation_difference{",
                         "mixmaker_reconciliation_ok ", "mixmaker_funds_halts 0.0", 'mixmaker_user_orders{state="active"} 3.0',
                         "mixmaker_pool_members{", "mixmaker_exchange_orders{", "mixmaker_book_messages_per_second"):
                assert name in text, name
            # users stop; a move back to Mixin on its way (the exchange's withdrawal sent): killed again
            await _until(lambda: bool(moves_in_flight(db, "to_mixin")), "a move back to Mixin in flight", 120, crowd,
                         lambda: _diagnosis(db, logs))
            back_in_flight = moves_in_flight(db, "to_mixin")
            engine_procs[1].send_signal(signal.SIGKILL)
            engine_procs[1].wait(10)
            fills_at_kill = fills(db)
            engine_procs.append(run_paper(db, sims_dir, port, logs[2], "--log-format", "json", "--report",
                                          str(tmp_path / "run.png")))
            # the users go on (the other stops fall while the engine restarts or after); the cycle finishes
            await _until(lambda: crowd.stops_done and crowd.payments_done and order_states(db)
                         and all(s in ("settled", "refunded") for s in order_states(db).values())
                         and queued_payouts(db) == 0, "every order settled and paid", 180, crowd,
                         lambda: _diagnosis(db, logs))
            assert fills(db) >= fills_at_kill and arrived(db, back_in_flight)
            # graceful stop: quoting stops, open orders are cancelled, exit 0
            assert stop(engine_procs[2], signal.SIGTERM, 60) == 0
            assert (tmp_path / "run.png").stat().st_size > 10_000  # the run's picture, both processes' samples
            await crowd.note_after()
            wallet, exchanges = await observe_paper(sims, cfg.catalog.assets, cfg.exchanges)
            from mixmaker.connectors.binance import BinanceSpotConnector

            async with BinanceSpotConnector(sims.credentials(), sims.endpoints, name="t") as conn:
                await conn.venue.load_markets()
                assert await conn.venue.fetch_open_orders("BTCUSDT") == []
            store = SqliteStore(db)
            try:
                ledger = Ledger(store)
                orders = OrderBook(store)
                outbox = Outbox(store, ledger, cfg.catalog.assets, cfg.catalog.limits, orders)
                report = cycle_report.build(ledger, orders, outbox, cfg.catalog.assets,
                                            users_before=crowd.doc["before"], users_after=crowd.doc["after"],
                                            bot_wallet=wallet, exchanges=exchanges, fee_payers=crowd.operators)
                moves = MoveBook(store, ledger).all()
            finally:
                store.close()
            # every move ended and arrived (nothing left in transit); each refund and payout sent once
            assert moves and all(m.state is MoveState.ARRIVED for m in moves), [(m.move_id, m.state) for m in moves]
            assert {m.direction for m in moves} == {Direction.TO_EXCHANGE, Direction.TO_MIXIN}
            sends = await sends_by_request(bot, {p.user_id for p in people})
            assert sends and set(sends.values()) == {1}, sends
            assert len({who for who, _ in sends}) == 4  # the refunded user and the three members
            await crowd.close()
            return {"report": report, "secrets": [sims.api_secret.get_secret_value(),
                                                  sims.keystore["session_private_key"],
                                                  sims.keystore["spend_private_key"]]}

    procs: list = []  # type: ignore[type-arg]
    with sims_process(sims_dir, SEED):
        try:
            out = asyncio.run(asyncio.wait_for(play(procs), 420))
        finally:
            for p in procs:
                stop(p, signal.SIGKILL, 10)
    report = out["report"]
    assert {a: x["difference"] for a, x in report["assets"].items()} == {"BTC": "0", "USDT": "0", "ETH": "0"}, \
        json.dumps(report["reconciliation"], indent=1)
    assert report["ok"], json.dumps(report, indent=1)[:4000]
    assert [u["state"] for u in report["user_orders"]] == ["settled"] * 3
    refunds = report["reconciliation"]["refunds"]
    assert [(r["reason"], r["amount"], r["state"]) for r in refunds] == [("bad_memo", "50", "sent")]
    assert report["assets"]["USDT"]["ledger"]["refunds"] == "50"

    # logs: one JSON object per line, the ids on the lines about a user order, never a secret
    text = "".join(p.read_text() for p in logs)
    for secret in out["secrets"]:
        assert secret not in text
    lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
    assert len(lines) > 20 and all("msg" in x and "level" in x for x in lines)
    transitions = [x for x in lines if x["logger"] == "mixmaker.activity" and x["msg"].startswith("user order")]
    assert transitions and all(x.get("user_order") for x in transitions)
    payouts = [x for x in lines if x["logger"] == "mixmaker.activity" and x["msg"].startswith("payout")]
    assert payouts and all(x.get("payout") and x.get("user_order") for x in payouts)
    fills_logged = [x for x in lines if x["msg"].startswith("fill ")]
    assert fills_logged and all(x.get("pool") and x.get("order") for x in fills_logged)

    # `mixmaker status` reads the same database: orders, moves in flight, the last reconciliation
    import subprocess
    import sys

    from engine_helpers import env

    st = subprocess.run([sys.executable, "-m", "mixmaker.cli", "status", "--db", str(db)], capture_output=True, text=True,
                        env=env(), timeout=60)
    assert st.returncode == 0, st.stderr
    assert "settled 3" in st.stdout and "MOVES IN FLIGHT  none" in st.stdout
    assert "LAST RECONCILIATION  ok at" in st.stdout and "MOVES HALTED" not in st.stdout
