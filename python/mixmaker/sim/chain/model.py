"""What the simulated chain knows: its switches, the moves it carries and the faults it injects."""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mixmaker.errors import MixmakerError


class ChainError(MixmakerError):
    """A bad switch or request to the simulated chain."""


class Place(enum.Enum):
    """Where money is: one of the two simulated venues, or an address neither of them owns."""

    MIXIN = "mixin"
    EXCHANGE = "exchange"
    OUTSIDE = "outside"


class MoveState(enum.Enum):
    REQUESTED = "requested"  # withdrawn on the source venue, not on chain yet
    BROADCAST = "broadcast"  # on chain with a hash, gathering confirmations
    ARRIVED = "arrived"  # credited by the destination venue
    FAILED = "failed"  # never reached the chain: the source venue returned the money
    LEFT = "left"  # on chain to an address neither venue owns: gone from the simulated world

    @property
    def done(self) -> bool:
        return self in (MoveState.ARRIVED, MoveState.FAILED, MoveState.LEFT)


class Fault(enum.Enum):
    STUCK = "stuck"  # on chain, but no confirmations until released (or `stuck_for_s` has passed)
    FAIL = "fail"  # the withdrawal fails before the chain: the source venue gives the money back
    DUPLICATE = "duplicate"  # the deposit is notified twice (credited once; listings show it twice)


@dataclass(frozen=True)
class Withdrawal:
    """A withdrawal a venue holds for the chain to carry."""

    source: Place
    ref: str  # the source venue's id: a Mixin request id, an exchange withdrawal id
    network: str
    symbol: str
    amount: Decimal  # what goes on chain (the venue's fee already taken)
    address: str
    tag: str = ""

    @property
    def move_id(self) -> str:
        return f"{self.source.value}:{self.ref}"


