"""The fallback book stream for venues without a native one: ccxt.pro's `watch_order_book`
feeding a `BookSync` (rule `sequential`).

ccxt.pro keeps its own book from the venue's stream and checks it (sequence numbers or
checksums, per venue). Each time it resolves, its top `depth` levels go to our `BookSync` as a
snapshot message at ccxt's `nonce`. When ccxt finds a gap it raises `ChecksumError` and resyncs
on the next call; we reset the `BookSync` at once, so readers get "not ready" until ccxt has a
good book again. A network error does the same, with a backoff before watching again.

This path builds Python objects per level (ccxt's book is Python); it is the fallback, the
native streams (`binance_depth`) are the fast path. Stop it by cancelling the task that runs it
(`close()` only takes effect between updates).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import ccxt.async_support as ccxt

from mixmaker.book import BookSync, SyncRule
from mixmaker.connectors.backoff import Backoff

log = logging.getLogger(__name__)


@dataclass
class CcxtStreamStats:
    updates: int = 0
    checksum_errors: int = 0
    network_errors: int = 0
    last_error: str | None = None


class CcxtProBook:
    """Keeps `sync` (rule `sequential`) equal to ccxt.pro's view of `symbol`. `await run()`."""

    def __init__(self, exchange: Any, symbol: str, sync: BookSync, *, depth: int = 100,
                 backoff_s: float = 0.2, backoff_max_s: float = 30.0, seed: int | None = None) -> None:
        if sync.rule is not SyncRule.SEQUENTIAL:
            raise ValueError(f"CcxtProBook feeds snapshots by nonce: the BookSync rule must be "
                             f"{SyncRule.SEQUENTIAL.value!r}, not {sync.rule.value!r}")
        self.exchange, self.symbol, self.sync, self.depth = exchange, symbol, sync, depth
        self.stats = CcxtStreamStats()
        self._backoff = Backoff(backoff_s, backoff_max_s, seed)
        self._closed = False

    async def run(self) -> None:
        failures = 0
        while not self._closed:
            try:
                ob = await self.exchange.watch_order_book(self.symbol)
            except ccxt.ChecksumError as e:
                # ccxt saw a gap and will resync on the next call; until then we know nothing.
                self.stats.checksum_errors += 1
                self.stats.last_error = f"ChecksumError: {e}"
                self.sync.reset()
                continue
            except ccxt.NetworkError as e:
                failures += 1
                self.stats.network_errors += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                self.sync.reset()
                await asyncio.sleep(self._backoff.delay(failures))
                continue
            failures = 0
            self.stats.updates += 1
            self.sync.on_message(json.dumps({
                "type": "snapshot", "u": ob["nonce"],
                "b": ob["bids"][: self.depth], "a": ob["asks"][: self.depth],
            }).encode())

    def close(self) -> None:
        self._closed = True
