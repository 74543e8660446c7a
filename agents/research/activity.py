"""The market's activity level and the business-time clock it drives.

A log-OU process ``x`` on a fixed grid (exact transitions, its own seeded generator), with level
``exp(x - sd^2 / 2)`` so that its mean is one. Agents wake at their configured rate times the level,
and the fundamental value runs on *business time* — calendar time weighted by the level — so news
arrives faster when the market is busy. Volatility and volume then share one slowly varying
intensity: returns are a variance mixture of normals (heavy tails that thin out as returns are
aggregated), their size is persistent (volatility clustering) and it moves with volume. This is
Clark's (1973) mixture-of-distributions hypothesis, and the one environmental ingredient the
simulator adds to the strategies; with ``sd = 0`` the level is 1 and business time is calendar
time.
"""

from __future__ import annotations

import math
import random

__all__ = ["ActivityClock"]

NS_PER_S = 1_000_000_000


class ActivityClock:
    __slots__ = ("_a", "_b", "_level", "_rng", "_sd", "_step", "_t", "_tau", "_x")

    def __init__(
        self, *, sd: float, half_life_s: float, step_s: float, start_ns: int, seed: int
    ) -> None:
        self._sd = sd
        self._step = max(1, round(step_s * NS_PER_S))
        a = math.exp(-math.log(2.0) / half_life_s * step_s)
        self._a = a
        self._b = sd * math.sqrt(max(0.0, 1.0 - a * a))
        self._rng = random.Random(seed)
        # Start from the stationary distribution, so the day opens at a random activity level.
        self._x = self._rng.gauss(0.0, sd) if sd > 0 else 0.0
        self._level = math.exp(self._x - 0.5 * sd * sd)
        self._t = start_ns
        self._tau = float(start_ns)

    def _advance(self, time_ns: int) -> None:
        step = self._step
        gauss = self._rng.gauss
        a, b, half_var = self._a, self._b, 0.5 * self._sd * self._sd
        x, t, tau, level = self._x, self._t, self._tau, self._level
        while time_ns - t >= step:
            tau += level * step
            t += step
            x = x * a + b * gauss(0.0, 1.0)
            level = math.exp(x - half_var)
        self._x, self._t, self._tau, self._level = x, t, tau, level

    def level(self, time_ns: int) -> float:
        """The activity level (mean one) at ``time_ns``; time only moves forward."""
        if time_ns - self._t >= self._step:
            self._advance(time_ns)
        return self._level

    def business_time(self, time_ns: int) -> int:
        """Nanoseconds of business time elapsed by ``time_ns`` (starting from the session start)."""
        if time_ns - self._t >= self._step:
            self._advance(time_ns)
        return int(self._tau + self._level * (time_ns - self._t))
