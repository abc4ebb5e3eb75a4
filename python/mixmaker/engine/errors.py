"""Errors of the engine (the runtime that wires the layers)."""

from __future__ import annotations

from mixmaker.errors import MixmakerError


class EngineError(MixmakerError):
    """The root of the engine's errors."""


class ConfigInvalidError(EngineError, ValueError):
    """A config file that cannot run: `problems` lists every one, each naming its key."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n  ".join(self.problems)
        super().__init__(f"{source} is invalid ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"
                         f"\n  {lines}")


class SimsNotFoundError(EngineError):
    """`--paper` without running simulators: no sims.json, or nothing listening where it says."""
