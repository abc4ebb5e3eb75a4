"""The one reconnecting socket every stream runs (`connectors.reconnect.ReconnectingSocket`),
against the simulator's WebSocket server: a session whose setup fails closes its socket and
tries again, failures are counted in a row and start over after a good session, and an error
that retrying cannot fix ends `run()` with no socket left open."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("picows", reason="the sockets and the simulator need picows")

from mixmaker.connectors import binance_limits as bl  # noqa: E402
from mixmaker.connectors.backoff import Backoff  # noqa: E402
from mixmaker.connectors.binance_user import UserStream, UserStreamError  # noqa: E402
from mixmaker.connectors.credentials import ApiCredentials  # noqa: E402
from mixmaker.connectors.limiter import RateLimiter  # noqa: E402
from mixmaker.connectors.reconnect import ReconnectingSocket  # noqa: E402

from connector_helpers import start_sim, until  # noqa: E402


class Probe(ReconnectingSocket):
    """Fails the setup of the sessions whose numbers are in `fail`, with `error`."""

    def __init__(self, url: str, fail: set[int], error: Exception) -> None:
        super().__init__(url, backoff=Backoff(0.01, 0.05, seed=3))
        self.fail, self.error = fail, error
        self.setups = 0
        self.failures: list[int] = []
        self.disconnects = 0
        self.frames: list[bytes] = []

    def _on_frame(self, raw: bytes) -> None:
        self.frames.append(raw)

    async def _on_connected(self, transport: object) -> None:
        self.setups += 1
        if self.setups in self.fail:
            raise self.error

    async def _on_failure(self, error: Exception, failures: int) -> None:
        assert error is self.error
        self.failures.append(failures)

    def _on_disconnected(self) -> None:
        self.disconnects += 1


def test_failed_setups_close_their_socket_count_in_a_row_and_start_over_after_a_good_session():
    async def go():
        async with start_sim() as sim:
            p = Probe(f"{sim.ws_url}/ws/btcusdt@trade", {1, 2, 4}, asyncio.TimeoutError("no answer"))
            task = asyncio.create_task(p.run())
            try:
                await until(lambda: p.setups == 3 and len(sim.hub.connections) == 1, "the third session")
                assert p.failures == [1, 2] and p.disconnects == 2
                p.drop_connection()  # the good session ends; the next setup fails: 1 in a row again
                await until(lambda: p.setups == 5 and len(sim.hub.connections) == 1, "the fifth session")
                assert p.failures == [1, 2, 1] and p.disconnects == 4
            finally:
                p.close()
                await asyncio.wait_for(task, 5)
            await until(lambda: not sim.hub.connections, "the server side closed")

    asyncio.run(go())


def test_an_error_retrying_cannot_fix_ends_run_and_leaves_no_socket_open():
    async def go():
        async with start_sim() as sim:
            p = Probe(f"{sim.ws_url}/ws/btcusdt@trade", {1}, LookupError("a bug, not the network"))
            with pytest.raises(LookupError):
                await asyncio.wait_for(p.run(), 5)
            assert p.disconnects == 1 and p.failures == []
            await until(lambda: not sim.hub.connections, "the socket closed")

    asyncio.run(go())


def test_a_user_stream_refused_for_its_rate_closes_the_socket_and_subscribes_again():
    """A 429 to the subscription fails the session: before, its socket stayed open and every
    retry opened another, and the retry came before the venue's retryAfter (a 418 ban)."""
    async def go():
        async with start_sim() as sim:
            limiter = RateLimiter(bl.spot_pools(), backoff_s=0.01, backoff_max_s=0.05, seed=1)
            us = UserStream(ApiCredentials("mm-key", "mm-secret"), ws_api_url=f"{sim.ws_url}/ws-api/v3",
                            limiter=limiter, markets={}, now_ms=lambda: time.time_ns() // 1_000_000, on_trade=lambda _t: None,
                            backoff_s=0.01, backoff_max_s=0.05, seed=1)
            sim.faults.set("rate_limit", 1.0)
            task = asyncio.create_task(us.run())
            try:
                await until(lambda: sim.faults.hits["rate_limit"] >= 2, "two refused subscriptions")
                sim.faults.set("rate_limit", 0.0)
                await until(us.subscribed.is_set, "the subscription")
                assert "rate limited" in (us.stats.last_error or "") and sim.hub.limiter.bans == 0
                await until(lambda: len(sim.hub.connections) == 1, "one socket, not one per attempt")
            finally:
                us.close()
                await asyncio.wait_for(task, 5)

    asyncio.run(go())


def test_a_refused_key_ends_the_user_stream_with_its_socket_closed():
    async def go():
        async with start_sim() as sim:
            limiter = RateLimiter(bl.spot_pools(), backoff_s=0.01, backoff_max_s=0.05, seed=1)
            us = UserStream(ApiCredentials("mm-key", "not-the-secret"), ws_api_url=f"{sim.ws_url}/ws-api/v3",
                            limiter=limiter, markets={}, now_ms=lambda: time.time_ns() // 1_000_000, on_trade=lambda _t: None)
            with pytest.raises(UserStreamError, match="refused"):
                await asyncio.wait_for(us.run(), 10)
            await until(lambda: not sim.hub.connections, "the socket closed")

    asyncio.run(go())
