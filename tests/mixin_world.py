"""Shared set-up for the Mixin tests: a seeded simulator on 127.0.0.1 with one bot."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, TypeVar

from mixmaker.mixin import Keystore, MixinClient
from mixmaker.sim.mixin import MixinSimServer, SimState, new_bot, seeded_world

T = TypeVar("T")


@dataclass
class World:
    state: SimState
    server: MixinSimServer
    bot: dict[str, str]
    keystore: Keystore

    def client(self, **kw: Any) -> MixinClient:
        kw.setdefault("backoff_s", 0.01)
        kw.setdefault("rate_limit_backoff_s", 0.02)
        kw.setdefault("timeout_s", 5)
        return MixinClient(self.keystore, self.server.url, **kw)


def make_world(seed: int = 1, **state_kw: Any) -> World:
    state = seeded_world(seed, **state_kw)
    bot = new_bot(state)
    server = MixinSimServer(state, seed=seed).start()
    return World(state, server, bot, Keystore.from_dict(bot))


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]
