"""The runner's per-agent book-keeping, without I/O: events in any order relative to the
gateway's answers keep the state true; seeds are per name."""

import random
from decimal import Decimal as D
from types import SimpleNamespace

from agents.runner.agent import LiveAgent, derive_seed
from agents.strategies import MarketView, Place


def account(**overrides):
    """The agent's account: its cash and its limits."""
    fields = dict(
        cash=D(100000), default_max_position=50, min_bankroll=D(90000), initial_cash=D(100000)
    )
    fields.update(overrides)
    return SimpleNamespace(**fields)


def config(name="a", **overrides):
    instrument = SimpleNamespace(symbol="ACME", tick_size=D("0.01"), lot_size=D("1"))
    fields = dict(
        pk=1,
        name=name,
        strategy="noise",
        params={},
        enabled=True,
        wake_rate_hz=1.0,
        account=account(),
        account_id=11,
        instrument=instrument,
        updated_at=1,
    )
    fields.update(overrides)
    return SimpleNamespace(**fields)


def order(order_id):
    return SimpleNamespace(order_id=order_id)


def test_seeds_are_per_name_so_adding_an_agent_changes_no_other():
    assert derive_seed(7, "agent/a") == derive_seed(7, "agent/a")
    assert derive_seed(7, "agent/a") != derive_seed(8, "agent/a")
    assert derive_seed(7, "agent/a") != derive_seed(7, "agent/b")
    alone = LiveAgent(config("a"), 7)
    with_friend = LiveAgent(config("a"), 7)
    LiveAgent(config("b"), 7)
    assert [alone.rng.random() for _ in range(5)] == [with_friend.rng.random() for _ in range(5)]
    assert isinstance(alone.rng, random.Random)


def test_fills_before_the_gateway_answers_are_not_lost():
    agent = LiveAgent(config(), 1)
    place = Place("buy", 10, 10_000, "gtc", False, "n")
    agent.submitting()
    # The engine was quicker than the gateway's answer: 4 lots filled already.
    agent.on_trade("buy", 10_000, 4, 77, wash=False)
    agent.submitted(order(77), place, 0)
    assert agent.state.position == 4 and agent.state.open_orders[77].qty == 6
    assert agent.cash() == D(100000) - D("400.00")
    agent.on_trade("buy", 10_000, 6, 77, wash=False)
    assert 77 not in agent.state.open_orders and agent.state.position == 10
    assert agent.early == {}

    # Done (cancelled, rejected) before the answer: never recorded as open.
    agent.submitting()
    agent.on_done(78)
    agent.submitted(order(78), Place("sell", 5, 10_100, "gtc"), 0)
    assert 78 not in agent.state.open_orders
    # An IOC is never an open order; its fills still count.
    agent.submitting()
    agent.on_trade("sell", 9_990, 2, 79, wash=False)
    agent.submitted(order(79), Place("sell", 2, 9_990, "ioc"), 0)
    assert agent.state.position == 8 and not agent.state.open_orders


def test_washes_replaces_rejections_and_reset():
    agent = LiveAgent(config(), 1)
    agent.submitting()
    agent.submitted(order(5), Place("sell", 10, 10_050, "gtc"), 0)
    agent.on_trade("sell", 10_050, 3, 5, wash=True)  # a self-trade: no position, no cash
    assert agent.state.position == 0 and agent.state.open_orders[5].qty == 7
    agent.on_replaced(5, 10_040, 4)
    assert (agent.state.open_orders[5].price, agent.state.open_orders[5].qty) == (10_040, 4)
    agent.on_rejected("replace", 5, "POSITION_LIMIT")
    assert 5 in agent.state.open_orders  # a refused replace leaves the order as it was
    agent.on_rejected("cancel", 5, "UNKNOWN_ORDER")
    assert 5 not in agent.state.open_orders
    agent.on_trade("buy", 10_000, 20, 6, wash=False)
    agent.stopped = True
    agent.on_reset()
    assert (agent.state.position, agent.cash(), agent.stopped) == (0, D(100000), False)


