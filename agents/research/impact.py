"""Price impact of metaorders and the square-root law.

A *metaorder* is an execution agent's parent order (TWAP or POV, ``agents/strategies/
execution.py``), worked into the market in many child orders. Its impact is the relative move of
the mid from its arrival to the end of its execution, signed so that a buy pushing the price up
is positive:

    I = sign * (mid at the end - arrival mid) / arrival mid

Empirically (Tóth et al. 2011, Bershova and Rakhlin 2013, Bucci et al. 2019), averaged over many
metaorders, ``I ≈ Y * sigma * (Q / V)^δ`` with δ ≈ 0.5 — the square-root law — where ``Q`` is the
metaorder's size, ``V`` the daily volume, ``sigma`` the daily volatility and ``Y`` of order one.
So ``Q`` is normalised by the session's traded volume and ``I`` by the session's volatility
(the standard deviation of its 1-minute log returns times the square root of its minutes), each
within its own run, which makes runs of different activity comparable and poolable.

**Which impact.** The impact at the end of the execution — what the literature calls the peak
impact, as the price relaxes afterwards. Not the largest excursion during the execution: the
maximum of a random walk over the execution's duration grows as its square root, and a POV
metaorder's duration is proportional to its size, so that maximum would show a square-root law
in a market with no impact at all. The excursion is kept per metaorder (``peak``) for a look, not
fitted.

**The fit.** One metaorder's impact is mostly noise (the price moves for other reasons during
its execution, often more than the metaorder moves it), and small ones are negative about half
the time, so the log of a single impact is not defined. The metaorders are grouped into bins of
equal count by ``log(Q/V)``; the impact is averaged per bin (the noise averages out, negative
values included) and ``log(mean I/sigma)`` is fitted by least squares on the bins' mean
``log(Q/V)``, over the bins whose mean impact is positive. The confidence interval is a bootstrap
over metaorders (resampled with replacement, the bin edges kept), from a fixed seed so that a run's
files stay a pure function of its configuration and seed.

The fact is **met** when δ is within [0.4, 0.7] and its interval is above zero (pure noise
fits any slope within a wide interval); **not measurable** (``met`` None) with fewer
than ``MIN_METAORDERS`` finished metaorders — a run without execution agents among them.
Metaorders unfinished at the session's end are counted but not fitted (their end is not theirs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DELTA_RANGE",
    "MIN_METAORDERS",
    "ImpactFit",
    "fit_impact",
    "fitted_points",
    "impact_fact",
    "pooled_impact",
    "run_impact",
    "session_volatility",
]

DELTA_RANGE = (0.4, 0.7)
MIN_METAORDERS = 20
#: At least this many bins with a positive mean impact to fit a line through.
MIN_BINS = 3
#: Metaorders per bin aimed at, and the bounds on the number of bins.
PER_BIN = 10
MAX_BINS = 10
RESAMPLES = 1000
BOOTSTRAP_SEED = 20_240_102


@dataclass(frozen=True)
class ImpactFit:
    """``mean(I/sigma) ≈ prefactor * (Q/V)^delta`` fitted on binned averages, with a bootstrap
    95 % interval on ``delta``. NaN when fewer than ``MIN_BINS`` bins have a positive mean."""

    delta: float
    prefactor: float
    r_squared: float
    ci_low: float
    ci_high: float
    #: Per bin: mean log(Q/V) as Q/V (a geometric mean), mean I/sigma, metaorders in it.
    bins: tuple[tuple[float, float, int], ...]
    bins_fitted: int
    #: Resamples whose fit succeeded (the interval is over these).
    resamples_fitted: int

    def to_dict(self) -> dict:
        return {
            "delta": _num(self.delta),
            "ci_low": _num(self.ci_low),
            "ci_high": _num(self.ci_high),
            "prefactor": _num(self.prefactor),
            "r2": _num(self.r_squared),
            "bins_fitted": self.bins_fitted,
            "resamples_fitted": self.resamples_fitted,
            "bins": [
                {"q_over_v": _num(q), "impact_over_sigma": _num(i), "count": n}
                for q, i, n in self.bins
            ],
        }


def _num(x: float | None, places: int = 6) -> float | None:
    if x is None or not np.isfinite(x):
        return None
    return float(f"{float(x):.{places}g}")


def _bin_index(log_q: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Inner edges only: the lowest and highest values fall in the end bins whatever the sample.
    return np.searchsorted(edges[1:-1], log_q, side="right")


def _binned_line(log_q: np.ndarray, impact: np.ndarray, index: np.ndarray, bins: int):
    """Means per bin and the least-squares line through the bins with a positive mean impact:
    (slope, intercept, r², bin rows, bins fitted)."""
    rows = []
    xs, ys = [], []
    for b in range(bins):
        sel = index == b
        count = int(sel.sum())
        if not count:
            continue
        x, y = float(log_q[sel].mean()), float(impact[sel].mean())
        rows.append((float(np.exp(x)), y, count))
        if y > 0:
            xs.append(x)
            ys.append(np.log(y))
    if len(xs) < MIN_BINS:
        return float("nan"), float("nan"), float("nan"), rows, len(xs)
    x, y = np.array(xs), np.array(ys)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else float("nan")
    return float(slope), float(intercept), r2, rows, len(xs)


def fit_impact(
    q_over_v: Sequence[float] | np.ndarray,
    impact_over_sigma: Sequence[float] | np.ndarray,
    *,
    bins: int | None = None,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> ImpactFit:
    """Fits ``I/sigma ≈ Y (Q/V)^δ`` on ``bins`` equal-count bins of log(Q/V) (default: one per
    ``PER_BIN`` metaorders, 3 to ``MAX_BINS``), with a bootstrap percentile interval."""
    q = np.asarray(q_over_v, dtype=float)
    i = np.asarray(impact_over_sigma, dtype=float)
    ok = np.isfinite(q) & (q > 0) & np.isfinite(i)
    q, i = q[ok], i[ok]
    n = q.size
    if bins is None:
        bins = int(np.clip(n // PER_BIN, MIN_BINS, MAX_BINS))
    nan = float("nan")
    if n < bins:
        return ImpactFit(nan, nan, nan, nan, nan, (), 0, 0)
    log_q = np.log(q)
    edges = np.quantile(log_q, np.linspace(0.0, 1.0, bins + 1))
    index = _bin_index(log_q, edges)
    slope, intercept, r2, rows, fitted = _binned_line(log_q, i, index, bins)
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(resamples if np.isfinite(slope) else 0):
        pick = rng.integers(0, n, n)
        s, *_ = _binned_line(log_q[pick], i[pick], index[pick], bins)
        if np.isfinite(s):
            deltas.append(s)
    if deltas:
        low, high = (float(v) for v in np.percentile(deltas, [2.5, 97.5]))
    else:
        low = high = nan
    return ImpactFit(
        slope, float(np.exp(intercept)), r2, low, high, tuple(rows), fitted, len(deltas)
    )


# -- from a run ---------------------------------------------------------------------------------


def session_volatility(mid_by_second: Sequence[float]) -> float:
    """The session's volatility: the standard deviation of its 1-minute log returns of the mid
    (where both ends are quoted) times the square root of its minutes — a daily sigma for a full
    day. NaN with fewer than two returns."""
    mids = np.asarray(mid_by_second, dtype=float)
    minutes = mids.size // 60
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.diff(np.log(mids[59 : minutes * 60 : 60]))
    r = r[np.isfinite(r)]
    if r.size < 2:
        return float("nan")
    return float(r.std(ddof=1) * np.sqrt(minutes))


def _second(time_ns: int, start_ns: int, seconds: int) -> int:
    return min(max((time_ns - start_ns) // 1_000_000_000, 0), seconds - 1)


def _point(order: dict, mids: np.ndarray, volumes: np.ndarray, start_ns: int, volume: int,
           sigma: float) -> dict:  # fmt: skip
    sign, arrival, done = order["sign"], order["arrival"], order["done"]
    finished = order["end_ns"] is not None and order["end_mid"] is not None and done > 0
    point = {
        "sign": sign,
        "quantity": order["quantity"],
        "done": done,
        "finished": finished,
        "start_s": (order["start_ns"] - start_ns) / 1e9,
        "duration_s": None,
        "participation": None,
        "q_over_v": _num(done / volume) if volume else None,
        "impact_bps": None,
        "impact_over_sigma": None,
        "peak_bps": None,
    }
    if not finished or not arrival:
        return point
    first = _second(order["start_ns"], start_ns, mids.size)
    last = _second(order["end_ns"], start_ns, mids.size)
    impact = sign * (order["end_mid"] - arrival) / arrival
    path = mids[first : last + 1]
    path = path[np.isfinite(path)]
    market = int(volumes[first : last + 1].sum())
    point.update(
        duration_s=(order["end_ns"] - order["start_ns"]) / 1e9,
        participation=_num(done / market) if market else None,
        impact_bps=_num(impact * 1e4),
        impact_over_sigma=_num(impact / sigma) if np.isfinite(sigma) and sigma > 0 else None,
        peak_bps=_num(float(np.max(sign * (path - arrival) / arrival)) * 1e4)
        if path.size
        else None,
    )
    return point


def run_impact(metaorders: Iterable[dict | None], data) -> dict:
    """One run's metaorders (the execution strategies' ``metaorder()`` records) against its
    market (a ``RunData``): the session's volume and volatility, and per metaorder its size,
    duration, participation, Q/V, impact (bps, and over sigma) and peak excursion. JSON-ready."""
    mids = np.asarray(data.mid_by_second, dtype=float)
    volumes = np.asarray(data.volume_by_second, dtype=float)
    sigma = session_volatility(mids)
    points = [
        _point(order, mids, volumes, data.start_ns, data.volume, sigma)
        for order in metaorders
        if order is not None
    ]
    return {"volume_lots": data.volume, "sigma_day": _num(sigma), "metaorders": points}


def pooled_impact(runs: Sequence[dict]) -> dict:
    """The fit over the finished metaorders of several runs (each a :func:`run_impact`
    section, possibly read back from a ``summary.json``), each normalised within its own run."""
    points = [p for run in runs for p in run["metaorders"]]
    q, i = fitted_points(runs)
    fit = fit_impact(q, i) if q.size >= MIN_METAORDERS else None
    return {
        "runs": len(runs),
        "n_metaorders": len(points),
        "n_fitted": int(q.size),
        "unfinished": sum(not p["finished"] for p in points),
        "fit": fit.to_dict() if fit is not None else None,
    }


def fitted_points(runs: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Q/V and I/sigma of the runs' finished metaorders (what :func:`pooled_impact` fits)."""
    fitted = [
        p for run in runs for p in run["metaorders"]
        if p["q_over_v"] and p["impact_over_sigma"] is not None
    ]  # fmt: skip
    q = np.array([p["q_over_v"] for p in fitted], dtype=float)
    return q, np.array([p["impact_over_sigma"] for p in fitted], dtype=float)


