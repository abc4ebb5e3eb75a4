"""What every WebSocket of a connector shares: a picows listener that hands each frame's bytes
to its owner, and close/drop of the socket."""

from __future__ import annotations

from typing import Callable

from picows import WSFrame, WSListener, WSMsgType, WSTransport


class FrameListener(WSListener):  # type: ignore[misc]
    """Passes every text or binary frame's bytes to `on_payload` (inside the callback: picows
    reuses the buffer afterwards) and answers a close."""

    def __init__(self, on_payload: Callable[[bytes], None]) -> None:
        self.on_payload = on_payload

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            self.on_payload(frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.disconnect()


class SocketOwner:
    """`close()` for good, or `drop_connection()` to simulate a network failure (it reconnects)."""

    _transport: WSTransport | None = None
    _closed: bool = False

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.disconnect()

    def drop_connection(self) -> None:
        if self._transport is not None:
            self._transport.disconnect(graceful=False)
