"""One simulated day (or several seeds of it) from configuration to files on disk.

``DIR`` gets, for a single run:

* the LOBSTER message and order book files (``TICKER_DATE_STARTMS_ENDMS_{message|orderbook}_N``);
* ``trades.csv`` (one row per execution, with both agents), ``agents.csv`` (per-agent results),
  ``bars.csv`` (per-minute mid, volume, trades, spread);
* Parquet copies of the large tables (``parquet.py``);
* ``summary.json`` (the configuration, counts, prices, the execution agents' costs and the
  stylized facts of this run);
* the realism report, ``report.md`` / ``report.html`` with ``plots/*.png``;
* ``manifest.json`` (the code version, configuration, seed and every file's SHA-256).

Which of the tables and formats: ``outputs.py``.

Every file is a pure function of the configuration and the seed (no wall-clock times in them),
so the same inputs give byte-identical outputs. Wall-clock speed is returned, never written.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import numpy as np

from exchange.protocol.decimals import money_str

from .config import SimConfig, format_time_of_day
from .deeper_facts import deeper_facts
from .deeper_plots import FlowData
from .fork import FORK_FILE, ForkStart
from .impact import impact_fact, pooled_impact, run_impact
from .lobster import LobsterBook, lobster_file_names
from .manifest import MANIFEST_NAME, code_version, write_manifest
from .metrics import MinuteSeries, stylized_facts
from .outputs import OutputChoice
from .parquet import csv_to_parquet
from .report import write_report
from .simulator import RunData, Simulation

__all__ = ["RunResult", "minute_series", "simulate", "simulate_seeds"]

NS_PER_S = 1_000_000_000


@dataclass
class RunResult:
    seed: int
    out_dir: Path
    data: RunData
    summary: dict
    series: MinuteSeries
    #: The files written, relative to ``out_dir`` (the manifest included, when written).
    files: list[str]


def minute_series(data: RunData) -> MinuteSeries:
    """The mid at the end of each whole minute and the volume traded in it."""
    minutes = len(data.mid_by_second) // 60
    mids = np.array(data.mid_by_second[59 : minutes * 60 : 60], dtype=float)
    volumes = np.array(data.volume_by_second[: minutes * 60], dtype=float)
    return MinuteSeries(mids=mids, volumes=volumes.reshape(minutes, 60).sum(axis=1))


def _money(ticks_lots: float, unit: Decimal, less: Decimal = Decimal(0)) -> str:
    """Tick-lots (whole, or halves at a mid mark) as money, minus `less` (money: the fees), as
    the exchange writes it: the currency's decimals, more when a tick-lot finer than a cent needs
    them (never rounded)."""
    if not math.isfinite(ticks_lots):
        return ""
    return money_str(Decimal(repr(float(ticks_lots))) * unit - less)


def _write_agents(path: Path, sim: Simulation, mark: float | None) -> None:
    unit = sim.config.tick_size * sim.config.lot_size
    lines = [
        "account,name,group,strategy,wakes,orders,cancels,rejects,trades,traded_lots,"
        "position,cash,equity,pnl,fees\n"
    ]
    for a in sim.agents:
        state = a.state
        equity = state.cash + state.position * mark if mark is not None else float(state.cash)
        # Cash, equity and P&L net of the fees, as the exchange's accounts are.
        lines.append(
            f"{a.account},{a.name},{a.group},{a.strategy.name},{a.wakes},{a.orders},{a.cancels},"
            f"{a.rejects},{a.trades},{a.traded_qty},{state.position},"
            f"{_money(state.cash, unit, a.fees)},{_money(equity, unit, a.fees)},"
            f"{_money(equity - a.initial_cash, unit, a.fees)},{money_str(a.fees)}\n"
        )
    path.write_text("".join(lines), encoding="utf-8")


def _execution_reports(sim: Simulation, config: SimConfig) -> list[dict]:
    """Each execution agent's (TWAP, POV) parent order: done and left, its average fill price,
    the arrival price and the market's VWAP over its active period (prices to 8 places, money
    units), and its cost against both in basis points (positive: it paid)."""
    tick = float(config.tick_size)
    out = []
    for a in sim.agents:
        report = getattr(a.strategy, "report", None)
        if report is None:
            continue
        row = {"name": a.name, "strategy": a.strategy.name, **report(a.state)}
        for name in ("arrival", "vwap", "average"):
            if row[name] is not None:
                row[name] = round(row[name] * tick, 8)
        for name in ("cost_vs_arrival_bps", "cost_vs_vwap_bps"):
            if row[name] is not None:
                row[name] = round(row[name], 2)
        out.append(row)
    return out


def _write_bars(path: Path, data: RunData, config: SimConfig) -> None:
    lines = ["minute_end,mid,spread_ticks,volume,trades\n"]
    second = 0
    seconds = len(data.mid_by_second)
    tick = config.tick_size
    while second + 60 <= seconds:
        end = second + 60
        mid = data.mid_by_second[end - 1]
        mid_text = f"{Decimal(repr(mid)) * tick:.3f}" if math.isfinite(mid) else ""
        lines.append(
            f"{format_time_of_day(config.start_ns + end * NS_PER_S)},{mid_text},"
            f"{data.spread_by_second[end - 1]},{sum(data.volume_by_second[second:end])},"
            f"{sum(data.trades_by_second[second:end])}\n"
        )
        second = end
    path.write_text("".join(lines), encoding="utf-8")


def _price_stats(data: RunData, config: SimConfig) -> dict:
    mids = np.array(data.mid_by_second, dtype=float)
    valid = mids[np.isfinite(mids)]
    tick = float(config.tick_size)

    def dollars(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(x) else round(x * tick, 4)

    spreads = np.array(data.spread_by_second)
    quoted = spreads[spreads > 0]
    return {
        "open_mid": dollars(float(valid[0])) if valid.size else None,
        "close_mid": dollars(float(valid[-1])) if valid.size else None,
        "high_mid": dollars(float(valid.max())) if valid.size else None,
        "low_mid": dollars(float(valid.min())) if valid.size else None,
        "two_sided_share": round(float(np.isfinite(mids).mean()), 6) if mids.size else 0.0,
        "mean_spread_ticks": round(float(quoted.mean()), 6) if quoted.size else None,
        "median_spread_ticks": float(np.median(quoted)) if quoted.size else None,
    }


def _table_path(out: Path, scratch: Path, name: str, keep: bool, convert: bool) -> Path:
    """Where a table's CSV is written: the output directory when kept, a scratch directory when
    it is only the source of the Parquet copy, nowhere (the null device) otherwise."""
    if keep:
        return out / name
    if convert:
        return scratch / name
    return Path(os.devnull)


def _write_parquet(out: Path, sources: dict[str, Path], names: dict[str, str], levels: int):
    written = []
    for table, csv_path in sources.items():
        target = names[table].removesuffix(".csv") + ".parquet"
        csv_to_parquet(csv_path, out / target, table, levels=levels)
        written.append(target)
    return written


def simulate(
    config: SimConfig,
    seed: int,
    out_dir: str | Path,
    *,
    report: bool = True,
    outputs: OutputChoice | None = None,
    progress: Callable[[int, int], None] | None = None,
    manifest: bool = True,
    fork: ForkStart | None = None,
) -> RunResult:
    """Runs one day and writes its files into ``out_dir`` (created if needed): the tables and
    formats of ``outputs`` (default: :class:`OutputChoice`'s), the report unless ``report`` is
    false, then ``summary.json`` and ``manifest.json`` (unless ``manifest`` is false). A
    ``fork`` run starts from its capture (``config`` is then ``fork.config``), which is written
    beside the outputs as ``fork.json``, so the directory re-runs alone."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    code_version()  # the code this process runs, read before a long run (a commit may follow)
    outputs = outputs or OutputChoice()
    if not report:
        outputs = replace(outputs, tables=outputs.tables - {"report"})
    names = lobster_file_names(
        config.symbol, config.date, config.start_ns, config.end_ns, config.levels
    )
    table_names = {"messages": names[0], "orderbook": names[1], "trades": "trades.csv"}
    with tempfile.TemporaryDirectory(dir=out, prefix=".scratch-") as scratch_dir:
        paths = {
            table: _table_path(
                out, Path(scratch_dir), name, outputs.wants_csv(table), outputs.wants_parquet(table)
            )
            for table, name in table_names.items()
        }
        data, sim, lob = _run_loop(config, seed, paths, progress, fork)
        files = [table_names[t] for t in table_names if outputs.wants_csv(t)]
        files += _write_parquet(
            out,
            {t: paths[t] for t in table_names if outputs.wants_parquet(t)},
            table_names,
            config.levels,
        )
    if fork is not None:
        fork.capture.write(out)
        files.append(FORK_FILE)
    return _finish(config, seed, out, outputs, files, data, sim, lob, manifest, fork)


def _run_loop(config: SimConfig, seed: int, paths: dict[str, Path], progress, fork=None):
    # newline="" keeps "\n" on every platform: the files must be byte-identical everywhere.
    with (
        open(paths["messages"], "w", encoding="ascii", newline="") as message_file,
        open(paths["orderbook"], "w", encoding="ascii", newline="") as book_file,
        open(paths["trades"], "w", encoding="utf-8", newline="") as trades,
    ):
        trades.write("time,price,size,aggressor,maker_order_id,taker_order_id,maker,taker\n")
        lob = LobsterBook(
            message_file,
            book_file,
            levels=config.levels,
            price_multiplier=config.price_multiplier,
            lot_size=config.lot_size,
        )
        sim = Simulation(config, seed, lobster=lob, trades_out=trades, progress=progress, fork=fork)
        data = sim.run()
    return data, sim, lob


def fork_summary(fork: ForkStart | None) -> dict | None:
    """What a fork run started from, for its summary and manifest."""
    if fork is None:
        return None
    capture = fork.capture
    return {
        "file": FORK_FILE,
        "symbol": capture.symbol,
        "captured_at": capture.captured_at,
        "journal_id": capture.journal_id,
        "branch": fork.branch.to_dict(),
        "branch_name": fork.branch.name,
    }


def _finish(config, seed, out, outputs, files, data, sim, lob, manifest, fork) -> RunResult:
    names = lobster_file_names(
        config.symbol, config.date, config.start_ns, config.end_ns, config.levels
    )
    bid, ask = lob.bid, lob.ask
    mark = (bid[0] + ask[0]) / 2 if bid and ask else sim.last_price
    if outputs.wants("agents"):
        _write_agents(out / "agents.csv", sim, mark)
        files.append("agents.csv")
    if outputs.wants("bars"):
        _write_bars(out / "bars.csv", data, config)
        files.append("bars.csv")
    series = minute_series(data)
    impact_run = run_impact(
        (getattr(a.strategy, "metaorder", lambda _: None)(a.state) for a in sim.agents), data
    )
    impact = pooled_impact([impact_run])
    facts = realism_facts([series], [data], impact)
    files.append("summary.json")
    if manifest:
        files.append(MANIFEST_NAME)
    if outputs.wants("report"):
        start_hour = config.start_ns / (3600 * NS_PER_S)
        files += write_report(
            out,
            title=f"Realism report: {config.symbol} {config.date}, seed {seed}",
            runs=[series],
            facts=facts,
            price_runs=[(data.mid_by_second, data.fundamental_by_second)],
            spreads=np.array(data.spread_by_second),
            tick_size=float(config.tick_size),
            start_hour=start_hour,
            notes=_notes(config, [seed], data.messages),
            flow=flow_data([data], config, [impact_run], impact),
        )
    by_group: dict[str, dict] = {}
    unit = config.tick_size * config.lot_size
    for a in sim.agents:
        g = by_group.setdefault(
            a.group,
            {"strategy": a.strategy.name, "agents": 0, "trades": 0, "pnl": 0.0, "fees": Decimal(0)},
        )
        g["agents"] += 1
        g["trades"] += a.trades
        g["pnl"] += (a.state.cash + a.state.position * (mark or 0)) - a.initial_cash
        g["fees"] += a.fees
    for g in by_group.values():
        # Net of fees, as the exchange's accounts are.
        g["pnl"] = float(f"{Decimal(repr(float(g['pnl']))) * unit - g['fees']:.2f}")
        g["fees"] = float(g["fees"])
    summary = {
        "symbol": config.symbol,
        "date": config.date,
        "seed": seed,
        "session": {
            "start": format_time_of_day(config.start_ns),
            "end": format_time_of_day(config.end_ns),
        },
        "counts": {
            "messages": data.messages,
            "commands": data.commands,
            "wakes": data.wakes,
            "trades": data.trades,
            "volume_lots": data.volume,
            "marketable_orders_traded": len(data.trade_signs),
            "agents": len(sim.agents),
            "rejections": dict(sorted(data.rejections.items())),
        },
        "prices": _price_stats(data, config),
        "groups": by_group,
        "execution": _execution_reports(sim, config),
        "impact": {**impact_run, **impact},
        "fork": fork_summary(fork),
        "stylized_facts": facts,
        "lobster": {
            "levels": config.levels,
            "message_file": names[0] if "messages" in outputs.tables else None,
            "orderbook_file": names[1] if "orderbook" in outputs.tables else None,
        },
        "outputs": outputs.to_dict(),
        "files": files,
        "config": config.to_dict(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if manifest:
        write_manifest(
            out,
            config=config.to_dict(),
            seeds=[seed],
            outputs=outputs.to_dict(),
            files=[f for f in files if f != MANIFEST_NAME],
            fork=fork_summary(fork),
        )
    return RunResult(seed, out, data, summary, series, files)


def realism_facts(
    series: Sequence[MinuteSeries], data: Sequence[RunData], impact: dict | None = None
) -> dict:
    """The four stylized facts, with the deeper ones under ``"deeper"`` (reported, not
    required by ``--check-facts``) — the square-root impact law's from ``impact`` (a
    ``pooled_impact``; None: no metaorders, not measurable)."""
    facts = stylized_facts(series)
    facts["deeper"] = deeper_facts(series, [np.array(d.trade_signs, dtype=np.int8) for d in data])
    facts["deeper"]["facts"].append(impact_fact(impact or pooled_impact([])))
    return facts


def flow_data(
    data: Sequence[RunData],
    config: SimConfig,
    impact_runs: Sequence[dict] = (),
    impact: dict | None = None,
) -> FlowData:
    sizes: Counter = Counter()
    for d in data:
        sizes.update(d.order_sizes)
    return FlowData(
        signs=[np.array(d.trade_signs, dtype=np.int8) for d in data],
        volume_by_second=[np.array(d.volume_by_second) for d in data],
        order_sizes=sizes,
        start_hour=config.start_ns / (3600 * NS_PER_S),
        impact_runs=impact_runs,
        impact=impact,
    )


def _notes(config: SimConfig, seeds: Sequence[int], messages: int) -> list[str]:
    groups = ", ".join(f"{g.count} {g.name}" for g in config.agents)
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
    return [
        f"{config.symbol}, {format_time_of_day(config.start_ns)}-"
        f"{format_time_of_day(config.end_ns)}, {seed_text}; agents: {groups}.",
        f"{messages:,} LOBSTER messages; returns are 1-minute log changes of the mid-price.",
    ]


def simulate_seeds(
    config: SimConfig,
    seeds: Sequence[int],
    out_dir: str | Path,
    *,
    report: bool = True,
    outputs: OutputChoice | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    fork: ForkStart | None = None,
) -> tuple[list[RunResult], dict]:
    """One run per seed into ``out_dir/seed-N``, then the pooled facts and report in
    ``out_dir`` (``facts.json``, ``report.md``/``report.html``) and a manifest of them all
    (each ``seed-N`` has its own too, so a single day can be verified alone)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    outputs = outputs or OutputChoice()
    if not report:
        outputs = replace(outputs, tables=outputs.tables - {"report"})
    results = []
    files: list[str] = []
    for seed in seeds:
        tick = None if progress is None else (lambda t, m, s=seed: progress(s, t, m))
        result = simulate(
            config, seed, out / f"seed-{seed}", outputs=outputs, progress=tick, fork=fork
        )
        results.append(result)
        # The seed's own manifest is left out of the pooled one: it names the code's commit,
        # which a re-run from another checkout of the same code would not repeat.
        files += [f"seed-{seed}/{f}" for f in result.files if f != MANIFEST_NAME]
    series = [r.series for r in results]
    # Each run's metaorders, normalised by its own volume and volatility, pooled.
    impact_runs = [r.summary["impact"] for r in results]
    impact = pooled_impact(impact_runs)
    facts = realism_facts(series, [r.data for r in results], impact)
    facts["impact"] = impact
    (out / "facts.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    files.append("facts.json")
    if outputs.wants("report"):
        files += write_report(
            out,
            title=f"Realism report: {config.symbol}, {len(seeds)} seeds pooled",
            runs=series,
            facts=facts,
            price_runs=[(r.data.mid_by_second, r.data.fundamental_by_second) for r in results],
            spreads=np.concatenate([np.array(r.data.spread_by_second) for r in results]),
            tick_size=float(config.tick_size),
            start_hour=config.start_ns / (3600 * NS_PER_S),
            notes=_notes(config, list(seeds), sum(r.data.messages for r in results)),
            flow=flow_data([r.data for r in results], config, impact_runs, impact),
        )
    if fork is not None:
        fork.capture.write(out)
        files.append(FORK_FILE)
    write_manifest(
        out,
        config=config.to_dict(),
        seeds=list(seeds),
        outputs=outputs.to_dict(),
        files=files,
        fork=fork_summary(fork),
    )
    return results, facts
