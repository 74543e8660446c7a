"""The fundamental value of an instrument: a mean-reverting (Ornstein-Uhlenbeck) log-price with
occasional jumps, seeded and deterministic.

The process lives on a fixed time grid (``step_s``): ``value_at(t)`` steps the grid forward to the
last point at or before ``t`` and returns the value there. Every step draws from the process's own
generator in grid order, so the path is a pure function of the parameters, the seed and the start
time — however often, and at whatever times, it is queried. Time only moves forward: asking about
an instant before the current grid point returns the current value.

The model, on ``x = ln(value)``::

    dx = kappa * (ln(mean) - x) dt + sigma dW   +   jumps

with ``kappa = ln 2 / half_life_s`` and ``sigma`` chosen so that ``sd`` is the *stationary*
standard deviation of ``x`` (so ``sd=0.02`` means the value wanders about ±2 % around ``mean``).
Each grid step is the exact OU transition (no discretisation bias). Jumps arrive as a Poisson
process (``jump_rate_per_hour``); each adds a normal log-return with standard deviation
``jump_sd`` — and is then pulled back toward the mean like any other deviation. A :meth:`shock`
(the simulation control) moves the value by a percentage and, by default, the mean with it, so
the market re-prices rather than reverts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from .base import NS_PER_S, ParamError, Params, param

__all__ = ["Fundamental", "FundamentalParams"]


class FundamentalParams(Params):
    mean: float = param(10_000.0, lo=1.0, hi=2.0**53, help="Long-run mean value, in ticks.")
    half_life_s: float = param(
        1800.0, lo=0.001, hi=1e9, help="Mean-reversion half-life, in seconds."
    )
    sd: float = param(
        0.02, lo=0.0, hi=2.0, help="Stationary standard deviation of the log value (0.02 = 2 %)."
    )
    jump_rate_per_hour: float = param(1.0, lo=0.0, hi=3600.0, help="Mean number of jumps an hour.")
    jump_sd: float = param(
        0.01, lo=0.0, hi=2.0, help="Standard deviation of a jump's log-return (0.01 = 1 %)."
    )
    step_s: float = param(1.0, lo=0.001, hi=3600.0, help="Time grid of the process, in seconds.")

    def check(self) -> None:
        if self.step_s > self.half_life_s:
            raise ParamError("step_s", f"must not exceed half_life_s ({self.half_life_s})")


class Fundamental:
    """One instrument's fundamental value path. ``seed`` is an int (or a ``random.Random`` the
    process then owns); ``start_ns`` the time of the first grid point; ``initial`` the value
    there (default: the mean)."""

    __slots__ = (
        "_a",
        "_b",
        "_jump_rate_ns",
        "_log_mean",
        "_next_jump_ns",
        "_rng",
        "_step_ns",
        "_t",
        "_value",
        "_x",
        "jumps",
        "params",
        "steps",
    )

    def __init__(
        self,
        params: FundamentalParams | Mapping[str, Any] | None = None,
        seed: int | random.Random = 0,
        *,
        start_ns: int = 0,
        initial: float | None = None,
    ) -> None:
        p = FundamentalParams.validate(params)
        self.params = p
        self._rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        self._step_ns = max(1, round(p.step_s * NS_PER_S))
        kappa = math.log(2.0) / p.half_life_s
        a = math.exp(-kappa * self._step_ns / NS_PER_S)
        self._a = a
        self._b = p.sd * math.sqrt(max(0.0, 1.0 - a * a))
        self._log_mean = math.log(p.mean)
        if initial is not None and not (initial > 0 and math.isfinite(initial)):
            raise ValueError(f"initial must be a positive finite value, not {initial!r}")
        self._x = math.log(initial) if initial is not None else self._log_mean
        self._value = math.exp(self._x)
        self._t = start_ns
        #: Jumps per nanosecond; the next jump time is drawn ahead, jumps apply on the grid step
        #: that contains them.
        self._jump_rate_ns = p.jump_rate_per_hour / (3600.0 * NS_PER_S)
        self._next_jump_ns = self._draw_next_jump(start_ns)
        #: How many jumps (and grid steps) have happened so far.
        self.jumps = 0
        self.steps = 0

    def _draw_next_jump(self, after_ns: int) -> float:
        if self._jump_rate_ns <= 0.0:
            return math.inf
        return after_ns + self._rng.expovariate(self._jump_rate_ns)

    @property
    def time_ns(self) -> int:
        """The time of the current grid point."""
        return self._t

    @property
    def value(self) -> float:
        """The value at the current grid point, in ticks."""
        return self._value

    @property
    def mean(self) -> float:
        """The current long-run mean, in ticks (moved by permanent shocks)."""
        return math.exp(self._log_mean)

    def value_at(self, time_ns: int) -> float:
        """The value (ticks, a float) at ``time_ns``, stepping the process forward as needed."""
        step = self._step_ns
        if time_ns - self._t < step:
            return self._value
        n = (time_ns - self._t) // step
        x, t, a, b, m = self._x, self._t, self._a, self._b, self._log_mean
        gauss = self._rng.gauss
        jump_sd = self.params.jump_sd
        for _ in range(n):
            t += step
            x = m + (x - m) * a + (b * gauss(0.0, 1.0) if b else 0.0)
            while self._next_jump_ns <= t:
                x += gauss(0.0, jump_sd) if jump_sd else 0.0
                self.jumps += 1
                self._next_jump_ns = self._draw_next_jump(self._next_jump_ns)
        self.steps += n
        self._x, self._t = x, t
        self._value = math.exp(x)
        return self._value

    def shock(self, pct: float, time_ns: int | None = None, *, permanent: bool = True) -> float:
        """Move the value by ``pct`` percent (``-5`` = down 5 %) at ``time_ns`` (default: the
        current grid point); with ``permanent`` the mean moves too. Returns the new value."""
        if not pct > -100.0:
            raise ValueError(f"a shock must be above -100 %, not {pct!r}")
        if time_ns is not None:
            self.value_at(time_ns)
        dx = math.log1p(pct / 100.0)
        self._x += dx
        if permanent:
            self._log_mean += dx
        self._value = math.exp(self._x)
        return self._value

    def __repr__(self) -> str:
        return f"Fundamental(t={self._t}, value={self._value:.2f}, mean={self.mean:.2f})"
