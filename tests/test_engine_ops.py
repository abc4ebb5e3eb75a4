"""Operating the engine: structured logs carry the ids and never a secret; /health says what is
not ready and why; /metrics answers in the Prometheus format; a periodic worker survives a
failing pass and stops between passes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import types

import aiohttp
import pytest

from mixmaker.engine.config import LogFormat
from mixmaker.engine.health import Health
from mixmaker.engine.logs import REDACT, event, log_ids, setup
from mixmaker.engine.metrics import MetricsServer
from mixmaker.engine.workers import Periodic


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _capture(fmt: LogFormat) -> tuple[io.StringIO, logging.Logger]:
    out = io.StringIO()
    setup(fmt, "info", stream=out)
    return out, logging.getLogger("mixmaker.test")


def test_json_lines_carry_the_ids_of_the_step_they_belong_to():
    out, log = _capture(LogFormat.JSON)
    with log_ids(user_order="o-1"):
        log.info("outer")
        with log_ids(move="o-1.in.BTC", request="r-9", pool="binance:BTC/USDT:tight"):

            async def layer_code() -> None:  # a layer's own line, in a task started inside the step
                await asyncio.sleep(0)
                logging.getLogger("mixmaker.orders").warning("create of %s uncertain", "mm123")

            asyncio.run(layer_code())
    event(log, "paid", ids={"payout": "payout:o-1:BTC"}, amount="0.1")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert lines[0]["user_order"] == "o-1" and "move" not in lines[0]
    assert lines[1] == {**lines[1], "user_order": "o-1", "move": "o-1.in.BTC", "request": "r-9",
                        "pool": "binance:BTC/USDT:tight", "level": "warning", "logger": "mixmaker.orders",
                        "msg": "create of mm123 uncertain"}
    assert lines[2]["payout"] == "payout:o-1:BTC" and lines[2]["amount"] == "0.1" and "user_order" not in lines[2]


def test_no_secret_reaches_a_line_by_any_path():
    secret = "9f2c1b7e0d4a4c55b1e2f3a4b5c6d7e8"
    REDACT.add(secret)
    for fmt in (LogFormat.JSON, LogFormat.HUMAN):
        out, log = _capture(fmt)
        log.info("signed with %s", secret)
        log.info(f"inline {secret}")
        try:
            raise RuntimeError(f"the venue echoed {secret}")
        except RuntimeError:
            log.exception("failed")
        text = out.getvalue()
        assert secret not in text and text.count("***") >= 3, text
    human = text.splitlines()[0]
    assert human.endswith("signed with ***")


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return r.status, await r.text()


def test_health_says_what_is_not_ready_and_why_and_metrics_answer():
    async def go() -> None:
        health = Health()
        health.set("database", True, "/x.db")
        health.set("exchange:binance", False, "ConnectionRefusedError: 127.0.0.1:1")
        engine = types.SimpleNamespace(health=health, store=None)
        server = MetricsServer(engine, "127.0.0.1", 0)  # type: ignore[arg-type]
        port = await server.start()
        try:
            status, body = await _get(f"http://127.0.0.1:{port}/health")
            doc = json.loads(body)
            assert status == 503 and doc["ready"] is False
            assert doc["not_ready"] == {"engine": "starting", "exchange:binance": "ConnectionRefusedError: 127.0.0.1:1"}
            status, text = await _get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200
            assert "mixmaker_ready 0.0" in text
            assert 'mixmaker_part_ready{part="exchange:binance"} 0.0' in text
            health.set("exchange:binance", True)
            health.phase = "running"
            status, body = await _get(f"http://127.0.0.1:{port}/health")
            assert status == 200 and json.loads(body)["not_ready"] == {}
        finally:
            await server.stop()

    asyncio.run(go())


def test_a_worker_survives_a_failing_pass_and_stops_between_passes():
    async def go() -> None:
        calls = []

        async def job() -> None:
            calls.append(len(calls))
            if len(calls) == 2:
                raise ValueError("the venue did not answer")
            await asyncio.sleep(0.05)

        w = Periodic("t", 0.01, job).start()
        while len(calls) < 4:
            await asyncio.sleep(0.01)
        assert w.stats.errors == 1 and "the venue did not answer" in w.stats.last_error
        assert await w.stop(5.0)  # the pass in flight finished: not cancelled
        n = len(calls)
        await asyncio.sleep(0.1)
        assert len(calls) == n and w.stats.runs >= 2

    asyncio.run(go())


STOPPER = """
import asyncio, sys
from mixmaker.engine.signals import StopSignals

