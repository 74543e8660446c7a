"""A fork's branches run side by side: the market as captured and its counterfactuals, each
over the same seeds (common random numbers: a branch differs from another by its change, not by
luck), and a comparison of what each branch made of the market.

``DIR`` gets ``fork.json`` (the capture), one directory per branch (a run, or ``seed-N`` runs
pooled, as ``simulate`` writes them), ``comparison.json`` / ``comparison.md`` /
``comparison.html`` with ``plots/branches.png``, and a manifest of them all.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .fork import FORK_FILE, Branch, Capture, ForkStart
from .manifest import MANIFEST_NAME, write_manifest
from .outputs import OutputChoice
from .run import RunResult, simulate, simulate_seeds

__all__ = ["BranchResult", "compare_branches", "simulate_fork"]

NS_PER_S = 1_000_000_000


@dataclass
class BranchResult:
    branch: Branch
    start: ForkStart
    runs: list[RunResult]


def simulate_fork(
    capture: Capture,
    branches: Sequence[Branch],
    seeds: Sequence[int],
    out_dir: str | Path,
    *,
    report: bool = True,
    outputs: OutputChoice | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> tuple[list[BranchResult], dict]:
    """Runs every branch (the market as captured first, whether asked for or not) over
    ``seeds`` into ``out_dir/BRANCH`` and writes the comparison. Returns the branches' results
    and the comparison."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    outputs = outputs or OutputChoice()
    if not report:
        outputs = replace(outputs, tables=outputs.tables - {"report"})
    ordered = [Branch(), *(b for b in branches if b != Branch())]
    names = [b.name for b in ordered]
    if len(set(names)) != len(names):
        raise ValueError(f"two branches make the same change: {', '.join(names)}")
    starts = [ForkStart.of(capture, b) for b in ordered]  # every branch is checked before a run
    results, files = [], []
    for start in starts:
        name = start.branch.name
        # The progress of each branch's runs is told under "BRANCH/SEED".
        tell = None if progress is None else (lambda s, t, m, n=name: progress(f"{n}/{s}", t, m))
        if len(seeds) == 1:
            tick = None if tell is None else (lambda t, m, f=tell: f(seeds[0], t, m))
            run = simulate(
                start.config, seeds[0], out / name, report=report, outputs=outputs,
                progress=tick, fork=start,
            )  # fmt: skip
            runs = [run]
            files += [f"{name}/{f}" for f in runs[0].files if f != MANIFEST_NAME]
        else:
            runs, _ = simulate_seeds(
                start.config, seeds, out / name, report=report, outputs=outputs,
                progress=tell, fork=start,
            )  # fmt: skip
            files += [
                f"{name}/seed-{r.seed}/{f}" for r in runs for f in r.files if f != MANIFEST_NAME
            ]
        results.append(BranchResult(start.branch, start, runs))
    comparison = compare_branches(results)
    files += write_comparison(out, comparison, results)
    capture.write(out)
    files.append(FORK_FILE)
    base = starts[0]
    write_manifest(
        out,
        config=base.config.to_dict(),
        seeds=list(seeds),
        outputs=outputs.to_dict(),
        files=files,
        fork={
            "file": FORK_FILE,
            "symbol": capture.symbol,
            "captured_at": capture.captured_at,
            "journal_id": capture.journal_id,
            "branches": [b.to_dict() for b in ordered],
        },
    )
    return results, comparison


# --- the comparison ----------------------------------------------------------------------------

#: (key, label, unit) of the figures compared; each is a mean over the seeds.
METRICS = (
    ("close_mid", "closing mid", "$"),
    ("return_pct", "mid change from the fork", "%"),
    ("volatility_pct", "volatility of 1-minute returns", "%"),
    ("mean_spread_ticks", "mean spread", "ticks"),
    ("trades", "trades", ""),
    ("volume_lots", "volume", "lots"),
    ("rejections", "rejected orders", ""),
)


