"""The simulated chain between the Mixin simulator and the exchange simulator.

Each step it collects the withdrawals both venues hold for it, and carries each one as a move:

    requested --(send delay)--> broadcast (hash on the source venue; a pending deposit on the
    destination) --(a confirmation per block)--> arrived (credited at N confirmations)

A move whose fate is FAIL never gets a hash: the source venue returns the money (Mixin: a
refund snapshot; exchange: status 5 or 3, amount and fee back). A STUCK move stops gathering
confirmations until `release()` (or `stuck_for_s`). A DUPLICATE move's deposit is notified
twice, and the destination's listings show it twice; it is credited once. A transfer to an
address neither venue owns leaves the simulated world (state LEFT).

Every call into a venue is idempotent and the move's record changes only after the call
succeeded, so a step can be repeated after a crash or a failed call: nothing is paid twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from mixmaker.sim import networks
from mixmaker.sim.chain.model import ChainConfig, ChainError, Fault, FaultPlan, Move, MoveState, Place, Withdrawal
from mixmaker.sim.chain.sides import ChainSide, LocalExchange, LocalMixin, SideUnavailableError
from mixmaker.sim.exchange.operations import Venue
from mixmaker.sim.mixin.state import SimState

log = logging.getLogger("mixmaker.sim.chain")
FORMAT = 1


class Chain:
    def __init__(self, mixin: ChainSide, exchange: ChainSide, config: ChainConfig | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config or ChainConfig()
        self.sides: dict[Place, ChainSide] = {Place.MIXIN: mixin, Place.EXCHANGE: exchange}
        self.faults = FaultPlan(self.config.seed, self.config.rates)
        self.moves: dict[str, Move] = {}
        self.clock = clock
        self.version = 0  # grows with every change of a move: what a persister saves
        self.errors = 0  # venue calls that failed (each retried on the next step)
        self.attached = False  # both venues hold their withdrawals for the chain

    @classmethod
    def in_process(cls, mixin: SimState, exchange: Venue, config: ChainConfig | None = None, **kw: Any) -> Chain:
        """A chain between simulator objects of this process (call `step`/`run` on their loop).
        Both venues hand their withdrawals to it at once."""
        config = config or ChainConfig()
        mixin.attach_chain()
        exchange.capital.attach_chain()
        chain = cls(LocalMixin(mixin), LocalExchange(exchange, fail_status=config.exchange_fail_status), config, **kw)
        chain.attached = True
        return chain

    # ---- running ---------------------------------------------------------------------------------

    async def attach(self) -> None:
        """Both venues hand their withdrawals to the chain (before the first step)."""
        for side in self.sides.values():
            await side.attach()
        self.attached = True

    async def run(self) -> None:
        """Attaches, then steps every `poll_interval_s` until cancelled; a venue that does not
        answer is asked again on the next step."""
        while True:
            try:
                await self.attach()
                break
            except SideUnavailableError as e:
                self._failed_call(None, e)
                await asyncio.sleep(self.config.poll_interval_s)
        while True:
            await self.step()
            await asyncio.sleep(self.config.poll_interval_s)

    async def step(self) -> None:
        now = self.clock()
        for place in (Place.MIXIN, Place.EXCHANGE):
            try:
                pending = await self.sides[place].withdrawals()
            except SideUnavailableError as e:
                self._failed_call(None, e)
                continue
            for w in pending:
                if w.move_id not in self.moves:
                    self._plan(w, now)
        for move in sorted((m for m in self.moves.values() if not m.state.done), key=lambda m: m.seen_at):
            try:
                if move.state is MoveState.REQUESTED and now >= move.send_at:
                    await self._send(move, now)
                if move.state is MoveState.BROADCAST:
                    await self._confirm(move, now)
                move.error = ""
            except SideUnavailableError as e:
                self._failed_call(move, e)

    def release(self, move_id: str | None = None) -> int:
        """Ends the stuck state of one move (or of every stuck move); returns how many."""
        now = self.clock()
        if move_id is not None and move_id not in self.moves:
            raise ChainError(f"no move {move_id!r}")
        released = 0
        for m in self.moves.values():
            if (move_id in (None, m.move_id) and m.stuck and not m.state.done
                    and (m.stuck_until is None or m.stuck_until > now)):
                m.stuck_until = now
                self._touch(m, now)
                released += 1
        return released

    def in_flight(self) -> list[Move]:
        return [m for m in self.moves.values() if not m.state.done]

    # ---- a move's life ---------------------------------------------------------------------------

    def _plan(self, w: Withdrawal, now: float) -> None:
        cfg = self.config
        faults = self.faults.draw(w.source)
        send_at = now + self.faults.jitter(cfg.send_delay_s, cfg.jitter)
        stuck_until = None if cfg.stuck_for_s is None else send_at + cfg.stuck_for_s
        move = Move(w.move_id, w.source, w.ref, w.network, w.symbol, w.amount, w.address, w.tag, now, send_at, faults,
                    stuck_until=stuck_until, updated_at=now)
        self.moves[move.move_id] = move
        self.version += 1
        log.info("move %s: %s %s %s to %s, faults %s", move.move_id, w.source.value, w.amount, w.symbol, w.address,
                 sorted(f.value for f in faults) or "none")

    async def _send(self, m: Move, now: float) -> None:
        source = self.sides[m.source]
        if Fault.FAIL in m.faults:
            await source.failed(m.ref)
            m.state = MoveState.FAILED
            self._touch(m, now)
            return
        tx_hash = networks.tx_hash(m.network, f"chain:{m.move_id}")
        destination = await self._destination(m)
        await source.sent(m.ref, tx_hash)
        m.tx_hash, m.destination = tx_hash, destination
        if destination is Place.OUTSIDE:
            m.state = MoveState.LEFT
        else:
            m.state = MoveState.BROADCAST
            m.next_block_at = m.send_at + self.faults.jitter(self.config.block_time_s, self.config.jitter)
        self._touch(m, now)
        if m.state is MoveState.BROADCAST:
            # Seen on chain: the destination shows it pending with no confirmation yet.
            await self.sides[destination].deposit(m, 0, self.config.confirmations, False)

    async def _confirm(self, m: Move, now: float) -> None:
        cfg = self.config
        if m.stuck:
            if m.stuck_until is None or now < m.stuck_until:
                return
            if m.next_block_at < m.stuck_until:  # blocks resume once the move is unstuck
                m.next_block_at = m.stuck_until + self.faults.jitter(cfg.block_time_s, cfg.jitter)
                self._touch(m, now)
        k, t = m.confirmations, m.next_block_at
        while k < cfg.confirmations and now >= t:
            k += 1
            t += self.faults.jitter(cfg.block_time_s, cfg.jitter)
        if k == m.confirmations and k < cfg.confirmations:
            return
        assert m.destination is not None
        side = self.sides[m.destination]
        duplicate = Fault.DUPLICATE in m.faults and k >= cfg.confirmations
        credited = await side.deposit(m, k, cfg.confirmations, duplicate)
        if duplicate:
            credited = await side.deposit(m, k, cfg.confirmations, True) or credited  # the same notification again
        m.confirmations, m.next_block_at = k, t
        if credited:
            m.state = MoveState.ARRIVED
        self._touch(m, now)

    async def _destination(self, m: Move) -> Place:
        other = Place.EXCHANGE if m.source is Place.MIXIN else Place.MIXIN
        for place in (other, m.source):
            if await self.sides[place].owns(m.network, m.symbol, m.address, m.tag):
                return place
        return Place.OUTSIDE

    def _touch(self, m: Move, now: float) -> None:
        m.updated_at = now
        self.version += 1
        log.info("move %s: %s (%d/%d confirmations)", m.move_id, m.state.value, m.confirmations, self.config.confirmations)

    def _failed_call(self, m: Move | None, e: SideUnavailableError) -> None:
        self.errors += 1
        if m is not None:
            m.error = str(e)
        log.warning("chain: %s (retried on the next step)", e)

    # ---- durable state ---------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {"format": FORMAT, "moves": [m.to_json() for m in self.moves.values()], "faults": self.faults.dump()}

    def load(self, doc: dict[str, Any]) -> None:
        if doc.get("format") != FORMAT:
            raise ChainError(f"chain state format {doc.get('format')!r}, expected {FORMAT}")
        self.moves = {m.move_id: m for m in map(Move.from_json, doc["moves"])}
        self.faults.load(doc["faults"])
        self.version += 1