async def main():
    s = StopSignals("t").install()
    print("ready", flush=True)
    await s.stop.wait()
    print("graceful stop begins", flush=True)
    await asyncio.sleep(30)  # a long graceful stop
    return 0

sys.exit(asyncio.run(main()))
"""


def test_the_first_signal_stops_gracefully_and_the_second_exits_at_once():
    import signal
    import subprocess
    import sys
    import time

    from engine_helpers import env

    p = subprocess.Popen([sys.executable, "-c", STOPPER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env())
    try:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGTERM)
        assert p.stdout.readline().strip() == "graceful stop begins"
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        assert p.wait(10) == 130 and time.monotonic() - t0 < 5
        err = p.stderr.read()
        assert "SIGTERM: stopping" in err and "SIGINT again: exiting now" in err
    finally:
        if p.poll() is None:
            p.kill()


WINDING_DOWN = """
import asyncio, os, signal, sys, time
from mixmaker.engine.signals import StopSignals

s = StopSignals("t")

async def main():
    s.install()
    return 0

try:
    asyncio.run(main())  # the engine stopped quickly; the loop is gone
finally:
    s.exit_at_once()
print("winding down", flush=True)
time.sleep(30)  # the report, the interpreter's exit...
"""


def test_a_signal_after_the_graceful_stop_finished_exits_at_once_without_a_traceback():
    import signal
    import subprocess
    import sys

    from engine_helpers import env

    p = subprocess.Popen([sys.executable, "-c", WINDING_DOWN], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env())
    try:
        assert p.stdout.readline().strip() == "winding down"
        p.send_signal(signal.SIGINT)
        assert p.wait(10) == 130
        err = p.stderr.read()
        assert "SIGINT: exiting now" in err and "Traceback" not in err, err
    finally:
        if p.poll() is None:
            p.kill()


def test_the_dashboard_draws_every_pane_wide_and_narrow():
    import time
    from decimal import Decimal
    from fractions import Fraction

    from rich.console import Console

    from mixmaker.engine import dashboard
    from mixmaker.engine.overview import BookLine, MoveLine, OrderLine, Overview, PoolLine, Quote
    from mixmaker.funds.moves import MoveState
    from mixmaker.orders import OrderState as ExchangeOrderState
    from mixmaker.orders import Side
    from mixmaker.users.orders import OrderState

    ov = Overview(time.time_ns(), "running")
    ov.books = [BookLine("binance:BTC/USDT", True, "", Decimal("59999.9"), Decimal("60000.1"), {})]
    ov.pools = [PoolLine("binance:BTC/USDT:tight", "binance:BTC/USDT", "BTC", "USDT", ["o1"], {"BTC": 1_000_000},
                         Fraction(600_000_000_000), [Quote(Side.BUY, Decimal("59999.8"), Decimal("0.001"), ExchangeOrderState.OPEN)], 3,
                         "RUNNING")]
    ov.orders = [OrderLine("o1" * 18, OrderState.ACTIVE, "binance:BTC/USDT:tight", "payer-1", {"BTC": 1_000_000}, {},
                           {"BTC": Fraction(1_000_000)})]
    ov.moves = [MoveLine("mv-0123456789ab", "mixin->exchange", "BTC", 500_000, MoveState.SENT, 2.0, "binance")]
    ov.reconciliation = {"check_id": "rc-1", "at_ns": ov.at_ns, "ok": True, "summary": "ok", "errors": [],
                         "differences": []}
    for width in (80, 180):
        console = Console(width=width, height=40, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
        console.print(dashboard.render(ov, "mixmaker demo t=1s", ["08:00:00 fill buy 0.001 BTC"], {"BTC": 8, "USDT": 8},
                                       width))
        text = console.export_text()
        for pane in ("books and our quotes", "pools", "user orders", "moves in transit", "reconciliation and activity",
                     "59999.8", "0.01 BTC (in pool)", "mv-0123456789ab", "mixin->exchange", "to the unit", "fill buy"):
            assert pane in text, (width, pane)
    line = dashboard.progress_line(ov, "t=1s")
    assert "orders: active 1" in line and "fills 0" in line and "moves in transit 1" in line
    assert "reconciliation clean" in line
    # a difference at two checks in a row: moves halt, and the dashboard says where
    ov.reconciliation = {**ov.reconciliation, "ok": False, "differences": [
        {"account": "exchange:binance", "asset": "BTC", "ledger": "1", "observed": "0.9", "difference": "-0.1"}]}
    ov.halts = ["exchange:binance BTC: the ledger says 1, the venue holds 0.9"]
    console = Console(width=180, height=40, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(dashboard.render(ov, "t=2s", [], {"BTC": 8, "USDT": 8}, 180))
    text = console.export_text()
    assert "exchange:binance BTC -0.1" in text and "MOVES HALTED" in text
    assert "MOVES HALTED" in dashboard.progress_line(ov, "t=2s")


def _offline_engine(tmp_path):
    """An engine's parts on a store, its funds layer on venues that are never called: for what the
    engine makes of the funds layer's state (/health, the dashboard, the metrics, the cycle)."""
    from pathlib import Path

    from mixmaker.engine import config as c
    from mixmaker.engine.runtime import Engine
    from mixmaker.engine.venues import Links
    from mixmaker.funds.ledger import Ledger
    from mixmaker.funds.worker import FundsWorker
    from mixmaker.mixin import Keystore, MixinClient
    from mixmaker.mixin.payments import Payments
    from mixmaker.sim.mixin.setup import new_bot, seeded_world
    from mixmaker.store import SqliteStore
    from mixmaker.users.orders import OrderBook
    from mixmaker.users.pools import PoolLedger, terms_from_catalog

    cfg = c.load(Path(__file__).resolve().parent.parent / "examples" / "paper.toml")
    keystore = Keystore.from_dict(new_bot(seeded_world(1)))
    engine = Engine(cfg, Links(c.Mode.PAPER, "http://127.0.0.1:1", keystore, {}))
    engine.store = store = SqliteStore(tmp_path / "e.db")
    engine.ledger = ledger = Ledger(store)
    cfg.catalog.assets.register(ledger)
    engine.orders = OrderBook(store)
    engine.pool_book = PoolLedger(store, ledger, terms_from_catalog(cfg.catalog))
    client = MixinClient(keystore, "http://127.0.0.1:1")
    engine.funds = FundsWorker(store, ledger, cfg.catalog.assets, Payments(client, store), {"binance": object()},
                               config=cfg.funds_config())
    return engine, client, store


