"""The deeper realism report's plots: the return tail against its Hill fit, the decay of the ACF
of |r| and of order-flow signs on log-log axes, the distribution of order sizes, the intraday
profile of volume and the metaorders' impact against their size (``impact.py``). The spread's
distribution is ``report.py``'s. Headless matplotlib, no version stamp in the PNGs
(byte-identical runs), as ``report.py`` does."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .deeper_facts import ABS_DECAY_LAGS, SIGN_LAGS, TAIL_FRACTION
from .estimators import hill_tail_index, power_law_decay
from .impact import DELTA_RANGE, fitted_points
from .metrics import pooled_acf

__all__ = ["DEEPER_PLOTS", "FlowData", "write_deeper_plots"]

DEEPER_PLOTS = (
    ("return_tail.png", "Tail of 1-minute returns (Hill)"),
    ("abs_return_acf_decay.png", "Decay of the ACF of |r| (log-log)"),
    ("order_flow_acf.png", "Autocorrelation of order-flow signs (log-log)"),
    ("order_sizes.png", "Order-size distribution"),
    ("intraday_volume.png", "Intraday volume profile"),
    ("metaorder_impact.png", "Impact of metaorders against their size (log-log)"),
)
_PNG_META = {"Software": None}
#: Minutes per bar of the intraday volume profile.
PROFILE_MINUTES = 5


@dataclass(frozen=True)
class FlowData:
    """Per run: marketable-order signs and the volume traded in every second; pooled: how many
    orders of each size (lots) reached the exchange."""

    signs: Sequence[np.ndarray]
    volume_by_second: Sequence[np.ndarray]
    order_sizes: Counter
    start_hour: float
    #: Per run its metaorders (``impact.run_impact``), and their pooled fit (``pooled_impact``).
    impact_runs: Sequence[dict] = ()
    impact: dict | None = None


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata=_PNG_META)
    plt.close(fig)


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _plot_tail(path: Path, returns: np.ndarray) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    a = np.sort(np.abs(returns[np.isfinite(returns)]))[::-1]
    a = a[a > 0]
    alpha, k = hill_tail_index(a, TAIL_FRACTION)
    if a.size > 10:
        scale = a.std() or 1.0
        ccdf = np.arange(1, a.size + 1) / a.size
        ax.loglog(a / scale, ccdf, ".", ms=2, label="P(|r| > x), simulated")
        if np.isfinite(alpha):
            x = a[: k + 1] / scale
            ax.loglog(x, (k / a.size) * (x / x[-1]) ** -alpha, color="black", lw=1,
                      label=f"Hill fit, top 5 %: alpha = {alpha:.2f}")  # fmt: skip
    ax.set_xlabel("|1-minute return| / standard deviation")
    ax.set_ylabel("complementary CDF")
    _legend(ax)
    _save(fig, path)


def _plot_decay(path: Path, series: list[np.ndarray], lags, floor: float, xlabel: str, sym: str):
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if sum(len(s) for s in series) > max(lags) + 1:
        values = pooled_acf(series, list(lags))
        ok = values > 0
        ax.loglog(np.asarray(lags)[ok], values[ok], "o", ms=3, label="sample ACF (> 0)")
        fit = power_law_decay(values, list(lags), floor=floor, min_lags=10)
        if np.isfinite(fit.exponent):
            k = np.asarray(fit.lags, dtype=float)
            ax.loglog(k, np.exp(fit.intercept) * k**-fit.exponent, color="black", lw=1,
                      label=f"power-law fit: {sym} = {fit.exponent:.2f}")  # fmt: skip
        if floor > 0:
            ax.axhline(floor, color="grey", ls=":", lw=1, label="2/√N")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("autocorrelation")
    _legend(ax)
    _save(fig, path)


def _plot_order_sizes(path: Path, sizes: Counter) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if sizes:
        values = np.array(sorted(sizes), dtype=float)
        counts = np.array([sizes[int(v)] for v in values], dtype=float)
        # P(size >= s), so every size is one point and the tail's shape shows on log axes.
        ccdf = counts[::-1].cumsum()[::-1] / counts.sum()
        ax.loglog(values, ccdf, "o-", ms=3, lw=0.8)
        median = values[np.searchsorted(counts.cumsum(), counts.sum() / 2)]
        ax.set_title(
            f"{int(counts.sum()):,} orders; median {median:g} lots, largest {int(values[-1])}",
            fontsize=9,
        )
    ax.set_xlabel("order size (lots)")
    ax.set_ylabel("P(size ≥ s)")
    _save(fig, path)


def _plot_intraday_volume(path: Path, volumes: Sequence[np.ndarray], start_hour: float) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    step = PROFILE_MINUTES * 60
    bins = min((len(v) // step for v in volumes), default=0)
    if bins:
        # Each run's share of its day's volume per bin, averaged over runs: days of different
        # activity weigh alike.
        shares = []
        for v in volumes:
            per_bin = np.asarray(v[: bins * step], dtype=float).reshape(bins, step).sum(axis=1)
            total = per_bin.sum()
            shares.append(per_bin / total if total else per_bin)
        mean = np.mean(shares, axis=0) * 100
        hours = start_hour + (np.arange(bins) * PROFILE_MINUTES) / 60
        ax.bar(hours, mean, width=PROFILE_MINUTES / 60, align="edge", alpha=0.7)
        ax.axhline(100 / bins, color="black", lw=0.8, ls="--", label="flat profile")
    ax.set_xlabel("hour of day")
    ax.set_ylabel(f"% of the day's volume per {PROFILE_MINUTES} min")
    _legend(ax)
    _save(fig, path)


def _plot_impact(path: Path, runs: Sequence[dict], pooled: dict | None) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    q, i = fitted_points(runs)
    fit = (pooled or {}).get("fit")
    if q.size:
        # Single impacts below zero (noise beats impact for small metaorders) have no place on
        # log axes; the bin means, which the fit uses, average them in.
        up = i > 0
        ax.loglog(q[up], i[up], ".", ms=3, alpha=0.4,
                  label=f"metaorders with I > 0 ({int(up.sum())} of {q.size})")  # fmt: skip
    if fit is not None:
        bins = [(b["q_over_v"], b["impact_over_sigma"]) for b in fit["bins"]]
        shown = [(x, y) for x, y in bins if x and y is not None and y > 0]
        if shown:
            xs, ys = zip(*shown, strict=True)
            ax.loglog(xs, ys, "o", color="black", ms=5, label="mean per bin (fitted)")
        if fit["delta"] is not None:
            x = np.array([min(q), max(q)])
            ci = ""
            if fit["ci_low"] is not None:
                ci = f" [{fit['ci_low']:.2f}, {fit['ci_high']:.2f}]"
            ax.loglog(x, fit["prefactor"] * x ** fit["delta"], color="black", lw=1,
                      label=f"fit: δ = {fit['delta']:.2f}{ci}")  # fmt: skip
            # A square root through the fit's middle: how far the slope is from the law's.
            mid = np.sqrt(x[0] * x[1])
            ax.loglog(x, fit["prefactor"] * mid**fit["delta"] * (x / mid) ** 0.5, color="grey",
                      lw=0.8, ls="--", label="slope 1/2")  # fmt: skip
        low, high = DELTA_RANGE
        ax.set_title(f"square-root law: δ within [{low}, {high}]", fontsize=9)
    else:
        ax.text(0.5, 0.5, "not measurable: too few finished metaorders\n(no execution agents?)",
                ha="center", va="center", transform=ax.transAxes, fontsize=9)  # fmt: skip
    ax.set_xlabel("Q / V (metaorder size / session volume)")
    ax.set_ylabel("impact I / sigma (session volatility)")
    _legend(ax)
    _save(fig, path)


def write_deeper_plots(plots: Path, returns: list[np.ndarray], flow: FlowData) -> list[str]:
    """Writes the six plots into ``plots``; returns their file names."""
    pooled = np.concatenate(returns) if returns else np.array([])
    _plot_tail(plots / DEEPER_PLOTS[0][0], pooled)
    _plot_decay(plots / DEEPER_PLOTS[1][0], [np.abs(r) for r in returns], ABS_DECAY_LAGS, 0.0,
                "lag (minutes)", "β")  # fmt: skip
    signs = [np.asarray(s, dtype=float) for s in flow.signs if len(s)]
    m = sum(len(s) for s in signs)
    _plot_decay(plots / DEEPER_PLOTS[2][0], signs, SIGN_LAGS, 2 / np.sqrt(m) if m else 0.0,
                "lag (marketable orders)", "gamma")  # fmt: skip
    _plot_order_sizes(plots / DEEPER_PLOTS[3][0], flow.order_sizes)
    _plot_intraday_volume(plots / DEEPER_PLOTS[4][0], flow.volume_by_second, flow.start_hour)
    _plot_impact(plots / DEEPER_PLOTS[5][0], flow.impact_runs, flow.impact)
    return [name for name, _ in DEEPER_PLOTS]
