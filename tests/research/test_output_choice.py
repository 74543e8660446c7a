"""The choice of tables and formats, and the Parquet copies read back equal to the CSVs."""

from __future__ import annotations

import csv
import json
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from agents.research import ConfigError, preset, simulate
from agents.research.config import parse_time_of_day
from agents.research.lobster import lobster_file_names
from agents.research.outputs import parse_output_choice
from agents.research.parquet import orderbook_columns


def short_config():
    # Long enough for the 09:40 halt's type-7 rows (order book rows that repeat).
    return preset("small").with_session(end_ns=parse_time_of_day("09:42"))


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    out = tmp_path_factory.mktemp("both")
    simulate(short_config(), 4, out, report=False, outputs=parse_output_choice(None, "csv,parquet"))
    return out


def names(config):
    return lobster_file_names(
        config.symbol, config.date, config.start_ns, config.end_ns, config.levels
    )


def rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_message_parquet_equals_the_csv(both):
    message_csv = names(short_config())[0]
    table = pq.read_table(both / message_csv.replace(".csv", ".parquet")).to_pydict()
    expected = rows(both / message_csv)
    assert len(expected) > 5000 and {r[1] for r in expected} >= {"1", "2", "3", "4", "7"}
    assert list(table) == ["time_ns", "time", "type", "order_id", "size", "price", "direction"]
    for i, (time, kind, order_id, size, price, direction) in enumerate(expected):
        assert table["time_ns"][i] == int(time.replace(".", ""))
        assert table["time"][i] == float(time)
        assert [table[c][i] for c in ("type", "order_id", "size", "price", "direction")] == [
            int(kind), int(order_id), int(size), int(price), int(direction)
        ]  # fmt: skip


def test_orderbook_parquet_equals_the_csv(both):
    config = short_config()
    book_csv = names(config)[1]
    table = pq.read_table(both / book_csv.replace(".csv", ".parquet"))
    assert table.column_names == orderbook_columns(config.levels)
    assert table.column_names[:4] == ["ask_price_1", "ask_size_1", "bid_price_1", "bid_size_1"]
    as_rows = [list(r) for r in zip(*table.to_pydict().values(), strict=True)]
    assert as_rows == [[int(x) for x in r] for r in rows(both / book_csv)]


def test_trades_parquet_equals_the_csv(both):
    table = pq.read_table(both / "trades.parquet").to_pylist()
    with open(both / "trades.csv", newline="") as f:
        expected = list(csv.DictReader(f))
    assert len(table) == len(expected) > 100
    for got, want in zip(table, expected, strict=True):
        assert got["time_ns"] == int(want["time"].replace(".", ""))
        assert Decimal(want["time"]) == Decimal(got["time_ns"]) / 10**9
        for key in ("price", "size", "maker_order_id", "taker_order_id"):
            assert got[key] == int(want[key])
        for key in ("aggressor", "maker", "taker"):
            assert got[key] == want[key]


def test_only_the_chosen_files_are_written(tmp_path):
    config = preset("small").with_session(end_ns=parse_time_of_day("09:32"))
    message_csv, book_csv = names(config)
    out = tmp_path / "messages-parquet"
    result = simulate(config, 2, out, outputs=parse_output_choice("messages,bars", "parquet"))
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    expected = [message_csv.replace(".csv", ".parquet"), "bars.csv", "manifest.json"]
    assert written == sorted([*expected, "summary.json"])  # no scratch files left behind
    assert sorted(result.files) == written
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outputs"] == {
        "tables": ["messages", "bars"],
        "formats": ["parquet"],
        "parquet_tables": ["messages", "orderbook", "trades"],
    }
    assert summary["lobster"]["orderbook_file"] is None
    # The run is the same whatever is written: the same bytes as a run that writes everything.
    assert pq.read_metadata(out / expected[0]).num_rows == result.data.messages
    everything = tmp_path / "everything"
    simulate(config, 2, everything)
    for name in (expected[0], "bars.csv"):
        assert (out / name).read_bytes() == (everything / name).read_bytes(), name

    out = tmp_path / "book-csv"
    simulate(config, 2, out, outputs=parse_output_choice("orderbook,report", "csv"))
    written = {str(p.relative_to(out)) for p in out.iterdir()}
    assert written == {
        book_csv,
        "summary.json",
        "manifest.json",
        "report.md",
        "report.html",
        "plots",
    }


def test_choice_parsing_and_the_command(tmp_path):
    default = parse_output_choice()
    assert default.to_dict()["formats"] == ["csv", "parquet"]
    # By default the order book is CSV only: its Parquet copy costs a sixth of a day's run.
    assert default.wants_parquet("messages") and default.wants_parquet("trades")
    assert default.wants_csv("orderbook") and not default.wants_parquet("orderbook")
    assert parse_output_choice(None, "parquet").wants_parquet("orderbook")
    assert parse_output_choice(" trades , bars ", None).tables == {"trades", "bars"}
    with pytest.raises(ConfigError, match="unknown 'book'"):
        parse_output_choice("book")
    with pytest.raises(ConfigError, match="choose csv, parquet or both"):
        parse_output_choice(None, "")
    with pytest.raises(CommandError, match="--formats: unknown 'feather'"):
        call_command(
            "simulate", "--preset", "small", "--formats", "feather", "--out", str(tmp_path)
        )
    out = tmp_path / "cmd"
    call_command(
        "simulate", "--preset", "small", "--end", "09:31", "--outputs", "trades",
        "--formats", "parquet", "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert {p.name for p in out.iterdir()} == {"trades.parquet", "summary.json", "manifest.json"}