def impact_fact(pooled: dict) -> dict:
    """The deeper realism table's row, in the shape of ``deeper_facts``' facts; ``met`` is None
    when it cannot be measured (too few finished metaorders)."""
    fit = pooled["fit"]
    low, high = DELTA_RANGE
    value = {
        "delta": None,
        "ci_low": None,
        "ci_high": None,
        "prefactor": None,
        "metaorders": pooled["n_fitted"],
        "unfinished": pooled["unfinished"],
    }
    if fit is None:
        met = None
    else:
        delta = fit["delta"]
        # The interval must clear zero too: pure noise fits a slope anywhere within a wide
        # interval, and a slope in the band by chance is no law.
        met = delta is not None and low <= delta <= high and fit["ci_low"] > 0
        value.update(
            delta=delta, ci_low=fit["ci_low"], ci_high=fit["ci_high"], prefactor=fit["prefactor"]
        )
    return {
        "key": "impact",
        "name": "Square-root impact of metaorders",
        "met": met,
        "test": f"mean I/sigma ~ (Q/V)^δ over bins of execution agents' metaorders, 0.4 ≤ δ ≤ 0.7 "
        f"with its 95 % bootstrap interval above 0 (not measurable with fewer than "
        f"{MIN_METAORDERS} finished metaorders)",
        "value": value,
    }