def test_bankroll_and_status():
    agent = LiveAgent(config(account=account(min_bankroll=D(99990))), 1)
    agent.on_trade("buy", 10_000, 10, 9, wash=False)  # 10 lots at 100.00
    assert not agent.below_bankroll(10_000)
    assert agent.equity(9_998.5) == D(100000) - D("0.15")
    assert agent.below_bankroll(9_000)  # 10 lots marked at 90: 100 lost
    status = agent.status(paused=False, mark_ticks=10_000, now_ms=5)
    assert (status["state"], status["position"], status["open_orders"]) == ("running", "10", 0)
    agent.stopped = True
    assert agent.status(paused=True, mark_ticks=None, now_ms=5)["state"] == "stopped"
    agent.apply_config(config(account=account(min_bankroll=D(0)), updated_at=2))  # a fresh look
    assert not agent.stopped and agent.min_bankroll == 0


def test_an_execution_agents_status_says_how_far_it_is_and_what_it_cost():
    agent = LiveAgent(
        config(strategy="twap", params={"side": "buy", "quantity": 20, "horizon_s": 60.0}), 1
    )
    assert "execution" not in LiveAgent(config(), 1).status(paused=False, mark_ticks=1, now_ms=5)
    agent.strategy.decide(MarketView(0, bid=(9_999, 5), ask=(10_001, 5)), agent.state)
    agent.on_trade("buy", 10_010, 10, 1, wash=False)  # 10 lots at 100.10; arrival mid 100.00
    execution = agent.status(paused=False, mark_ticks=10_000, now_ms=5)["execution"]
    assert execution == {
        "side": "buy",
        "quantity": "20",
        "done": "10",
        "left": "10",
        "arrival": "100",
        "vwap": None,
        "average": "100.1",
        "cost_vs_arrival_bps": 10.0,
        "cost_vs_vwap_bps": None,
    }


def test_the_book_key_is_read_again_only_once_the_events_moved_past_it(monkeypatch):
    import asyncio
    import json

    from agents.runner import market as market_module
    from agents.runner.market import SymbolMarket

    class Clock:
        now = 100.0

        @classmethod
        def monotonic(cls):
            return cls.now

        @staticmethod
        def time_ns():
            return 1_000_000_000

    class Redis:
        def __init__(self):
            self.book = {"seq": 7, "bids": [[99, 1]], "asks": [[101, 1]], "halted": False}
            self.reads = 0

        async def get(self, key):
            self.reads += 1
            return json.dumps(self.book)

    monkeypatch.setattr(market_module, "time", Clock)
    market = SymbolMarket("ACME", book_key="book", reference_ticks=100, seed=1)
    redis = Redis()
    asyncio.run(market.refresh_book(redis))
    assert redis.reads == 1 and market.mark_ticks() == 100
    market.stream_seq = 7  # the events read so far are all in the book held
    Clock.now += 0.5
    asyncio.run(market.refresh_book(redis))
    assert redis.reads == 1
    market.stream_seq = 9  # an event past it: the book changed
    redis.book = {"seq": 9, "bids": [[100, 1]], "asks": [[102, 1]], "halted": False}
    asyncio.run(market.refresh_book(redis))
    assert redis.reads == 2 and market.mark_ticks() == 101
    Clock.now += 0.01  # within BOOK_MAX_AGE_S, changed or not: the book held
    market.stream_seq = 10
    asyncio.run(market.refresh_book(redis))
    assert redis.reads == 2
    Clock.now += market_module.BOOK_UNCHANGED_MAX_AGE_S  # nothing new, but old: read again
    market.stream_seq = market.book_seq
    asyncio.run(market.refresh_book(redis))
    assert redis.reads == 3


def test_limits_are_the_accounts_and_follow_it():
    agent = LiveAgent(config(), 1)
    assert (agent.state.max_position, agent.min_bankroll, agent.initial_cash) == (
        50,
        D(90000),
        D(100000),
    )
    # The account edited (in the exchange's admin, say), the config not: the runner's next
    # refresh hands over the fresh account, and the limits come with it.
    fresh = account(default_max_position=20, min_bankroll=D(1), initial_cash=D(5))
    agent.apply_account(fresh)
    assert agent.account is fresh
    assert (agent.state.max_position, agent.min_bankroll, agent.initial_cash) == (20, D(1), D(5))
