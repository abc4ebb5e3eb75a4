"""Fault injection, deterministic under a seed: scripted faults fire on the next matching
requests; random faults fire with a probability drawn from the seeded generator. Standing
departures of the snapshots endpoint from Mixin's documented paging are `SnapshotQuirks`."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

KINDS = ("500", "429", "api_error", "slow", "repeat_boundary", "drop_after_apply", "wrong_request_id")


@dataclass
class Fault:
    kind: str
    path: str  # prefix of the request path this fault applies to ("" = any)
    method: str = ""  # "" = any
    delay_s: float = 0.0  # for "slow" and "drop_after_apply" (the client should time out)
    code: int = 0  # for "api_error": the Mixin error code to answer


@dataclass
class SnapshotQuirks:
    """How `GET /safe/snapshots` departs from the documented paging (all off: as Mixin documents it,
    ascending from an inclusive `offset`). Each is a server a reader must not trust blindly."""

    ignore_offset: bool = False  # `offset` is dropped: every page starts at the oldest (ASC) or newest (DESC)
    ignore_order: bool = False  # rows come newest first whatever `order` asks (the `offset` filter stays as asked)
    exclusive_offset: bool = False  # `offset` is exclusive: the rows at exactly that instant are left out

    def any(self) -> bool:
        return self.ignore_offset or self.ignore_order or self.exclusive_offset


class FaultPlan:
    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self._scripted: list[tuple[Fault, list[int]]] = []
        self._random: list[tuple[Fault, float]] = []
        self._lock = threading.Lock()
        self.fired: list[tuple[str, str]] = []  # (kind, path), for tests to assert on
        self.snapshots = SnapshotQuirks()

    def add(self, kind: str, path: str = "", *, times: int = 1, method: str = "", delay_s: float = 0.0,
            code: int = 0) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {KINDS}")
        with self._lock:
            self._scripted.append((Fault(kind, path, method.upper(), delay_s, code), [times]))

    def add_random(self, kind: str, probability: float, path: str = "", *, method: str = "", delay_s: float = 0.0) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {KINDS}")
        with self._lock:
            self._random.append((Fault(kind, path, method.upper(), delay_s), probability))

    def clear(self) -> None:
        with self._lock:
            self._scripted.clear()
            self._random.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault, left in self._scripted:
                if left[0] > 0 and path.startswith(fault.path) and fault.method in ("", method):
                    left[0] -= 1
                    self.fired.append((fault.kind, path))
                    return fault
            for fault, p in self._random:
                if path.startswith(fault.path) and fault.method in ("", method) and self.rng.random() < p:
                    self.fired.append((fault.kind, path))
                    return fault
        return None
