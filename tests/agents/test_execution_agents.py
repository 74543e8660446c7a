"""TWAP and POV execution agents: their schedules, how they work and catch up, and what their
execution cost is against the arrival price and the market's VWAP; and a TWAP parent order
worked to the end in the research simulator's market."""

from __future__ import annotations

import io
import json
import random

import pytest

from agents.research.config import config_from_mapping, parse_time_of_day
from agents.research.lobster import LobsterBook
from agents.research.presets import preset_data
from agents.research.run import simulate
from agents.research.simulator import Simulation
from agents.strategies import (
    STRATEGIES,
    AgentState,
    Cancel,
    MarketView,
    ParamError,
    PovStrategy,
    Trade,
    TwapStrategy,
)

S = 1_000_000_000


def view(t_s: float, bid=(99, 50), ask=(101, 50), trades=()) -> MarketView:
    return MarketView(int(t_s * S), bid=bid, ask=ask, trades=tuple(trades))


def test_both_are_registered_with_checked_parameters():
    assert {"twap", "pov"} <= set(STRATEGIES)
    with pytest.raises(ParamError) as error:
        TwapStrategy({"quantity": 0}, random.Random(1))
    assert error.value.field == "quantity"
    with pytest.raises(ParamError) as error:
        PovStrategy({"participation": 0.9}, random.Random(1))
    assert error.value.field == "participation"


def test_twap_rests_its_shortfall_at_the_touch_then_catches_up_by_taking():
    twap = TwapStrategy(
        {"side": "buy", "quantity": 100, "horizon_s": 100.0, "catch_up_lots": 20},
        random.Random(1),
    )
    state = AgentState()
    assert twap.decide(view(0), state) == []  # arrival: nothing due yet
    actions = twap.decide(view(10), state)  # 10 due
    assert [(a.side, a.qty, a.price, a.tif, a.tag) for a in actions] == [
        ("buy", 10, 99, "gtc", "x")
    ]
    state.add_order(1, "buy", 99, 10, "x", int(10 * S))
    assert twap.decide(view(11), state) == []  # its child rests at the touch: nothing to do
    # 40 s in, 40 due, nothing done: 40 behind > 20 lots, so it takes through the ask.
    actions = twap.decide(view(40), state)
    assert actions[0] == Cancel(1)
    assert [(a.side, a.qty, a.price, a.tif) for a in actions[1:]] == [("buy", 40, 103, "ioc")]
    state.remove_order(1)
    state.apply_trade("buy", 101, 40)
    # On schedule again at 45 s (45 due, 40 done): a passive child for the 5 lots.
    actions = twap.decide(view(45, bid=(100, 5)), state)
    assert [(a.qty, a.price, a.tif) for a in actions] == [(5, 100, "gtc")]


def test_twap_takes_what_is_left_at_its_horizon_and_stops_when_done():
    twap = TwapStrategy({"side": "sell", "quantity": 30, "horizon_s": 60.0}, random.Random(1))
    state = AgentState()
    twap.decide(view(0), state)
    state.apply_trade("sell", 101, 25)
    actions = twap.decide(view(60), state)  # the horizon: the last 5 go now, through the bid
    assert [(a.side, a.qty, a.price, a.tif) for a in actions] == [("sell", 5, 97, "ioc")]
    state.apply_trade("sell", 99, 5)
    state.add_order(7, "sell", 101, 3, "x", 0)  # a child left over
    assert twap.decide(view(61), state) == [Cancel(7)]


def test_a_delayed_parent_order_starts_late_and_records_itself_as_a_metaorder():
    twap = TwapStrategy(
        {"side": "sell", "quantity": 30, "horizon_s": 60.0, "delay_s": 100.0}, random.Random(1)
    )
    state = AgentState()
    # Waiting: nothing sent, no arrival yet, whatever the market does (the mid moves to 105).
    assert twap.decide(view(5), state) == [] and twap.arrival is None
    assert twap.decide(view(104.9, bid=(104, 5), ask=(106, 5)), state) == []
    assert twap.metaorder(state) is None
    # It starts at the first wake 100 s after its first one: the arrival is the mid then.
    assert twap.decide(view(105.5, bid=(100, 5), ask=(102, 5)), state) == []
    assert twap.arrival == 101.0
    # Its schedule runs from its start, not its first wake: 30 s in, 15 of 30 due (135 s after
    # its first wake would have been all 30), rested at the ask.
    actions = twap.decide(view(135.5, bid=(100, 50), ask=(102, 50)), state)
    assert [(a.side, a.qty, a.price, a.tif) for a in actions] == [("sell", 15, 102, "gtc")]
    state.apply_trade("sell", 100, 30)
    assert twap.decide(view(140.5, bid=(98, 5), ask=(99, 5)), state) == []  # done
    assert twap.decide(view(150.5, bid=(90, 5), ask=(91, 5)), state) == []
    assert twap.metaorder(state) == {
        "sign": -1,
        "quantity": 30,
        "done": 30,
        "start_ns": int(105.5 * S),
        "end_ns": int(140.5 * S),  # the wake that saw it done, not a later one
        "arrival": 101.0,
        "end_mid": 98.5,
    }
    with pytest.raises(ParamError) as error:
        TwapStrategy({"delay_s": -1.0}, random.Random(1))
    assert error.value.field == "delay_s"


