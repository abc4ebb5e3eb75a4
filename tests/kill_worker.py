"""Run as a child process by test_order_kill.py: trades through a tracker against a fake venue
whose state is saved to disk after every call, and dies with os._exit (no cleanup, no flush,
no finally blocks) at the step named on the command line."""

from __future__ import annotations

import asyncio
import os
import pickle
import sys

from fake_venue import FakeVenue
from mixmaker.orders import ClientOrderTracker
from mixmaker.store import SqliteStore


STATE = ("orders", "trades", "stream", "faults", "calls", "_next_id", "_next_trade")


class SavedVenue(FakeVenue):
    """Pickles itself after every call, as a real exchange keeps its state when we die."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path

    def save(self) -> None:
        with open(self._path + ".tmp", "wb") as f:
            pickle.dump({k: self.__dict__[k] for k in STATE}, f)
        os.replace(self._path + ".tmp", self._path)


def _saving(venue: SavedVenue, name: str):
    inner = getattr(venue, name)

    async def call(*a, **kw):
        try:
            return await inner(*a, **kw)
        finally:
            venue.save()

    return call


async def main(db: str, venue_path: str, step: str, nth: int) -> None:
    venue = SavedVenue(venue_path)
    for name in ("create_order", "cancel_order", "fetch_order", "fetch_open_orders", "fetch_my_trades"):
        setattr(venue, name, _saving(venue, name))
    seen: dict[str, int] = {}

    def die(s: str, _cid: str) -> None:
        seen[s] = seen.get(s, 0) + 1
        if s == step and seen[s] == nth:
            os._exit(137)

    t = ClientOrderTracker(venue, SqliteStore(db), crash_hook=die, fill_sink=lambda f: None)
    await t.start()
    a = await t.create("BTCUSDT", "buy", 100, 10)
    trade = venue.fill(a, 3)
    venue.save()  # the trade happened at the venue before we heard of it
    t.on_trade(trade)
    b = await t.create("BTCUSDT", "sell", 120, 5)
    await t.cancel(a)
    await t.cancel(b)
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