@dataclass
class ChainConfig:
    seed: int = 0
    send_delay_s: float = 1.0  # from a venue's withdrawal to the transaction on chain (its hash)
    block_time_s: float = 1.0  # between two confirmations
    confirmations: int = 2  # a deposit is credited at this many
    jitter: float = 0.0  # each delay grows by up to this fraction of itself (seeded)
    stuck_for_s: float | None = None  # how long a stuck move stays stuck; None: until released
    rates: dict[Fault, float] = field(default_factory=dict)  # chance per move of each fault
    exchange_fail_status: str = "FAILURE"  # or "REJECTED": how a failed exchange withdrawal ends
    poll_interval_s: float = 0.1

    def __post_init__(self) -> None:
        problems = []
        for name in ("send_delay_s", "block_time_s", "jitter", "poll_interval_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                problems.append(f"{name} must be a finite number >= 0, got {value!r}")
        if self.confirmations < 1:
            problems.append(f"confirmations must be >= 1, got {self.confirmations}")
        if self.stuck_for_s is not None and not self.stuck_for_s >= 0:
            problems.append(f"stuck_for_s must be >= 0 or None, got {self.stuck_for_s!r}")
        for fault, rate in self.rates.items():
            if not isinstance(fault, Fault) or not 0 <= rate <= 1:
                problems.append(f"rate of {fault!r} must be within 0..1, got {rate!r}")
        if self.exchange_fail_status not in ("FAILURE", "REJECTED"):
            problems.append(f"exchange_fail_status is FAILURE or REJECTED, not {self.exchange_fail_status!r}")
        if problems:
            raise ChainError("; ".join(problems))


@dataclass
class Move:
    move_id: str
    source: Place
    ref: str
    network: str
    symbol: str
    amount: Decimal
    address: str
    tag: str
    seen_at: float
    send_at: float  # when it goes on chain (or fails)
    faults: frozenset[Fault] = frozenset()
    state: MoveState = MoveState.REQUESTED
    destination: Place | None = None
    tx_hash: str = ""
    confirmations: int = 0
    next_block_at: float = 0.0
    stuck_until: float | None = None  # a stuck move's end; None while stuck until released
    updated_at: float = 0.0
    error: str = ""  # the last side call that failed (retried on the next step)

    @property
    def stuck(self) -> bool:
        return Fault.STUCK in self.faults

    def to_json(self) -> dict[str, Any]:
        return {
            "move_id": self.move_id, "source": self.source.value, "ref": self.ref, "network": self.network,
            "symbol": self.symbol, "amount": str(self.amount), "address": self.address, "tag": self.tag,
            "seen_at": self.seen_at, "send_at": self.send_at, "faults": sorted(f.value for f in self.faults),
            "state": self.state.value, "destination": self.destination.value if self.destination else None,
            "tx_hash": self.tx_hash, "confirmations": self.confirmations, "next_block_at": self.next_block_at,
            "stuck_until": self.stuck_until, "updated_at": self.updated_at, "error": self.error,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Move:
        return cls(
            d["move_id"], Place(d["source"]), d["ref"], d["network"], d["symbol"], Decimal(d["amount"]), d["address"],
            d["tag"], d["seen_at"], d["send_at"], frozenset(Fault(f) for f in d["faults"]), MoveState(d["state"]),
            Place(d["destination"]) if d["destination"] else None, d["tx_hash"], d["confirmations"], d["next_block_at"],
            d["stuck_until"], d["updated_at"], d["error"],
        )


class FaultPlan:
    """Which faults strike a move, decided once when the chain first sees it. Every kind draws
    from its own generator for every move (scripted or not), so a seed gives the same fates to
    the same sequence of moves whatever the rates of the other kinds."""

    def __init__(self, seed: int, rates: dict[Fault, float] | None = None) -> None:
        self.rates: dict[Fault, float] = {f: 0.0 for f in Fault}
        self.rates.update(rates or {})
        self.rngs = {f: random.Random(f"{seed}:{f.value}") for f in Fault}
        self.jitter_rng = random.Random(f"{seed}:jitter")
        self.scripted: list[list[Any]] = []  # [fault, source or None, times left]
        self.hits: dict[Fault, int] = {f: 0 for f in Fault}

    def set(self, fault: Fault, rate: float) -> None:
        if not 0 <= rate <= 1:
            raise ChainError(f"rate of {fault.value} must be within 0..1, got {rate!r}")
        self.rates[fault] = rate

    def add(self, fault: Fault, *, times: int = 1, source: Place | None = None) -> None:
        """The next `times` moves (from `source`, or any) get `fault`."""
        if times < 1:
            raise ChainError(f"times must be >= 1, got {times}")
        self.scripted.append([fault, source, times])

    def draw(self, source: Place) -> frozenset[Fault]:
        struck = set()
        for fault in Fault:
            if self.rngs[fault].random() < self.rates[fault]:
                struck.add(fault)
        for entry in self.scripted:
            fault, only, left = entry
            if left > 0 and (only is None or only == source) and fault not in struck:
                struck.add(fault)
                entry[2] -= 1
        self.scripted = [e for e in self.scripted if e[2] > 0]
        for fault in struck:
            self.hits[fault] += 1
        return frozenset(struck)

    def jitter(self, delay: float, fraction: float) -> float:
        return delay * (1 + fraction * self.jitter_rng.random())

    def dump(self) -> dict[str, Any]:
        return {
            "rngs": {f.value: _rng_json(r.getstate()) for f, r in self.rngs.items()},
            "jitter": _rng_json(self.jitter_rng.getstate()),
            "scripted": [[f.value, s.value if s else None, n] for f, s, n in self.scripted],
            "hits": {f.value: n for f, n in self.hits.items()},
        }

    def load(self, d: dict[str, Any]) -> None:
        for f in Fault:
            self.rngs[f].setstate(_rng_tuple(d["rngs"][f.value]))
        self.jitter_rng.setstate(_rng_tuple(d["jitter"]))
        self.scripted = [[Fault(f), Place(s) if s else None, n] for f, s, n in d["scripted"]]
        self.hits = {Fault(f): n for f, n in d["hits"].items()}


def _rng_json(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_tuple(state: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