def test_pov_follows_the_markets_volume_counting_each_trade_once():
    pov = PovStrategy(
        {"side": "buy", "quantity": 1000, "participation": 0.2, "catch_up_lots": 1000},
        random.Random(1),
    )
    state = AgentState()
    before = [Trade(1, 100, 500, "buy")]  # before its arrival: not its market's
    assert pov.decide(view(1, trades=before), state) == []
    window = [*before, Trade(int(2 * S), 100, 30, "sell"), Trade(int(3 * S), 102, 20, "buy")]
    actions = pov.decide(view(4, trades=window), state)
    assert pov.market_qty == 50
    assert [(a.qty, a.price) for a in actions] == [(10, 99)]  # 20 % of 50
    # The same window again adds nothing; a new trade adds its volume.
    pov.decide(view(5, trades=window), state)
    assert pov.market_qty == 50
    pov.decide(view(6, trades=[*window, Trade(int(6 * S), 101, 50, "buy")]), state)
    assert pov.market_qty == 100


def test_the_cost_against_arrival_and_vwap_in_basis_points():
    twap = TwapStrategy({"side": "buy", "quantity": 10, "horizon_s": 10.0}, random.Random(1))
    state = AgentState()
    twap.decide(view(0, bid=(99, 5), ask=(101, 5)), state)  # arrival mid 100
    market = [Trade(int(1 * S), 100, 10, "buy"), Trade(int(2 * S), 104, 10, "buy")]  # VWAP 102
    state.apply_trade("buy", 101, 4)
    state.apply_trade("buy", 102, 6)  # average 101.6
    twap.decide(view(3, trades=market), state)
    report = twap.report(state)
    assert (report["done"], report["left"], report["arrival"], report["vwap"]) == (10, 0, 100, 102)
    assert report["average"] == pytest.approx(101.6)
    assert report["cost_vs_arrival_bps"] == pytest.approx(160.0)  # paid 1.6 % over arrival
    assert report["cost_vs_vwap_bps"] == pytest.approx(-39.2157, abs=1e-3)  # beat the VWAP
    seller = TwapStrategy({"side": "sell", "quantity": 5}, random.Random(1))
    short = AgentState()
    seller.decide(view(0), short)
    short.apply_trade("sell", 99, 5)  # sold 1 % under the arrival mid: a cost
    assert seller.report(short)["cost_vs_arrival_bps"] == pytest.approx(100.0)


def test_a_twap_parent_order_is_worked_to_the_end_in_the_simulated_market():
    data = preset_data("small")
    data["agents"].append(
        {
            "name": "exec",
            "strategy": "twap",
            "count": 1,
            "wake_rate_hz": 1.0,
            "params": {"side": "buy", "quantity": 200, "horizon_s": 240.0},
        }
    )
    config = config_from_mapping(data).with_session(end_ns=parse_time_of_day("09:36"))
    lob = LobsterBook(
        io.StringIO(), io.StringIO(), levels=config.levels,
        price_multiplier=config.price_multiplier, lot_size=config.lot_size,
    )  # fmt: skip
    sim = Simulation(config, 3, lobster=lob)
    sim.run()
    (agent,) = [a for a in sim.agents if a.strategy.name == "twap"]
    report = agent.strategy.report(agent.state)
    assert (report["done"], report["left"]) == (200, 0)
    assert report["average"] is not None and report["vwap"] is not None
    assert abs(report["cost_vs_arrival_bps"]) < 500  # a few ticks on 100.00, not nonsense


def test_a_runs_summary_reports_each_execution_agents_cost(tmp_path):
    data = preset_data("small")
    data["agents"].append(
        {
            "name": "exec",
            "strategy": "pov",
            "count": 1,
            "wake_rate_hz": 2.0,
            "params": {"side": "sell", "quantity": 50, "participation": 0.1},
        }
    )
    config = config_from_mapping(data).with_session(end_ns=parse_time_of_day("09:34"))
    result = simulate(config, 5, tmp_path, report=False)
    (row,) = json.loads((tmp_path / "summary.json").read_text())["execution"]
    assert (row["strategy"], row["side"], row["quantity"]) == ("pov", "sell", 50)
    assert row["done"] + row["left"] == 50 and row["done"] > 0
    assert 90 < row["arrival"] < 110 and 90 < row["average"] < 110  # prices, not ticks
    assert isinstance(row["cost_vs_vwap_bps"], float)
    assert result.summary["execution"] == [row]
