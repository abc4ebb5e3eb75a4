"""The API key and secret never print: through every public path of the Binance connector, with
exceptions forced, tracebacks formatted with their locals (the standard library's, pytest's
`--showlocals`, rich's), every log line at DEBUG with ccxt's verbose output asked for, the
reprs of every connector object, and pickling or copying.

ccxt keeps the secret in `exchange.secret` and prints (verbose) or logs (DEBUG) request headers,
the API key among them: the connector's ccxt instance holds a placeholder and signs through
`ApiCredentials`, and ccxt's output is off or masked.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
import socket
import traceback
from decimal import Decimal
from typing import Any

import pytest
from _pytest._code import ExceptionInfo

ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency")
pytest.importorskip("picows", reason="the simulator needs picows")

from mixmaker._core import Side  # noqa: E402
from mixmaker.connectors.binance import BinanceEndpoints, BinanceSpotConnector  # noqa: E402
from mixmaker.connectors.ccxt_sealed import PLACEHOLDER, sealed_exchange  # noqa: E402
from mixmaker.connectors.credentials import ApiCredentials  # noqa: E402
from mixmaker.orders.protocol import OrderRequest  # noqa: E402
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig  # noqa: E402

KEY = "kEyOfTheTest0123456789abcdefABCDEF0123456789abcdefABCDEF01234567"  # 64 characters, as Binance's
SECRET = "sEcReTofTheTest-do-not-print-9f8e7d6c5b4a39281706f5e4d3c2b1a0ffee"
LEAKS = (KEY, SECRET, KEY[8:40], SECRET[8:40])
SYMBOL = "BTCUSDT"


def assert_clean(text: str, where: str) -> None:
    for needle in LEAKS:
        assert needle not in text, f"{where} shows a credential:\n{text[:3000]}"


def formatted(e: BaseException) -> str:
    """`e` as three traceback formatters show it, each with the locals of every frame."""
    out = ["".join(traceback.TracebackException.from_exception(e, capture_locals=True).format())]
    out.append(str(ExceptionInfo.from_exception(e).getrepr(showlocals=True, style="long", chain=True)))
    try:
        from rich.console import Console
        from rich.traceback import Traceback
    except ImportError:  # pragma: no cover - rich is in the dev environment
        pass
    else:
        console = Console(record=True, width=200, file=open("/dev/null", "w"))  # noqa: SIM115
        console.print(Traceback.from_exception(type(e), e, e.__traceback__, show_locals=True))
        out.append(console.export_text())
    return "\n".join(out)


async def caught(aw: Any) -> BaseException:
    try:
        await aw
    except Exception as e:  # noqa: BLE001 - every failure is what we look at
        return e
    raise AssertionError("the call was meant to fail")


def every_venue_call(conn: BinanceSpotConnector) -> dict[str, Any]:
    """Every public REST path of the connector's venue, as coroutine factories."""
    v, m = conn.venue, conn.venue.market(SYMBOL)
    return {
        "create_order": lambda: v.create_order(OrderRequest("c1", SYMBOL, Side.BUY, m.price("40000"), m.size("0.001"))),
        "cancel_order": lambda: v.cancel_order(SYMBOL, "c1", None),
        "fetch_order": lambda: v.fetch_order(SYMBOL, "c1"),
        "fetch_open_orders": lambda: v.fetch_open_orders(SYMBOL),
        "fetch_my_trades": lambda: v.fetch_my_trades(SYMBOL),
        "fetch_balances": lambda: v.fetch_balances(),
        "deposit_address": lambda: v.deposit_address("USDT"),
        "deposits": lambda: v.deposits("USDT"),
        "withdrawals": lambda: v.withdrawals("USDT"),
        "find_withdrawal": lambda: v.find_withdrawal("USDT", "w1"),
        "withdraw": lambda: v.withdraw("w1", "USDT", Decimal("1"), "addr"),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_path_prints_the_key_or_the_secret(caplog, capsys):
    caplog.set_level(logging.DEBUG)  # every logger, ccxt's included

    async def go() -> list[str]:
        texts: list[str] = []
        async with ExchangeSim(SimConfig(seed=3, publish_interval=0.05)) as sim:
            # The venue knows our key with another secret: every signed request is refused.
            sim.add_account("mm", KEY, "the-venue-knows-another-secret", {"USDT": "1000", "BTC": "1"})
            endpoints = BinanceEndpoints(sim.rest_url, sim.ws_url, f"{sim.ws_url}/ws-api/v3")
            conn = BinanceSpotConnector(ApiCredentials(KEY, SECRET), endpoints, timeout_ms=2000)
            ex = conn.venue.exchange
            ex.verbose = True  # asked for: it stays off (it prints every request's headers)
            assert ex.verbose is False
            await conn.start([SYMBOL])  # public: markets and the depth stream work
            for name, call in every_venue_call(conn).items():
                e = await caught(call())
                texts += [f"{name}: {e!r} {e}", formatted(e)]
            # The same paths when the venue fails in other ways: 5xx after acting, 429s.
            sim.faults.configure("ack_5xx=1,rate_limit=0.5")
            for name, call in every_venue_call(conn).items():
                e = await caught(call())
                texts += [f"{name}: {e!r}", formatted(e)]
            sim.faults.clear()
            conn.limiter.core.stats.blocked_until = 0.0  # the 429s' wait is not under test here
            # The user stream refuses our signature: its task fails; so does the attach path.
            from mixmaker.orders import ClientOrderTracker
            from mixmaker.store import SqliteStore

            tracker = ClientOrderTracker(conn.venue, SqliteStore(":memory:"))
            user = conn.attach(tracker)
            task = conn._tasks[-1]
            e = await caught(asyncio.wait_for(asyncio.shield(task), 10))
            texts += [f"user stream: {e!r}", formatted(e), repr(user), str(user.stats)]
            # Reprs of every object the connector is made of.
            for obj in (conn, conn.venue, ex, conn.limiter, conn.limiter.stats, conn.credentials, user,
                        *conn.depth.values(), *conn.syncs.values(), conn.endpoints):
                texts += [repr(obj), str(obj), f"{obj}"]
            # Pickling or deep-copying would put the secret where we cannot see it: refused.
            for obj in (conn, conn.venue, ex, conn.credentials):
                for dump in (pickle.dumps, copy.deepcopy):
                    with pytest.raises(TypeError) as info:
                        dump(obj)
                    texts.append(formatted(info.value))
            await conn.close()
        # A venue that cannot be reached: the connection errors of every path.
        dead = BinanceEndpoints(f"http://127.0.0.1:{free_port()}", f"ws://127.0.0.1:{free_port()}",
                                f"ws://127.0.0.1:{free_port()}/ws-api/v3")
        conn = BinanceSpotConnector(ApiCredentials(KEY, SECRET), dead, timeout_ms=500)
        e = await caught(conn.start([SYMBOL]))
        texts += [repr(e), formatted(e)]
        await conn.close()
        return texts

    texts = asyncio.run(go())
    for text in texts:
        assert_clean(text, "an error, a traceback with locals or a repr")
    for record in caplog.records:
        assert_clean(record.getMessage(), f"log record {record.name}")
    out = capsys.readouterr()
    assert_clean(out.out + out.err, "stdout/stderr")
    assert any(r.name.startswith("mixmaker.connectors.ccxt") for r in caplog.records), "ccxt's DEBUG lines came through, masked"


def test_the_ccxt_instance_never_holds_the_secret_and_still_signs():
    async def go() -> None:
        async with ExchangeSim(SimConfig(seed=4)) as sim:
            sim.add_account("mm", KEY, SECRET, {"USDT": "1000", "BTC": "1"})
            endpoints = BinanceEndpoints(sim.rest_url, sim.ws_url, f"{sim.ws_url}/ws-api/v3")
            conn = BinanceSpotConnector(ApiCredentials(KEY, SECRET), endpoints)
            ex = conn.venue.exchange
            try:
                await conn.venue.load_markets()
                assert (await conn.venue.fetch_balances())["USDT"].free == Decimal("1000")  # signed, accepted
                assert ex.secret == PLACEHOLDER
                assert SECRET not in str(_walk(vars(ex)))
            finally:
                await conn.close()

    asyncio.run(go())


def _walk(obj: Any, depth: int = 0) -> list[Any]:
    """Every str/bytes reachable through dicts, lists and tuples."""
    if depth > 6:
        return []
    if isinstance(obj, (str, bytes)):
        return [obj]
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in _walk(k, depth + 1) + _walk(v, depth + 1)]
    if isinstance(obj, (list, tuple, set)):
        return [x for v in obj for x in _walk(v, depth + 1)]
    return []


