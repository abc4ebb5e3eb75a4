"""Runs `sim_kill_worker.py` as a real child process against a simulator this process serves, and
reads back what the venue and a tracker's journal hold."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from mixmaker.sim.exchange.server import ExchangeSim

HERE = Path(__file__).resolve().parent


class Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def placed(self, timeout: float = 60) -> list[str]:
        """The client ids the worker placed (it prints them once every create has returned)."""
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise AssertionError(f"the worker ended before placing its orders: {await self.stderr()}")
        return json.loads(line)

    async def died(self, timeout: float = 60) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no cleanup of any kind
        await self.proc.wait()

    async def stderr(self) -> str:
        return (await self.proc.stderr.read()).decode()[-3000:]


async def spawn(db: Path, config: dict[str, Any], orders: list[dict[str, str]], step: str = "never", nth: int = 1) -> Worker:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "sim_kill_worker.py"), str(db), json.dumps(config), json.dumps(orders), step, str(nth),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    return Worker(proc)


def venue_orders(sim: ExchangeSim, account: str) -> dict[str, Any]:
    """The simulator's orders of `account`, by client id."""
    return {o.client_order_id: o for o in sim.venue.engine.orders.values() if o.account == account}


def market_sells(sim: ExchangeSim, symbol: str, price: str, lot: str, count: int) -> None:
    """`count` prints by other participants, each selling `lot` into the best bids at or above
    `price`: one fill of our resting bids each (time priority), with no await in between."""
    p, q = Decimal(price), Decimal(lot)
    for _ in range(count):
        sim.venue.market_trade(symbol, p, q, buyer_is_maker=True)
