"""``manage.py simulate``: presets, configuration files with clear errors, and ``--from-db`` with
the agent population configured in the admin (a real database)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from agents.research import ConfigError, config_from_mapping, load_config, preset
from agents.research.from_db import config_from_agent_rows
from agents.research.presets import PRESETS, preset_data


def test_presets_are_valid_and_sized_as_documented():
    for name in PRESETS:
        preset(name)
    counts = {g.strategy: g.count for g in preset("rmsc04").agents}
    assert counts == {"market_maker": 2, "value": 100, "momentum": 12, "noise": 1000}


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        (lambda d: d.update(colour="red"), "colour", "unknown field"),
        (lambda d: d.update(start="9h30"), "start", "time of day"),
        (lambda d: d.update(end="09:00"), "end", "after start"),
        (lambda d: d.update(tick_size="0.00001"), "tick_size", "1/10,000"),
        (lambda d: d["agents"][1].update(strategy="hft"), "agents[1].strategy", "unknown strategy"),
        (lambda d: d["agents"][3]["params"].update(size_max=0), "agents[3].params.size_max", ""),
        (lambda d: d["agents"][0].update(wake_rate_hz=-1), "agents[0].wake_rate_hz", "at least"),
        (lambda d: d["agents"][0].update(latency={"base": 3}), "agents[0].latency.base", ""),
        (lambda d: d.update(shocks=[{"at": "17:00", "pct": 1}]), "shocks[0].at", "inside"),
        (lambda d: d.update(halts=[{"start": "09:40"}]), "halts[0].end", "required"),
        (lambda d: d["fundamental"].update(sd=-1), "fundamental.sd", "at least"),
        (lambda d: d.update(agents=[]), "agents", "non-empty"),
        (lambda d: d["agents"][0].update(count=True), "agents[0].count", "must be an integer"),
        (lambda d: d["agents"][0].update(count=2.5), "agents[0].count", "whole number"),
        (lambda d: d["agents"][0].update(name=""), "agents[0].name", "non-empty string"),
        (lambda d: d["agents"][0].update(latency=3), "agents[0].latency", "mapping"),
        (lambda d: d["agents"][0].update(initial_cash="x"), "agents[0].initial_cash", "decimal"),
        (lambda d: d["agents"][0].update(params=[1]), "agents[0].params", "mapping"),
        (lambda d: d.update(reference_price="nan"), "reference_price", "finite"),
        (lambda d: d.update(symbol="a b"), "symbol", "Not 'a b'"),
        (lambda d: d.update(halts="x"), "halts", "must be a list"),
        (
            lambda d: d.update(activity={"sd": 0.1, "step_s": 9, "half_life_s": 5}),
            "activity.step_s",
            "half_life_s",
        ),
    ],
)
def test_bad_configurations_name_the_field(change, path, fragment):
    data = preset_data("small")
    change(data)
    with pytest.raises(ConfigError) as info:
        config_from_mapping(data)
    assert info.value.path == path
    assert fragment in info.value.message


def test_yaml_and_json_files(tmp_path):
    import yaml

    data = preset("small").to_dict()
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "m.json").write_text(json.dumps(data))
    assert load_config(tmp_path / "m.yaml") == load_config(tmp_path / "m.json") == preset("small")
    (tmp_path / "bad.yaml").write_text("agents: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "m.txt").write_text("{}")
    with pytest.raises(ConfigError, match="must end in"):
        load_config(tmp_path / "m.txt")


def test_command_with_a_config_file(tmp_path, capsys):
    data = preset_data("small")
    data.update(end="09:33", shocks=[], halts=[])
    (tmp_path / "c.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    call_command(
        "simulate", "--config", str(tmp_path / "c.json"), "--seed", "5", "--start", "09:30",
        "--out", str(out), "--no-report", "--no-progress",
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 5 and summary["session"] == {"start": "09:30:00", "end": "09:33:00"}
    assert (out / "ACME_2024-01-02_34200000_34380000_message_5.csv").stat().st_size > 0
    assert not (out / "report.html").exists()
    assert "messages/s" in capsys.readouterr().out


def test_command_rejects_a_bad_config(tmp_path):
    data = preset_data("small")
    data["agents"][0]["params"]["levels"] = 0
    (tmp_path / "c.yaml").write_text(json.dumps(data))
    with pytest.raises(CommandError, match=r"agents\[0\]\.params\.levels: must be at least 1"):
        call_command("simulate", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path))


def test_from_db_rows_conversion_and_errors():
    row = {
        "name": "n1", "strategy": "noise", "symbol": "ACME", "params": {}, "wake_rate_hz": 1.0,
        "max_position": 50, "min_bankroll": Decimal(0), "initial_cash": Decimal("1000"),
        "tick_size": Decimal("0.05"), "lot_size": Decimal("10"),
        "reference_price": Decimal("25.00"),
    }  # fmt: skip
    config = config_from_agent_rows([row])
    assert config.tick_size == Decimal("0.05") and config.lot_size == 10
    assert config.reference_ticks == 500 and config.fundamental["mean"] == 500.0
    with pytest.raises(ConfigError, match="add some in the admin"):
        config_from_agent_rows([])
    with pytest.raises(ConfigError, match="--symbol"):
        config_from_agent_rows([row, row | {"name": "g", "symbol": "GLOBEX"}])
    with pytest.raises(ConfigError, match="whole shares"):
        config_from_agent_rows([row | {"lot_size": Decimal("0.5")}])


@pytest.mark.django_db
def test_command_from_db_simulates_the_admin_population(tmp_path):
    from agents.services import agent_config_create
    from exchange.services import instrument_ensure

    instrument_ensure(
        symbol="RSCH", name="Research Co", tick_size=Decimal("0.01"), lot_size=Decimal(1),
        min_order_qty=Decimal(1), max_order_qty=Decimal(100000),
        reference_price=Decimal("50.00"),
    )  # fmt: skip
    agent_config_create(
        name="mm", strategy="market_maker", symbol="RSCH", params={"levels": 2},
        wake_rate_hz=2.0, max_position=500,
    )  # fmt: skip
    for i in range(6):
        agent_config_create(
            name=f"noise{i}", strategy="noise", symbol="RSCH", wake_rate_hz=1.0, max_position=100
        )
    agent_config_create(name="val", strategy="value", symbol="RSCH", wake_rate_hz=1.0)
    out = tmp_path / "db"
    call_command(
        "simulate", "--from-db", "--symbol", "RSCH", "--seed", "2", "--end", "09:35",
        "--out", str(out), "--no-progress",
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["symbol"] == "RSCH" and summary["counts"]["agents"] == 8
    assert summary["counts"]["trades"] > 0
    assert {a["name"] for a in summary["config"]["agents"]} == {
        "mm", "val", *(f"noise{i}" for i in range(6))
    }  # fmt: skip
    assert summary["prices"]["open_mid"] == pytest.approx(50.0, abs=0.5)
    with pytest.raises(CommandError, match="no enabled agents trade 'NOPE'"):
        call_command("simulate", "--from-db", "--symbol", "NOPE", "--out", str(tmp_path))