def ours(e: BaseException) -> BaseException:
    """`e` with the test's own frame (which passed the credentials in) left out of its traceback."""
    assert e.__traceback__ is not None and e.__traceback__.tb_next is not None
    return e.with_traceback(e.__traceback__.tb_next)


def test_credentials_refuse_bad_input_without_showing_it():
    for key, secret in (("", SECRET), (KEY, ""), (None, SECRET), (KEY, b"bytes-" + SECRET.encode())):
        with pytest.raises(ValueError) as info:
            ApiCredentials(key, secret)  # type: ignore[arg-type]
        assert_clean(formatted(ours(info.value)), "a refused ApiCredentials")
    creds = ApiCredentials(KEY, SECRET)
    for bad in (12345, None):
        with pytest.raises(TypeError) as info:
            creds.hmac(bad)  # type: ignore[arg-type]
        assert_clean(formatted(ours(info.value)), "a refused signing")
    with pytest.raises(ValueError) as info:
        creds.hmac("payload", algorithm=None)  # type: ignore[arg-type]
    assert_clean(formatted(ours(info.value)), "a refused digest")
    with pytest.raises(ValueError) as info:
        sealed_exchange(ccxt.binance, creds, {"secret": SECRET, "apiKey": KEY})
    assert_clean(formatted(ours(info.value)), "a refused ccxt config")
    assert creds.redact(f"key {KEY} secret {SECRET}") == "key *** secret ***"
    assert creds.sign("a=1") == creds.hmac(b"a=1") and len(creds.sign("a=1")) == 64


def test_control_a_plain_ccxt_instance_logs_the_key_and_holds_the_secret(caplog):
    """What the sealed instance prevents: ccxt's own DEBUG line carries the API key, and the
    secret sits in a plain attribute that pickles."""
    caplog.set_level(logging.DEBUG)

    async def go() -> None:
        async with ExchangeSim(SimConfig(seed=5)) as sim:
            sim.add_account("mm", KEY, SECRET, {"USDT": "1"})
            ex = ccxt.binance(sim.ccxt_config(KEY, SECRET))
            try:
                assert SECRET.encode() in pickle.dumps(ex) and ex.secret == SECRET
                await ex.fetch_balance()
            finally:
                await ex.close()

    asyncio.run(go())
    assert any(KEY in r.getMessage() for r in caplog.records)