def _run_figures(run: RunResult, start_mid: float | None) -> dict[str, float | None]:
    summary = run.summary
    prices = summary["prices"]
    close = prices["close_mid"]
    mids = np.asarray(run.series.mids, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = np.diff(np.log(mids))
    returns = returns[np.isfinite(returns)]
    figures = {
        "close_mid": close,
        "return_pct": None
        if close is None or not start_mid
        else round(100.0 * (close / start_mid - 1.0), 4),
        "volatility_pct": round(float(returns.std(ddof=1)) * 100, 4) if returns.size > 1 else None,
        "mean_spread_ticks": prices["mean_spread_ticks"],
        "trades": summary["counts"]["trades"],
        "volume_lots": summary["counts"]["volume_lots"],
        "rejections": sum(summary["counts"]["rejections"].values()),
    }
    for group, g in summary["groups"].items():
        figures[f"pnl:{group}"] = g["pnl"]
    return figures


def _start_mid(start: ForkStart) -> float | None:
    """The mid (dollars) of the book the fork starts from."""
    bids, asks = start.open_book().depth(1)
    if not bids or not asks:
        return None
    return (bids[0][0] + asks[0][0]) / 2 * float(start.config.tick_size)


def compare_branches(results: Sequence[BranchResult]) -> dict:
    """Per branch and figure: the mean and standard deviation over seeds, each seed's value,
    and the mean's difference from the market as captured (the first branch)."""
    rows = []
    for result in results:
        start_mid = _start_mid(result.start)
        per_run = [_run_figures(run, start_mid) for run in result.runs]
        keys = list(dict.fromkeys(k for figures in per_run for k in figures))
        figures = {}
        for key in keys:
            values = [f.get(key) for f in per_run]
            known = [v for v in values if v is not None and math.isfinite(v)]
            figures[key] = {
                "mean": round(float(np.mean(known)), 6) if known else None,
                "sd": round(float(np.std(known, ddof=1)), 6) if len(known) > 1 else None,
                "values": values,
            }
        rows.append(
            {
                "name": result.branch.name,
                "branch": result.branch.to_dict(),
                "seeds": [run.seed for run in result.runs],
                "start_mid": start_mid,
                "figures": figures,
            }
        )
    base = rows[0]["figures"]
    for row in rows:
        for key, figure in row["figures"].items():
            mean, base_mean = figure["mean"], base.get(key, {}).get("mean")
            figure["vs_as_is"] = (
                None if mean is None or base_mean is None else round(mean - base_mean, 6)
            )
    return {"branches": rows}


def _labels(comparison: dict) -> list[tuple[str, str]]:
    labels = [(k, f"{label} ({unit})" if unit else label) for k, label, unit in METRICS]
    groups = dict.fromkeys(
        k for row in comparison["branches"] for k in row["figures"] if k.startswith("pnl:")
    )
    return labels + [(k, f"P&L of {k[4:]} ($)") for k in sorted(groups)]


def _cell(figure: dict | None, *, first: bool) -> str:
    if figure is None or figure["mean"] is None:
        return "—"
    text = f"{figure['mean']:,.4g}"
    if figure["sd"] is not None:
        text += f" ± {figure['sd']:,.3g}"
    if not first and figure["vs_as_is"] is not None:
        text += f" ({figure['vs_as_is']:+,.4g})"
    return text


def write_comparison(out: Path, comparison: dict, results: Sequence[BranchResult]) -> list[str]:
    """``comparison.json``, ``comparison.md``, ``comparison.html`` and ``plots/branches.png``;
    returns their names."""
    (out / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n", "utf-8")
    rows = comparison["branches"]
    header = ["figure (mean ± sd over seeds; change against as-is)", *(r["name"] for r in rows)]
    table = [
        [label, *(_cell(r["figures"].get(key), first=i == 0) for i, r in enumerate(rows))]
        for key, label in _labels(comparison)
    ]
    seeds = rows[0]["seeds"]
    intro = (
        f"Branches of one fork, each over seeds {', '.join(map(str, seeds))} (the same seeds "
        "in every branch); the first is the market as it was captured."
    )
    md = [
        "# Fork comparison",
        "",
        intro,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    md += ["| " + " | ".join(line) + " |" for line in table]
    md += ["", "![Mid price of each branch](plots/branches.png)", ""]
    (out / "comparison.md").write_text("\n".join(md), encoding="utf-8")
    esc = html.escape
    page = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Fork comparison</title>',
        "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:"
        "collapse}td,th{border:1px solid #999;padding:.3em .6em;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>",
        "<h1>Fork comparison</h1>",
        f"<p>{esc(intro)}</p>",
        "<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead>",
        "<tbody>",
    ]
    page += ["<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in line) + "</tr>" for line in table]
    page += [
        "</tbody></table>",
        '<p><img src="plots/branches.png" alt="Mid price of each branch"></p>',
        "</body></html>",
    ]
    (out / "comparison.html").write_text("\n".join(page) + "\n", encoding="utf-8")
    (out / "plots").mkdir(exist_ok=True)
    _plot_branches(out / "plots" / "branches.png", results)
    return ["comparison.json", "comparison.md", "comparison.html", "plots/branches.png"]


def _plot_branches(path: Path, results: Sequence[BranchResult]) -> None:
    from .report import _save as save_figure
    from .report import plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for result in results:
        run = result.runs[0]
        mids = np.asarray(run.data.mid_by_second, dtype=float)
        tick = float(result.start.config.tick_size)
        minutes = np.arange(len(mids)) / 60.0
        ax.plot(minutes, mids * tick, lw=0.9, label=result.branch.name)
    ax.set_xlabel(f"minutes after the fork (seed {results[0].runs[0].seed})")
    ax.set_ylabel("mid ($)")
    ax.legend(loc="best", fontsize=8)
    save_figure(fig, path)
