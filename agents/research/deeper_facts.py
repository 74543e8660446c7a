"""Three deeper stylized facts, beside the four of ``metrics.py``, pooled over runs the same way
(each run's own returns and signs; lagged products never straddle two runs):

5. **Tail index**: the Hill estimate of the tail index of 1-minute returns (``|r|``, its top
   5 %) between 2 and 5 — real returns' tails are power laws with an index near 3 (Gopikrishnan
   et al. 1999), heavier than a normal's (Hill gives ~6 on normal samples of this size) and
   with a finite variance.
6. **Slow decay of volatility's autocorrelation**: ACF(|r|, k) over k = 1..20 minutes decays as
   a power law ``k^-β`` with β between 0.2 and 0.5 (Cont 2001), fitted on log-log axes over
   the leading run of positive lags (at least 10 of them), with ACF(|r|, 1) above 2/√N.
7. **Long memory of order flow**: the signs of marketable orders (+1 buy, -1 sell, one per
   order however many fills it made) are positively autocorrelated — ACF(k) > 2/√M for
   k = 1..10, M the number of signs — and the ACF decays slowly: a power law with exponent
   gamma < 1 (Lillo and Farmer 2004 find gamma ≈ 0.5; an exponential decay fits a steeper, growing
   slope), fitted over the leading run of lags 1..100 above the band (at least 10).

They are reported, not required by ``--check-facts`` (which keeps to the four).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .estimators import hill_tail_index, power_law_decay
from .metrics import MinuteSeries, pooled_acf

__all__ = [
    "ABS_DECAY_LAGS",
    "SIGN_LAGS",
    "deeper_facts",
    "minute_returns",
]

TAIL_FRACTION = 0.05
TAIL_RANGE = (2.0, 5.0)
ABS_DECAY_LAGS = range(1, 21)
ABS_DECAY_RANGE = (0.2, 0.5)
SIGN_LAGS = range(1, 101)
SIGN_POSITIVE_LAGS = 10
MIN_FIT_LAGS = 10


def minute_returns(run: MinuteSeries) -> np.ndarray:
    """1-minute log returns of the mid where both ends are quoted."""
    mids = np.asarray(run.mids, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.diff(np.log(mids))
    return r[np.isfinite(r)]


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


def _tail_fact(returns: list[np.ndarray]) -> dict:
    pooled = np.concatenate(returns) if returns else np.array([])
    alpha, k = hill_tail_index(pooled, TAIL_FRACTION)
    low, high = TAIL_RANGE
    return {
        "key": "tail_index",
        "name": "Power-law tails of 1-minute returns",
        "met": bool(np.isfinite(alpha) and low < alpha < high),
        "test": "Hill tail index of |r| (top 5 %) between 2 and 5",
        "value": {
            "alpha": _num(alpha),
            "k": k,
            "se": _num(alpha / np.sqrt(k)) if k else None,
            "alpha_2.5%": _num(hill_tail_index(pooled, 0.025)[0]),
            "alpha_10%": _num(hill_tail_index(pooled, 0.10)[0]),
        },
    }


def _abs_decay_fact(returns: list[np.ndarray], band: float) -> dict:
    lags = list(ABS_DECAY_LAGS)
    values = pooled_acf([np.abs(r) for r in returns], lags)
    fit = power_law_decay(values, lags, floor=0.0, min_lags=MIN_FIT_LAGS)
    low, high = ABS_DECAY_RANGE
    met = bool(np.isfinite(fit.exponent) and low <= fit.exponent <= high and values[0] > band)
    return {
        "key": "abs_return_decay",
        "name": "Slow (power-law) decay of the ACF of |r|",
        "met": met,
        "test": "ACF(|r|, k) ~ k^-β over k = 1..20 min (≥ 10 positive lags), 0.2 ≤ β ≤ 0.5",
        "value": {
            "beta": _num(fit.exponent),
            "r2": _num(fit.r_squared),
            "lags_fitted": len(fit.lags),
            "lag1": _num(values[0]),
            "lag20": _num(values[-1]),
        },
    }


def _order_flow_fact(signs: Sequence[np.ndarray]) -> dict:
    arrays = [np.asarray(s, dtype=float) for s in signs if len(s)]
    m = int(sum(len(s) for s in arrays))
    band = 2.0 / np.sqrt(m) if m else float("nan")
    lags = list(SIGN_LAGS)
    values = pooled_acf(arrays, lags)
    fit = power_law_decay(values, lags, floor=band, min_lags=MIN_FIT_LAGS)
    positive = bool(m and np.all(values[:SIGN_POSITIVE_LAGS] > band))
    slow = bool(np.isfinite(fit.exponent) and fit.exponent < 1.0)
    return {
        "key": "order_flow_memory",
        "name": "Long memory of order flow (trade signs)",
        "met": positive and slow,
        "test": "ACF of market-order signs > 2/sqrt(M) at lags 1..10, and decaying as k^-gamma "
        "with gamma < 1 (fitted on lags 1..100 above the band, ≥ 10)",
        "value": {
            "gamma": _num(fit.exponent),
            "r2": _num(fit.r_squared),
            "lags_fitted": len(fit.lags),
            "lag1": _num(values[0]),
            "lag10": _num(values[9]),
            "lag100": _num(values[99]),
            "signs": m,
            "band": _num(band),
        },
    }


def deeper_facts(runs: Sequence[MinuteSeries], signs: Sequence[np.ndarray]) -> dict:
    """The three facts for the pooled runs (``signs``: one array of order signs per run), in
    the shape of :func:`metrics.stylized_facts`' facts. JSON-ready."""
    returns = [minute_returns(run) for run in runs]
    n = int(sum(len(r) for r in returns))
    band = 2.0 / np.sqrt(n) if n else float("nan")
    return {
        "n_returns": n,
        "runs": len(runs),
        "facts": [
            _tail_fact(returns),
            _abs_decay_fact(returns, band),
            _order_flow_fact(signs),
        ],
    }
