"""One simulated day (or several seeds of it) from configuration to files on disk.

``DIR`` gets, for a single run:

* the LOBSTER message and order book files (``TICKER_DATE_STARTMS_ENDMS_{message|orderbook}_N``);
* ``trades.csv`` (one row per execution, with both agents), ``agents.csv`` (per-agent results),
  ``bars.csv`` (per-minute mid, volume, trades, spread);
* ``summary.json`` (the configuration, counts, prices, the execution agents' costs and the
  stylized facts of this run);
* the realism report, ``report.md`` / ``report.html`` with ``plots/*.png``.

Every file is a pure function of the configuration and the seed (no wall-clock times in them),
so the same inputs give byte-identical outputs. Wall-clock speed is returned, never written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from exchange.protocol.decimals import money_str

from .config import SimConfig, format_time_of_day
from .lobster import LobsterBook, lobster_file_names, open_lobster_files
from .metrics import MinuteSeries, stylized_facts
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


def simulate(
    config: SimConfig,
    seed: int,
    out_dir: str | Path,
    *,
    report: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Runs one day and writes its files into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = lobster_file_names(
        config.symbol, config.date, config.start_ns, config.end_ns, config.levels
    )
    message_file, book_file = open_lobster_files(out, names)
    with (
        message_file,
        book_file,
        open(out / "trades.csv", "w", encoding="utf-8", newline="") as trades,
    ):
        trades.write("time,price,size,aggressor,maker_order_id,taker_order_id,maker,taker\n")
        lob = LobsterBook(
            message_file,
            book_file,
            levels=config.levels,
            price_multiplier=config.price_multiplier,
            lot_size=config.lot_size,
        )
        sim = Simulation(config, seed, lobster=lob, trades_out=trades, progress=progress)
        data = sim.run()

    bid, ask = lob.bid, lob.ask
    mark = (bid[0] + ask[0]) / 2 if bid and ask else sim.last_price
    _write_agents(out / "agents.csv", sim, mark)
    _write_bars(out / "bars.csv", data, config)
    series = minute_series(data)
    facts = stylized_facts([series])
    files = [*names, "trades.csv", "agents.csv", "bars.csv", "summary.json"]
    if report:
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
            "agents": len(sim.agents),
            "rejections": dict(sorted(data.rejections.items())),
        },
        "prices": _price_stats(data, config),
        "groups": by_group,
        "execution": _execution_reports(sim, config),
        "stylized_facts": facts,
        "lobster": {"levels": config.levels, "message_file": names[0], "orderbook_file": names[1]},
        "files": files,
        "config": config.to_dict(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return RunResult(seed, out, data, summary, series)


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
    progress: Callable[[int, int, int], None] | None = None,
) -> tuple[list[RunResult], dict]:
    """One run per seed into ``out_dir/seed-N``, then the pooled facts and report in
    ``out_dir`` (``facts.json``, ``report.md``/``report.html``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in seeds:
        tick = None if progress is None else (lambda t, m, s=seed: progress(s, t, m))
        results.append(simulate(config, seed, out / f"seed-{seed}", report=report, progress=tick))
    series = [r.series for r in results]
    facts = stylized_facts(series)
    (out / "facts.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    if report:
        write_report(
            out,
            title=f"Realism report: {config.symbol}, {len(seeds)} seeds pooled",
            runs=series,
            facts=facts,
            price_runs=[(r.data.mid_by_second, r.data.fundamental_by_second) for r in results],
            spreads=np.concatenate([np.array(r.data.spread_by_second) for r in results]),
            tick_size=float(config.tick_size),
            start_hour=config.start_ns / (3600 * NS_PER_S),
            notes=_notes(config, list(seeds), sum(r.data.messages for r in results)),
        )
    return results, facts