def test_a_difference_at_two_checks_halts_moves_and_health_dashboard_and_metrics_say_where(tmp_path):
    """The engine's view of the funds layer's reconciliation (its table, as `mixmaker status` reads
    it): a difference seen once is the world moving (still ready); the same one at the next check
    halts moves, and /health, the dashboard and the metrics name the account, asset and amount."""
    from prometheus_client import CollectorRegistry, generate_latest
    from rich.console import Console

    from mixmaker.engine import dashboard
    from mixmaker.engine.metrics import EngineCollector
    from mixmaker.engine.overview import overview
    from mixmaker.funds.reconcile import Check, Line

    engine, client, store = _offline_engine(tmp_path)
    engine._funds_health()
    assert engine.health.report()["not_ready"]["reconciliation"] == "no check yet"

    def check(n: int) -> None:
        engine.funds.reconciler._store(Check(f"rc-{n}", [Line("exchange:binance", "BTC", 100_000, 30_000),
                                                         Line("wallet:mixin", "BTC", 5, 5)]), n)
        engine._funds_health()

    check(1)
    parts = engine.health.report()["parts"]
    assert parts["reconciliation"]["ready"] and "seen once" in parts["reconciliation"]["why"]
    assert parts["funds"]["ready"]
    check(2)
    not_ready = engine.health.report()["not_ready"]
    assert "exchange:binance BTC -0.0007" in not_ready["reconciliation"], not_ready
    assert not_ready["funds"].startswith("moves halted: exchange:binance BTC") and "clear-halt" in not_ready["funds"]
    ov = overview(engine)
    assert ov.halts and ov.reconciliation is not None and not ov.reconciliation["ok"]
    console = Console(width=180, height=40, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(dashboard.render(ov, "t", [], {"BTC": 8, "USDT": 8}, 180))
    text = console.export_text()
    assert "exchange:binance BTC -0.0007" in text and "MOVES HALTED" in text
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine))
    metrics = generate_latest(registry).decode()
    assert 'mixmaker_reconciliation_difference{asset="BTC",place="exchange:binance"} -0.0007' in metrics
    assert "mixmaker_reconciliation_ok 0.0" in metrics and "mixmaker_funds_halts 1.0" in metrics
    asyncio.run(client.close())
    store.close()


