"""The Avellaneda-Stoikov estimators (reference A6.2). Model quantities, so floats: prices are
in quote currency (raw / 10^price_decimals), as Hummingbot's Decimal prices are; the intensity
estimator counts its inputs exactly and turns them into floats only to fit."""

from __future__ import annotations

import math
import sys
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
        return math.sqrt(sum((b - a) ** 2 for a, b in zip(s, s[1:], strict=False)) / len(s))


class TradingIntensity:
    """lambda(delta) = alpha * exp(-kappa * delta): how much trades at distance delta from the mid.

    Each tick's public trades are measured against the mid of the previous tick (the latest
    sample before them) and summed per distance; the last `buffer_size` ticks are kept. Distances
    and amounts are exact integers (a distance in half price units, |2 price - (bid + ask)|; an
    amount in size units), so one distance is one point: measured in floats, 0.05 and
    0.0500000000029 were two, and the fit through such a pair was near vertical (a kappa of 1e11,
    an alpha past the float range: the OverflowError of 0.25 s ticks). Floats enter only the fit.

    The fit is least squares on ln(amount) = ln(alpha) - kappa * delta, delta in quote currency
    and amounts in base (Hummingbot fits the exponential itself with scipy's curve_fit; the
    log-linear fit needs no scipy and agrees on exact exponentials). ln(alpha) is kept
    (`log_alpha`): alpha itself may pass the float range when the fit is steep and the distances
    far, and the model needs only kappa. A failed fit (fewer than two distances, kappa <= 0)
    keeps the last values."""

    def __init__(self, buffer_size: int, price_decimals: int = 0, size_decimals: int = 0) -> None:
        self.buckets: deque[dict[int, int]] = deque(maxlen=buffer_size)
        self.log_alpha: float | None = None
        self.kappa = 0.0
        self._last_mid2: int | None = None
        self._distance_unit = 1.0 / (2 * 10**price_decimals)  # a half price unit, in quote currency
        self._ln_size_unit = -size_decimals * math.log(10)  # ln of one size unit, in base

    @property
    def alpha(self) -> float:
        """exp(log_alpha), 0.0 before the first fit, inf past the float range."""
        if self.log_alpha is None:
            return 0.0
        return math.exp(self.log_alpha) if self.log_alpha < _LN_FLOAT_MAX else math.inf

    def add(self, mid2: int, trades: list[tuple[int, int]]) -> None:
        """`trades`: (price, size) in raw units printed since the previous tick; `mid2`: this
        tick's bid + ask (twice the mid, in price units)."""
        last = self._last_mid2
        if last is not None:
            bucket: dict[int, int] = {}
            for price, amount in trades:
                level = abs(2 * price - last)
                bucket[level] = bucket.get(level, 0) + amount
            self.buckets.append(bucket)
        self._last_mid2 = mid2

    @property
    def ready(self) -> bool:
        return len(self.buckets) == self.buckets.maxlen

    def fit(self) -> tuple[float, float]:
        """(alpha, kappa), refitted over the buckets kept."""
        totals: dict[int, int] = {}
        for b in self.buckets:
            for level, amount in b.items():
                totals[level] = totals.get(level, 0) + amount
        unit, ln_unit = self._distance_unit, self._ln_size_unit
        pts = [(level * unit, math.log(a) + ln_unit) for level, a in totals.items() if a > 0]
        if len(pts) >= 2:
            n = len(pts)
            mx = sum(d for d, _ in pts) / n
            my = sum(y for _, y in pts) / n
            sxx = sum((d - mx) ** 2 for d, _ in pts)
            if sxx > 0:  # distinct distances are at least half a price unit apart: sxx is not noise
                slope = sum((d - mx) * (y - my) for d, y in pts) / sxx
                if slope < 0:
                    self.kappa = -slope
                    self.log_alpha = my - slope * mx
        return self.alpha, self.kappa


_LN_FLOAT_MAX = math.log(sys.float_info.max)
