"""What is ready and what is not, and why: the engine's parts report here, `/health` shows it.

A part is named for what it is (`database`, `mixin`, `exchange:binance`, `book:binance:BTC/USDT`,
`funds` (halts, stuck moves, a move waiting for the fee float), `intake`, `orders`, `payouts`,
`reconciliation`); the engine is ready when every part is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Part:
    ready: bool
    why: str
    since_ns: int


class Health:
    def __init__(self) -> None:
        self.parts: dict[str, Part] = {}
        self.phase = "starting"  # starting | running | stopping | stopped

    def set(self, name: str, ready: bool, why: str = "") -> None:
        old = self.parts.get(name)
        if old is None or old.ready != ready or old.why != why:
            self.parts[name] = Part(ready, why if not ready else (why or "ok"),
                                    time.time_ns() if old is None or old.ready != ready else old.since_ns)

    def drop(self, name: str) -> None:
        self.parts.pop(name, None)

    @property
    def ready(self) -> bool:
        return self.phase == "running" and bool(self.parts) and all(p.ready for p in self.parts.values())

    def not_ready(self) -> dict[str, str]:
        out = {name: p.why for name, p in sorted(self.parts.items()) if not p.ready}
        if self.phase != "running":
            out = {"engine": self.phase, **out}
        return out

    def report(self) -> dict[str, Any]:
        return {"ready": self.ready, "phase": self.phase, "not_ready": self.not_ready(),
                "parts": {name: {"ready": p.ready, "why": p.why, "since_ns": p.since_ns}
                          for name, p in sorted(self.parts.items())}}
