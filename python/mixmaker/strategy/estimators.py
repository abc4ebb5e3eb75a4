"""The Avellaneda-Stoikov estimators (reference A6.2). Model quantities, so floats: prices are
in quote currency (raw / 10^price_decimals), as Hummingbot's Decimal prices are."""

from __future__ import annotations

import math
from collections import deque


class InstantVolatility:
    """sigma = sqrt(sum(diff(mid)^2) / N) over the last N mid samples (one per tick); N, not
    N - 1, and absolute price units per tick, as Hummingbot."""

    def __init__(self, buffer_size: int) -> None:
        self.samples: deque[float] = deque(maxlen=buffer_size)

    def add(self, mid: float) -> None:
        self.samples.append(mid)

    @property
    def ready(self) -> bool:
        return len(self.samples) == self.samples.maxlen

    @property
    def value(self) -> float:
        s = list(self.samples)
        if len(s) < 2:
            return 0.0
        return math.sqrt(sum((b - a) ** 2 for a, b in zip(s, s[1:])) / len(s))


class TradingIntensity:
    """lambda(delta) = alpha * exp(-kappa * delta): how much trades at distance delta from the mid.

    Each tick's public trades are measured against the mid of the previous tick (the latest
    sample before them) and summed per distance; the last `buffer_size` ticks are kept. The fit
    is least squares on ln(amount) = ln(alpha) - kappa * delta (Hummingbot fits the exponential
    itself with scipy's curve_fit; the log-linear fit needs no scipy and agrees on exact
    exponentials). A failed fit (fewer than two distances, kappa <= 0) keeps the last values."""

    def __init__(self, buffer_size: int) -> None:
        self.buckets: deque[dict[float, float]] = deque(maxlen=buffer_size)
        self.alpha = 0.0
        self.kappa = 0.0
        self._last_mid: float | None = None

    def add(self, mid: float, trades: list[tuple[float, float]]) -> None:
        """`trades`: (price, amount) printed since the previous tick; `mid`: this tick's mid."""
        if self._last_mid is not None:
            bucket: dict[float, float] = {}
            for price, amount in trades:
                level = abs(price - self._last_mid)
                bucket[level] = bucket.get(level, 0.0) + amount
            self.buckets.append(bucket)
        self._last_mid = mid

    @property
    def ready(self) -> bool:
        return len(self.buckets) == self.buckets.maxlen

    def fit(self) -> tuple[float, float]:
        totals: dict[float, float] = {}
        for b in self.buckets:
            for level, amount in b.items():
                totals[level] = totals.get(level, 0.0) + amount
        pts = [(d, math.log(a)) for d, a in totals.items() if a > 0]
        if len(pts) >= 2:
            n = len(pts)
            mx = sum(d for d, _ in pts) / n
            my = sum(y for _, y in pts) / n
            sxx = sum((d - mx) ** 2 for d, _ in pts)
            if sxx > 0:
                slope = sum((d - mx) * (y - my) for d, y in pts) / sxx
                if slope < 0:
                    self.kappa = -slope
                    self.alpha = math.exp(my - slope * mx)
        return self.alpha, self.kappa
