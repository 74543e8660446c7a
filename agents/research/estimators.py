"""Estimators behind the deeper realism checks: the Hill tail index and power-law decay fits.

Pure functions of arrays, tested on synthetic series whose answers are known
(``tests/research/test_estimators.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PowerLawFit", "hill_tail_index", "power_law_decay"]


def hill_tail_index(x: Sequence[float] | np.ndarray, fraction: float = 0.05) -> tuple[float, int]:
    """Hill's (1975) estimator of the tail index of ``|x|`` from its largest ``k = fraction * N``
    values: ``1 / mean(log(X_(i) / X_(k+1)))``, i = 1..k. Returns ``(alpha, k)``; NaN with
    fewer than 10 order statistics. For a Pareto tail it is unbiased as k grows; for a
    Student-t with nu degrees of freedom it tends to nu from below; a normal sample (no power-law
    tail) still gives a finite value, about 6 at 5 % — which is why the check has a ceiling."""
    a = np.abs(np.asarray(x, dtype=float))
    a = a[np.isfinite(a) & (a > 0)]
    k = int(fraction * a.size)
    if k < 10:
        return float("nan"), k
    top = np.sort(a)[::-1][: k + 1]
    mean_log = float(np.mean(np.log(top[:k] / top[k])))
    return (1.0 / mean_log if mean_log > 0 else float("nan")), k


@dataclass(frozen=True)
class PowerLawFit:
    """``value(k) ≈ c * k^(-exponent)`` fitted by least squares on log-log axes."""

    exponent: float
    intercept: float
    lags: tuple[int, ...]
    r_squared: float


def power_law_decay(
    values: Sequence[float] | np.ndarray,
    lags: Sequence[int],
    floor: float = 0.0,
    min_lags: int = 5,
) -> PowerLawFit:
    """Fits a power-law decay to an autocorrelation function over the *leading run* of lags
    whose values exceed ``floor`` (the first lag at or below it ends the run: past it the
    estimates are noise, and keeping only the positive ones would bias the fit). With fewer than
    ``min_lags`` lags the fit is NaN."""
    v = np.asarray(values, dtype=float)
    k = np.asarray(lags, dtype=float)
    above = np.isfinite(v) & (v > floor)
    run = int(np.argmin(above)) if not above.all() else len(v)
    if run < min_lags:
        return PowerLawFit(float("nan"), float("nan"), tuple(int(x) for x in k[:run]), float("nan"))
    x, y = np.log(k[:run]), np.log(v[:run])
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else float("nan")
    return PowerLawFit(float(-slope), float(intercept), tuple(int(x) for x in k[:run]), r2)
