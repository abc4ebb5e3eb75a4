"""Connectors: one async interface over every venue, and the rate limiter every request waits in."""

from mixmaker.connectors.limiter import (
    CostError,
    LimiterClosedError,
    LimiterCore,
    LimiterStats,
    Pool,
    Priority,
    RateLimiter,
    RateLimitError,
)

__all__ = [
    "CostError",
    "LimiterClosedError",
    "LimiterCore",
    "LimiterStats",
    "Pool",
    "Priority",
    "RateLimitError",
    "RateLimiter",
]
