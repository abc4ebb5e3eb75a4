"""Fault injection: named switches, each with a rate (and a delay where it applies).

Every switch draws from its own RNG seeded from (seed, name), so turning one switch on or
changing its rate never shifts when another one fires: a run is reproducible under a seed.
`hits` counts how often each fault fired, so a test can see that it did.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from mixmaker.errors import MixmakerError

FAULTS: dict[str, str] = {
    "ws_drop": "close a market-stream WebSocket connection (drawn per message pushed)",
    "diff_skip": "leave a depth diff out (the U/u chain breaks)",
    "diff_duplicate": "send a depth diff twice",
    "diff_reorder": "hold a depth diff back and send it after the next one",
    "ack_delay": "act on an order request, answer after `delay` seconds",
    "ack_loss": "act on an order request, then close the connection without answering",
    "act_then_timeout": "act on an order request, then hold the answer `delay` seconds (past the client's timeout)",
    "ack_5xx": "act on an order request, then answer 503 -1007 (execution status unknown)",
    "reject_order": "refuse a new order with -2010",
    "event_loss": "leave a user-data event (executionReport, balance) out",
    "event_delay": "push a user-data event `delay` seconds late (later events may overtake it)",
    "rate_limit": "answer 429 whatever the weight (and 418 if the client ignores it)",
    "slow_snapshot": "hold a depth snapshot `delay` seconds (taken when asked, so it arrives stale)",
}
DEFAULT_DELAY = {"ack_delay": 1.0, "act_then_timeout": 30.0, "slow_snapshot": 1.0, "event_delay": 1.0}


class UnknownFaultError(MixmakerError, ValueError):
    pass


@dataclass
class FaultSpec:
    rate: float = 0.0
    delay: float = 0.0


class Faults:
    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.specs = {name: FaultSpec(0.0, DEFAULT_DELAY.get(name, 0.0)) for name in FAULTS}
        self._rngs = {name: random.Random(f"{seed}/{name}") for name in FAULTS}
        self.hits: Counter[str] = Counter()

    def set(self, name: str, rate: float, delay: float | None = None) -> None:
        if name not in FAULTS:
            raise UnknownFaultError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault {name}: rate must be between 0 and 1, got {rate}")
        self.specs[name].rate = rate
        if delay is not None:
            self.specs[name].delay = delay

    def clear(self) -> None:
        for spec in self.specs.values():
            spec.rate = 0.0

    def hit(self, name: str) -> bool:
        """Does fault `name` fire now? Draws only while the switch is on."""
        rate = self.specs[name].rate
        if rate <= 0.0 or self._rngs[name].random() >= rate:
            return False
        self.hits[name] += 1
        return True

    def delay(self, name: str) -> float:
        return self.specs[name].delay

    def configure(self, text: str) -> None:
        """`name=rate[@delay],...`, e.g. `diff_skip=0.05,ack_delay=0.2@1.5`."""
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, value = item.partition("=")
            rate_text, _, delay_text = value.partition("@")
            try:
                rate = float(rate_text) if sep else 1.0
                delay = float(delay_text) if delay_text else None
            except ValueError:
                raise ValueError(f"bad fault setting {item!r}: want name=rate[@delay]") from None
            self.set(name.strip(), rate, delay)