def test_a_cycle_asks_the_venues_about_the_moves_in_flight_once(tmp_path):
    """The cycle follows the moves before intake and does not follow them again when it moves funds
    (each follow is a venue call per move in flight, live)."""
    engine, client, store = _offline_engine(tmp_path)
    calls = []

    async def counted(*_a, **_k):
        calls.append("confirm")
        return 0

    async def nothing(*_a, **_k):
        return 0

    engine.funds.confirm.run_once = counted
    engine.funds.mover.run_once = nothing
    engine.funds.reconcile = nothing
    engine._take_in = nothing
    engine._orders_pass = nothing
    engine._payouts_pass = nothing
    asyncio.run(engine._cycle())
    asyncio.run(engine._cycle())
    assert calls == ["confirm", "confirm"]
    asyncio.run(client.close())
    store.close()


def test_a_move_waiting_for_the_fee_float_is_named_by_health_and_the_dashboard(tmp_path):
    from rich.console import Console

    from mixmaker.engine import dashboard
    from mixmaker.engine.overview import overview
    from mixmaker.funds.mover import FeeShort

    engine, client, store = _offline_engine(tmp_path)
    engine.funds.mover.fee_short = [FeeShort("to_exchange:binance:USDT", "USDT", "binance", "ETH", 300_000, 120_000)]
    engine._funds_health()
    why = engine.health.report()["not_ready"]["funds"]
    assert why.startswith("fee float short: a move of USDT on binance") and "0.003 ETH" in why \
        and "bot:fees has 0.0012 ETH" in why, why
    ov = overview(engine)
    console = Console(width=180, height=40, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(dashboard.render(ov, "t", [], {"BTC": 8, "USDT": 8, "ETH": 8}, 180))
    text = " ".join(console.export_text().split())
    assert "FEE FLOAT SHORT: a move of USDT on binance" in text and "0.0012 ETH" in text, text
    assert "FEE FLOAT SHORT" in dashboard.progress_line(ov, "t")
    engine.funds.mover.fee_short = []
    engine._funds_health()
    assert "funds" not in engine.health.report()["not_ready"]
    asyncio.run(client.close())
    store.close()
