"""The realism report: PNG plots (matplotlib, headless) and a table of the stylized facts, as
Markdown (``report.md``) and as a self-contained page (``report.html``, images alongside)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless, and the same bytes on every machine
import itertools

import matplotlib.pyplot as plt
import numpy as np

from .deeper_plots import DEEPER_PLOTS, FlowData, write_deeper_plots
from .metrics import MinuteSeries, pooled_acf

__all__ = ["write_report"]

PLOTS = (
    ("price_path.png", "Price path"),
    ("returns_distribution.png", "1-minute returns against a normal"),
    ("autocorrelation.png", "Autocorrelation of returns and of absolute returns"),
    ("volume_volatility.png", "Volume against volatility"),
    ("spread_distribution.png", "Spread distribution"),
)
_PNG_META = {"Software": None}  # no version stamp: byte-identical across matplotlib patch releases


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata=_PNG_META)
    plt.close(fig)


def _returns(runs: Sequence[MinuteSeries]) -> list[np.ndarray]:
    out = []
    for run in runs:
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.diff(np.log(np.asarray(run.mids, dtype=float)))
        out.append(r[np.isfinite(r)])
    return out


def _plot_price(path: Path, price_runs, tick_size: float, start_hour: float) -> None:
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for i, (mids, fundamental) in enumerate(price_runs):
        hours = start_hour + np.arange(len(mids)) / 3600.0
        alpha = 1.0 if i == 0 else 0.35
        ax.plot(hours, np.asarray(mids) * tick_size, lw=0.8, alpha=alpha,
                label="mid" if i == 0 else None)  # fmt: skip
        if i == 0 and fundamental is not None:
            ax.plot(hours, np.asarray(fundamental) * tick_size, lw=0.8, ls="--", color="grey",
                    label="fundamental value")  # fmt: skip
    ax.set_xlabel("hour of day")
    ax.set_ylabel("price ($)")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


def _plot_returns(path: Path, returns: np.ndarray) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if returns.size > 1 and returns.std() > 0:
        z = (returns - returns.mean()) / returns.std()
        bins = np.linspace(-8, 8, 81)
        ax.hist(np.clip(z, -8, 8), bins=bins, density=True, alpha=0.6, label="simulated")
        grid = np.linspace(-8, 8, 400)
        ax.plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), color="black", lw=1,
                label="standard normal")  # fmt: skip
        ax.set_yscale("log")
        ax.set_ylim(1e-5, 1)
    ax.set_xlabel("standardised 1-minute log return")
    ax.set_ylabel("density (log scale)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    _save(fig, path)


def _plot_acf(path: Path, returns: list[np.ndarray]) -> None:
    lags = list(range(1, 31))
    n = sum(len(r) for r in returns)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    if n > 31:
        ax.plot(lags, pooled_acf(returns, lags), marker="o", ms=3, label="returns")
        ax.plot(lags, pooled_acf([np.abs(r) for r in returns], lags), marker="s", ms=3,
                label="absolute returns")  # fmt: skip
        band = 2 / np.sqrt(n)
        ax.axhspan(-band, band, color="grey", alpha=0.2, label="±2/√N")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("lag (minutes)")
    ax.set_ylabel("autocorrelation")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    _save(fig, path)


def _plot_volume(path: Path, returns: list[np.ndarray], runs: Sequence[MinuteSeries]) -> None:
    xs, ys = [], []
    for run in runs:
        mids = np.asarray(run.mids, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.diff(np.log(mids))
        ok = np.isfinite(r)
        xs.append(np.asarray(run.volumes, dtype=float)[1:][ok])
        ys.append(np.abs(r[ok]))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if xs:
        x, y = np.concatenate(xs), np.concatenate(ys)
        ax.scatter(x, y * 1e4, s=4, alpha=0.3)
        if x.size > 20:
            edges = np.quantile(x, np.linspace(0, 1, 11))
            centres, means = [], []
            for lo, hi in itertools.pairwise(edges):
                sel = (x >= lo) & (x <= hi)
                if sel.any():
                    centres.append(x[sel].mean())
                    means.append(y[sel].mean() * 1e4)
            ax.plot(centres, means, color="black", marker="o", ms=4, label="mean by decile")
            ax.legend(fontsize=8)
    ax.set_xlabel("volume in the minute (lots)")
    ax.set_ylabel("|1-minute return| (bp)")
    _save(fig, path)


def _plot_spread(path: Path, spreads: np.ndarray) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    spreads = spreads[spreads > 0]
    if spreads.size:
        values, counts = np.unique(np.minimum(spreads, 20), return_counts=True)
        ax.bar(values, counts / counts.sum())
        ax.set_xticks(values)
        ax.set_xticklabels([str(v) if v < 20 else "20+" for v in values], fontsize=7)
    ax.set_xlabel("spread (ticks), sampled every second")
    ax.set_ylabel("share of time")
    _save(fig, path)


def _fact_rows(facts: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for fact in facts["facts"]:
        values = ", ".join(f"{k} {v:.3g}" if v is not None else f"{k} n/a"
                           for k, v in fact["value"].items())  # fmt: skip
        # None: the run cannot measure it (the impact law without metaorders), not a failure.
        result = {True: "met", False: "NOT met", None: "not measurable"}[fact["met"]]
        rows.append((fact["name"], result, fact["test"], values))
    return rows


def write_report(
    out_dir: Path,
    *,
    title: str,
    runs: Sequence[MinuteSeries],
    facts: dict,
    price_runs: Sequence[tuple[Sequence[float], Sequence[float] | None]],
    spreads: np.ndarray,
    tick_size: float,
    start_hour: float,
    notes: Sequence[str] = (),
    flow: FlowData | None = None,
) -> list[str]:
    """Writes the plots, ``report.md`` and ``report.html`` into ``out_dir``; returns the file
    names written. With ``flow`` (and ``facts["deeper"]``), the deeper realism table and its
    plots too."""
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    returns = _returns(runs)
    pooled = np.concatenate(returns) if returns else np.array([])
    _plot_price(plots / PLOTS[0][0], price_runs, tick_size, start_hour)
    _plot_returns(plots / PLOTS[1][0], pooled)
    _plot_acf(plots / PLOTS[2][0], returns)
    _plot_volume(plots / PLOTS[3][0], returns, runs)
    _plot_spread(plots / PLOTS[4][0], np.asarray(spreads))
    plot_list = list(PLOTS)
    if flow is not None:
        write_deeper_plots(plots, returns, flow)
        plot_list += DEEPER_PLOTS
    deeper = _fact_rows(facts["deeper"]) if "deeper" in facts else []

    rows = _fact_rows(facts)
    met = sum(f["met"] for f in facts["facts"])
    headline = (
        f"{met} of {len(rows)} stylized facts met, on {facts['n_returns']} one-minute returns "
        f"from {facts['runs']} run(s) (2/√N = {facts['band'] or float('nan'):.4f})."
    )
    md = [f"# {title}", "", headline, ""]
    md += [f"* {note}" for note in notes]
    md += ["", "| Fact | Result | Test | Statistics |", "|---|---|---|---|"]
    md += [f"| {a} | **{b}** | {c} | {d} |" for a, b, c, d in rows]
    if deeper:
        met_deeper = sum(b == "met" for _, b, _, _ in deeper)
        md += ["", "## Deeper realism", "", f"{met_deeper} of {len(deeper)} met.", ""]
        md += ["| Fact | Result | Test | Statistics |", "|---|---|---|---|"]
        md += [f"| {a} | **{b}** | {c} | {d} |" for a, b, c, d in deeper]
    for name, caption in plot_list:
        md += ["", f"## {caption}", "", f"![{caption}](plots/{name})"]
    (out_dir / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    esc = html.escape
    page = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;"
        "padding:0 1em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:left;font-size:14px}.met{color:#0a7b22;font-weight:600}"
        ".not{color:#b00020;font-weight:600}img{max-width:100%}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{esc(headline)}</p>",
    ]
    if notes:
        page.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    page += _html_table(rows)
    if deeper:
        page.append("<h2>Deeper realism</h2>")
        page += _html_table(deeper)
    for name, caption in plot_list:
        page.append(f'<h2>{esc(caption)}</h2><img src="plots/{name}" alt="{esc(caption)}">')
    page.append("</body></html>")
    (out_dir / "report.html").write_text("\n".join(page) + "\n", encoding="utf-8")
    return ["report.md", "report.html"] + [f"plots/{name}" for name, _ in plot_list]


def _html_table(rows: list[tuple[str, str, str, str]]) -> list[str]:
    esc = html.escape
    out = ["<table><tr><th>Fact</th><th>Result</th><th>Test</th><th>Statistics</th></tr>"]
    for a, b, c, d in rows:
        cls = {"met": "met", "NOT met": "not"}.get(b, "")
        out.append(
            f'<tr><td>{esc(a)}</td><td class="{cls}">{esc(b)}</td><td>{esc(c)}</td>'
            f"<td>{esc(d)}</td></tr>"
        )
    out.append("</table>")
    return out
