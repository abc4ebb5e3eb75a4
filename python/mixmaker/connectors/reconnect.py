"""One reconnecting WebSocket, the loop every stream of a connector runs: connect (picows, pinging
an idle connection so a silent one is noticed), set the session up, hand each frame's bytes on,
and when the connection drops or cannot be made, back off with jitter and connect again, until
`close()`.

A stream subclasses `ReconnectingSocket` and fills in what is its own:
- `_on_frame(raw)`: every text or binary frame's bytes;
- `_on_connected(transport)`: the session's setup (subscribe, reset a book and resync); an
  exception it raises fails the session like a refused connect (`OSError`, `TimeoutError`,
  `RuntimeError`) or, for any other exception, ends `run()` (a refused key does not get
  better by retrying);
- `_on_failure(error, failures)`: a connect or a setup failed (`failures` in a row);
- `_wait_to_retry(failures)`: the pause before the next connect (jittered exponential backoff);
- `_on_disconnected()`: a session ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from mixmaker.connectors.backoff import Backoff

#: What a connect or a session setup may fail with and still be tried again: the network
#: (`OSError`), a timeout, and picows' `WSError` on a bad handshake (a `RuntimeError`).
RETRYABLE: tuple[type[Exception], ...] = (OSError, asyncio.TimeoutError, RuntimeError)


class FrameListener(WSListener):
    """Passes every text or binary frame's bytes to `on_payload` (inside the callback: picows
    reuses the buffer afterwards) and answers a close."""

    def __init__(self, on_payload: Callable[[bytes], None]) -> None:
        self.on_payload = on_payload

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            self.on_payload(frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.disconnect()


class ReconnectingSocket:
    """`await run()` keeps one WebSocket to `url` open until `close()`; `drop_connection()`
    simulates a network failure (it reconnects)."""

    def __init__(self, url: str, *, backoff: Backoff, ping_idle_s: float | None = None) -> None:
        """`ping_idle_s`: ping after that long without a frame, and drop the connection if the
        pong takes as long (None: picows' defaults)."""
        self.url = url
        self._backoff = backoff
        self._ping_idle_s = ping_idle_s
        self._transport: WSTransport | None = None
        self._closed = False

    async def run(self) -> None:
        failures = 0
        while not self._closed:
            try:
                transport = await self._connect()
            except RETRYABLE as e:
                failures += 1
                await self._on_failure(e, failures)
                await self._wait_to_retry(failures)
                continue
            self._transport = transport
            try:
                await self._on_connected(transport)
                failures = 0
                await transport.wait_disconnected()
            except RETRYABLE as e:
                transport.disconnect()
                failures += 1
                await self._on_failure(e, failures)
            except BaseException:
                transport.disconnect()  # ends run(): leave no socket open behind it
                raise
            finally:
                self._transport = None
                self._on_disconnected()
            if not self._closed:
                await self._wait_to_retry(max(failures, 1))

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.disconnect()

    def drop_connection(self) -> None:
        if self._transport is not None:
            self._transport.disconnect(graceful=False)

    async def _connect(self) -> WSTransport:
        ping: dict[str, Any] = {}
        if self._ping_idle_s is not None:
            ping = {"auto_ping_idle_timeout": self._ping_idle_s, "auto_ping_reply_timeout": self._ping_idle_s}
        transport, _ = await ws_connect(lambda: FrameListener(self._on_frame), self.url, enable_auto_ping=True, **ping)
        return transport

    # ------------------------------------------------------------------ what a stream fills in
    def _on_frame(self, raw: bytes) -> None:
        raise NotImplementedError

    async def _on_connected(self, transport: WSTransport) -> None:
        """Set the session up; frames may already be arriving."""

    async def _on_failure(self, error: Exception, failures: int) -> None:
        """A connect or a session setup failed, the `failures`-th time in a row."""

    async def _wait_to_retry(self, failures: int) -> None:
        await asyncio.sleep(self._backoff.delay(failures))

    def _on_disconnected(self) -> None:
        """A session ended (dropped, closed, or its setup failed)."""
