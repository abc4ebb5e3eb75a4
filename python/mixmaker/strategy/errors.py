"""Typed errors of the strategy layer."""

from __future__ import annotations

from mixmaker.errors import MixmakerError


class StrategyError(MixmakerError):
    """Base of the strategy layer's errors."""


class ConfigError(StrategyError, ValueError):
    """A configuration that cannot run; the message names each bad field."""


class ExecutorStateError(StrategyError, RuntimeError):
    """An executor asked to do something its state does not allow (e.g. start twice)."""


class ModelRangeError(StrategyError, ArithmeticError):
    """A model's output is out of range (not finite, or no price a market can hold); the message
    names the inputs that led there."""
