"""A short run of the small preset, end to end: the LOBSTER files replayed row by row against the
format's rules, the other outputs checked against them and against the engine, and the same
config and seed giving byte-identical files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from agents.research import preset, simulate
from agents.research.config import parse_time_of_day
from agents.research.lobster import lobster_file_names

from .lobster_replay import book_row, read_book, read_messages, replay

SEED = 7


@pytest.fixture(scope="module")
def small_config():
    return preset("small")


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_config):
    out = tmp_path_factory.mktemp("small")
    return simulate(small_config, SEED, out)


def lobster_paths(config, out: Path) -> tuple[Path, Path]:
    names = lobster_file_names(
        config.symbol, config.date, config.start_ns, config.end_ns, config.levels
    )
    return out / names[0], out / names[1]


def test_lobster_files_replay_exactly(run, small_config):
    message_path, book_path = lobster_paths(small_config, run.out_dir)
    assert message_path.name == "ACME_2024-01-02_34200000_35100000_message_5.csv"
    assert book_path.name == "ACME_2024-01-02_34200000_35100000_orderbook_5.csv"
    messages = read_messages(message_path)
    book = read_book(book_path, small_config.levels)
    assert len(messages) == run.data.messages > 10_000
    resting = replay(messages, book, small_config.levels)

    # Every kind of row occurs, and the times stay inside the session.
    kinds = {m.kind for m in messages}
    assert {1, 2, 3, 4, 7} <= kinds, kinds
    assert 34200 <= float(messages[0].time) and float(messages[-1].time) < 35100

    # The replayed book at the end is the engine's book.
    sim_book = run.data  # counts only; the engine's own depth is checked in test_simulator
    assert sim_book.trades == sum(m.kind == 4 for m in messages)
    assert resting, "orders rest at the close"


def test_empty_levels_are_filled_as_lobster_does(run, small_config):
    _, book_path = lobster_paths(small_config, run.out_dir)
    first = read_book(book_path, small_config.levels)[0]
    # The very first row has one order on the book: every other level is the filler.
    fillers = [first[i : i + 2] for i in range(0, len(first), 2)]
    assert fillers.count([9999999999, 0]) + fillers.count([-9999999999, 0]) == 2 * 5 - 1
    assert book_row({}, 2) == [9999999999, 0, -9999999999, 0] * 2


def test_halt_rows_repeat_the_book(run, small_config):
    message_path, book_path = lobster_paths(small_config, run.out_dir)
    messages = read_messages(message_path)
    book = read_book(book_path, small_config.levels)
    halts = [k for k, m in enumerate(messages) if m.kind == 7]
    assert [messages[k].price for k in halts] == [-1, 1]
    assert [messages[k].time for k in halts] == ["34800.000000000", "34860.000000000"]
    for k in halts:
        assert book[k] == book[k - 1]
    # Nothing executes while the book is halted.
    assert not any(m.kind in (1, 4) for m in messages[halts[0] : halts[1]])
    assert run.summary["counts"]["rejections"].get("BOOK_HALTED", 0) > 0


def test_trades_match_executions(run, small_config):
    message_path, _ = lobster_paths(small_config, run.out_dir)
    executions = [m for m in read_messages(message_path) if m.kind == 4]
    with open(run.out_dir / "trades.csv") as f:
        trades = list(csv.DictReader(f))
    assert len(trades) == len(executions)
    for m, t in zip(executions, trades, strict=True):
        assert (m.time, m.price, m.size) == (t["time"], int(t["price"]), int(t["size"]))
        assert int(t["maker_order_id"]) == m.order_id
        # A sell limit order executed (-1) is a buyer-initiated trade.
        assert t["aggressor"] == ("buy" if m.direction == -1 else "sell")


def test_agents_and_summary(run, small_config):
    with open(run.out_dir / "agents.csv") as f:
        agents = list(csv.DictReader(f))
    assert len(agents) == small_config.agent_count
    assert sum(int(a["position"]) for a in agents) == 0  # every lot bought was sold
    assert {a["strategy"] for a in agents} == {"market_maker", "value", "momentum", "noise"}
    summary = json.loads((run.out_dir / "summary.json").read_text())
    assert summary["seed"] == SEED
    assert summary["counts"]["messages"] == run.data.messages
    assert summary["counts"]["trades"] == sum(int(a["trades"]) for a in agents) // 2
    assert summary["config"]["agents"][0]["strategy"] == "market_maker"
    assert [f["key"] for f in summary["stylized_facts"]["facts"]] == [
        "heavy_tails",
        "no_linear_autocorrelation",
        "volatility_clustering",
        "volume_volatility",
    ]
    deeper = summary["stylized_facts"]["deeper"]
    assert [f["key"] for f in deeper["facts"]] == [
        "tail_index",
        "abs_return_decay",
        "order_flow_memory",
        "impact",
    ]
    assert deeper["facts"][2]["value"]["signs"] == summary["counts"]["marketable_orders_traded"]
    # No execution agents in the small preset: the impact law cannot be measured, not failed.
    assert deeper["facts"][3]["met"] is None
    assert summary["impact"]["metaorders"] == [] and summary["impact"]["fit"] is None
    for name in summary["files"]:
        assert (run.out_dir / name).is_file(), name
    report = (run.out_dir / "report.md").read_text()
    assert "| Heavy tails" in report and "plots/price_path.png" in report
    assert "## Deeper realism" in report and "| Power-law tails" in report
    assert "plots/intraday_volume.png" in report and "plots/order_sizes.png" in report
    assert "| Square-root impact of metaorders | **not measurable** |" in report
    assert "plots/metaorder_impact.png" in report
    assert (run.out_dir / "plots" / "price_path.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bars = (run.out_dir / "bars.csv").read_text().splitlines()
    assert bars[0] == "minute_end,mid,spread_ticks,volume,trades" and len(bars) == 1 + 15


def test_same_config_and_seed_give_byte_identical_files(tmp_path, small_config):
    config = small_config.with_session(end_ns=parse_time_of_day("09:38"))
    first = simulate(config, 11, tmp_path / "a")
    second = simulate(config, 11, tmp_path / "b")
    other = simulate(config, 12, tmp_path / "c", report=False)
    files = sorted(p.relative_to(first.out_dir) for p in first.out_dir.rglob("*") if p.is_file())
    # 2 LOBSTER, trades, Parquet copies of the messages and trades (by default not of the order
    # book), agents, bars, summary, manifest, 2 reports, 11 plots (5 + 6 of the deeper realism)
    assert len(files) == 22
    assert files == sorted(
        p.relative_to(second.out_dir) for p in second.out_dir.rglob("*") if p.is_file()
    )
    for name in files:
        assert (first.out_dir / name).read_bytes() == (second.out_dir / name).read_bytes(), name
    message_file = lobster_paths(config, first.out_dir)[0].name
    assert (first.out_dir / message_file).read_bytes() != (
        other.out_dir / message_file
    ).read_bytes()
