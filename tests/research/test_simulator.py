"""The simulator's own rules: agents' books match the engine, latency keeps each agent's messages
in order, shocks move the market, strategies never keep the (reused) view."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from agents.research import preset
from agents.research.config import parse_time_of_day
from agents.research.lobster import LobsterBook
from agents.research.simulator import Simulation
from agents.runner import runner as runner_module
from agents.runner.market import SymbolMarket
from agents.strategies import AgentState, MarketView


def make_sim(config, seed=1):
    lob = LobsterBook(
        io.StringIO(), io.StringIO(), levels=config.levels,
        price_multiplier=config.price_multiplier, lot_size=config.lot_size,
    )  # fmt: skip
    return Simulation(config, seed, lobster=lob)


@pytest.fixture(scope="module")
def finished():
    config = preset("small").with_session(end_ns=parse_time_of_day("09:38"))
    sim = make_sim(config)
    sim.run()
    return sim


def test_agent_books_match_the_engine(finished):
    sim = finished
    exposures = sim.book.exposures()
    resting: dict[int, dict[int, tuple]] = {}
    for o in sim.book.resting_orders():
        resting.setdefault(o.account, {})[o.order_id] = (o.side, o.price, o.qty)
    for agent in sim.agents:
        state = agent.state
        held = exposures.get(agent.account)
        assert state.position == (held.position if held else 0), agent.name
        # Orders still in flight at the close (decided, not delivered) are in the state only.
        own = {
            sim.key_to_eid[k]: (o.side, o.price, o.qty)
            for k, o in state.open_orders.items()
            if k in sim.key_to_eid
        }
        assert own == resting.get(agent.account, {}), agent.name
    assert sum(a.state.position for a in sim.agents) == 0
    assert sum(a.state.cash - a.initial_cash for a in sim.agents) == 0  # cash changes hands
    # The LOBSTER mirror is the engine's book.
    bids, asks = sim.book.depth(50)
    assert sim.lob.depth(50) == (bids, asks)


def test_deliveries_keep_each_agents_order_and_its_latency():
    config = preset("small").with_session(end_ns=parse_time_of_day("09:31"))
    sim = make_sim(config, seed=3)
    seen: dict[int, int] = {}
    original = sim._deliver

    def deliver(agent, payload, now):
        assert now >= seen.get(agent.account, 0), "an agent's messages overtook each other"
        seen[agent.account] = now
        original(agent, payload, now)

    sim._deliver = deliver
    sim.run()
    assert len(seen) > 10, "nothing was delivered"
    # Each agent's base latency is drawn once inside its group's range: makers 50 us +-20 %,
    # the crowd 2 ms +-50 %; jitter means are 10 us and 0.5 ms.
    for agent in sim.agents:
        if agent.group == "maker":
            assert 40_000 <= agent.base_latency_ns <= 60_000 and agent.jitter_ns == 10_000
        else:
            assert 1_000_000 <= agent.base_latency_ns <= 3_000_000 and agent.jitter_ns == 500_000
    assert len({a.base_latency_ns for a in sim.agents}) == len(sim.agents)


def test_a_shock_moves_the_price():
    config = preset("small")  # a -1 % shock at 09:36
    sim = make_sim(config, seed=5)
    data = sim.run()
    mid_before = data.mid_by_second[5 * 60 - 1]  # 09:35
    mid_after = data.mid_by_second[9 * 60 - 1]  # 09:39
    assert mid_after < mid_before - 50, (mid_before, mid_after)  # 1 % of 10,000 ticks is 100


def test_strategies_never_keep_the_view(finished):
    def holds_view(value, depth=0) -> bool:
        if isinstance(value, MarketView):
            return True
        if depth < 2 and isinstance(value, list | tuple | dict | set):
            items = value.values() if isinstance(value, dict) else value
            return any(holds_view(v, depth + 1) for v in list(items)[:50])
        return False

    for agent in finished.agents:
        strategy = agent.strategy
        names = [n for cls in type(strategy).__mro__ for n in getattr(cls, "__slots__", ())]
        values = list(vars(strategy).values()) if hasattr(strategy, "__dict__") else []
        values += [getattr(strategy, n) for n in names if hasattr(strategy, n)]
        assert not any(holds_view(v) for v in values), agent.name


def test_a_wash_trade_is_booked_as_the_live_runner_books_it(monkeypatch):
    """An agent's buy hits its own resting sell: the simulator fills both orders and moves
    neither position nor cash, exactly as the live runner (and the exchange's recorder) book a
    self-trade."""
    # Both sides cancel out in cash and position whichever way a wash is booked, so the test
    # also records how each side is applied to the agent's state.
    applied = []
    apply_trade = AgentState.apply_trade

    def spy(self, side, price, qty, key=None, *, wash=False):
        applied.append((side, price, qty, wash))
        return apply_trade(self, side, price, qty, key, wash=wash)

    monkeypatch.setattr(AgentState, "apply_trade", spy)
    sim = make_sim(preset("small"))
    agent = sim.agents[0]
    state = agent.state
    before = (state.cash, state.position)
    events = []
    # The simulator's own orders always carry self-trade prevention (cancel_newest), so the
    # wash trade needs orders sent by hand, without it.
    for side, qty in (("sell", 10), ("buy", 4)):
        key, eid = sim.next_key, sim.next_eid
        sim.next_key, sim.next_eid = key + 1, eid + 1
        state.add_order(key, side, 10_000, qty)
        sim.key_to_eid[key], sim.eid_to_key[eid] = eid, key
        sent = sim.book.new_order(eid, agent.account, side, 10_000, qty, stp="none")
        sim._apply(sent, sim.start_ns, eid, side == "buy", 10_000, qty)
        events.extend(sent)
    assert [e.kind for e in events].count("trade") == 1
    (trade,) = (e for e in events if e.kind == "trade")
    assert trade.maker_account == trade.taker_account == agent.account
    assert (state.cash, state.position) == before
    assert [(o.side, o.qty) for o in state.open_orders.values()] == [("sell", 6)]
    assert agent.trades == 2  # it was both maker and taker
    assert sim.book.exposures()[agent.account].position == 0  # the engine agrees
    assert applied == [("sell", 10_000, 4, True), ("buy", 10_000, 4, True)]
    simulated, applied[:] = list(applied), []

    # The same events through the live runner's event follower.
    instrument = SimpleNamespace(symbol="ACME", tick_size=1, lot_size=1)
    config = SimpleNamespace(
        pk=1, name="a", strategy="noise", params={}, enabled=True, wake_rate_hz=1.0,
        account=SimpleNamespace(cash=0, default_max_position=1000, min_bankroll=0, initial_cash=0),
        account_id=agent.account, instrument=instrument, updated_at=1,
    )  # fmt: skip
    runner = runner_module.Runner()
    try:
        live = runner._add_agent(config)
        runner.markets["ACME"] = SymbolMarket("ACME", book_key="-", reference_ticks=1, seed=1)
        live.state.cash, live.state.position = before
        for e in events:
            if e.kind == "accepted":
                live.state.add_order(e.order_id, e.side, e.price, e.qty)
        monkeypatch.setattr(runner_module.flashbook_engine, "decode_events", lambda _: events)
        runner._apply_entry("ACME", "1-0", {"last": str(events[-1].seq), "e": ""})
    finally:
        runner.desk.close()
    assert (live.state.cash, live.state.position) == (state.cash, state.position)
    assert [(o.side, o.qty) for o in live.state.open_orders.values()] == [("sell", 6)]
    assert applied == simulated


def test_the_simulated_market_has_the_live_exchanges_price_band():
    from dataclasses import replace
    from decimal import Decimal

    from agents.research.config import ConfigError, config_from_mapping

    config = preset("small")
    assert config.price_band_pct == Decimal("10")
    sim = make_sim(config)
    reference = config.reference_ticks
    assert sim.book.band_limits == (reference - reference // 10, reference + reference // 10)
    narrow = make_sim(replace(config, price_band_pct=Decimal("0.5")))
    assert narrow.book.band_limits == (reference - reference // 200, reference + reference // 200)
    assert make_sim(replace(config, price_band_pct=Decimal("0"))).book.band_limits is None

    data = config.to_dict()
    assert data["price_band_pct"] == "10"
    with pytest.raises(ConfigError, match="price_band_pct"):
        config_from_mapping({**data, "price_band_pct": "-1"})
    assert config_from_mapping({**data, "price_band_pct": 2.5}).band_bps == 250


def test_a_shock_trips_the_volatility_pause_with_type_7_rows_as_the_live_engine_would():
    from dataclasses import replace
    from decimal import Decimal

    from agents.research.config import Shock

    config = preset("small").with_session(end_ns=parse_time_of_day("09:40"))
    shock_at = parse_time_of_day("09:33")
    shocked = replace(
        config,
        # The small population walks slowly even after a shock (under 1 % a minute): a tight
        # guard, so that the shock's move trips it.
        volatility_move_pct=Decimal("0.5"),
        volatility_window_s=120,
        volatility_pause_s=20,
        shocks=(Shock(shock_at, -15.0, True),),
    )
    messages = io.StringIO()
    lob = LobsterBook(
        messages, io.StringIO(), levels=shocked.levels,
        price_multiplier=shocked.price_multiplier, lot_size=shocked.lot_size,
    )  # fmt: skip
    sim = Simulation(shocked, 1, lobster=lob)
    assert sim.book.volatility[:3] == (50, 120_000, 20_000)
    data = sim.run()
    rows = [line.split(",") for line in messages.getvalue().splitlines()]
    halts = [(float(r[0]), int(r[4])) for r in rows if r[1] == "7"]
    assert halts, "the shock moved the price more than 0.5 % within two minutes: a pause"
    # Each pause is a -1 row then a +1 row 20 s later (the engine's clock is the simulated one).
    assert [code for _, code in halts[:2]] == [-1, 1]
    assert halts[1][0] - halts[0][0] == pytest.approx(20, abs=0.001)
    assert data.rejections["VOLATILITY_PAUSE"] > 0, "orders sent during a pause are refused"
    # Off, the same run has no pause.
    calm = make_sim(replace(shocked, volatility_move_pct=Decimal("0")))
    calm.run()
    assert calm.data.rejections["VOLATILITY_PAUSE"] == 0


def test_fees_are_charged_by_the_exchanges_rule_and_the_results_are_net_of_them(tmp_path):
    from dataclasses import replace
    from decimal import Decimal

    from agents.research.run import _write_agents
    from exchange.protocol.fees import fee_amount

    config = replace(
        preset("small").with_session(end_ns=parse_time_of_day("09:36")),
        maker_fee_bps=-1,
        taker_fee_bps=3,
    )
    trades = io.StringIO()
    lob = LobsterBook(
        io.StringIO(), io.StringIO(), levels=config.levels,
        price_multiplier=config.price_multiplier, lot_size=config.lot_size,
    )  # fmt: skip
    sim = Simulation(config, 1, lobster=lob, trades_out=trades)
    assert sim.book.fees == (-1, 3)
    sim.run()
    total = sum((a.fees for a in sim.agents), Decimal(0))
    assert total > 0, "takers pay more than makers are rebated"
    assert any(a.fees < 0 for a in sim.agents), "a passive agent earns rebates"
    # Each trade: the maker's rebate and the taker's fee, by the exchange's rule.
    expected = Decimal(0)
    for row in trades.getvalue().splitlines():
        _, price, qty, *_ = row.split(",")
        value = Decimal(price) / 10_000 * Decimal(qty)  # LOBSTER prices: dollars x 10,000
        expected += fee_amount(value, -1, 2) + fee_amount(value, 3, 2)
    assert expected != 0 and total == expected
    unit = config.tick_size * config.lot_size
    path = tmp_path / "agents.csv"
    _write_agents(path, sim, None)
    header, *rows = path.read_text().splitlines()
    assert header.endswith(",pnl,fees")
    first = dict(zip(header.split(","), rows[0].split(","), strict=True))
    agent = sim.agents[0]
    assert Decimal(first["fees"]) == agent.fees
    assert Decimal(first["cash"]) == agent.state.cash * unit - agent.fees


def test_agents_with_cash_are_held_to_it_as_the_live_exchange_holds_accounts():
    from dataclasses import replace
    from decimal import Decimal

    config = preset("small").with_session(end_ns=parse_time_of_day("09:40"))
    # Little cash for every group: buys beyond it are refused before they reach the book.
    groups = tuple(replace(g, initial_cash=Decimal("2000")) for g in config.agents)
    sim = make_sim(replace(config, agents=groups, taker_fee_bps=5))
    data = sim.run()
    assert data.rejections["INSUFFICIENT_FUNDS"] > 0
    unit = config.tick_size * config.lot_size
    for agent in sim.agents:
        assert agent.cash_limited
        # Never spent more than it had: what it paid for buys and fees came out of its cash.
        assert agent.state.cash * unit - agent.fees >= 0, agent.name
    # Without cash (the presets' default) nothing is refused for it.
    free = make_sim(config)
    assert free.run().rejections["INSUFFICIENT_FUNDS"] == 0
