"""The agents' decision logic (agents/strategies): data types, parameters, each strategy on
hand-made market views with fixed seeds, determinism, the fundamental-value process, and a small
in-process market of all four strategies trading against a real engine book. No database, no
Redis."""

from __future__ import annotations

import doctest
import heapq
import itertools
import math
import random
import statistics
import subprocess
import sys
from collections import Counter, deque
from pathlib import Path

import pytest
from flashbook_engine import OrderBook

import agents.strategies as strategies_pkg
from agents.strategies import (
    STRATEGIES,
    AgentState,
    Cancel,
    Fundamental,
    FundamentalParams,
    MarketMakerParams,
    MarketMakerStrategy,
    MarketView,
    MomentumParams,
    MomentumStrategy,
    NoiseParams,
    NoiseStrategy,
    OpenOrder,
    ParamError,
    Place,
    Replace,
    Strategy,
    Trade,
    ValueParams,
    ValueStrategy,
    make_strategy,
    next_wake_ns,
    validate_params,
)

S = 1_000_000_000  # ns per second
ROOT = Path(__file__).resolve().parents[2]


def view(bid=None, ask=None, *, t=0, last=None, trades=(), reference=None, fundamental=None):
    """A view with one level a side: bid/ask are prices (qty 10) or None."""
    bids = [(bid, 10)] if bid is not None else []
    asks = [(ask, 10)] if ask is not None else []
    return MarketView.from_depth(
        t,
        bids,
        asks,
        last_price=last,
        trades=trades,
        reference=reference,
        fundamental=fundamental,
    )


class Keys:
    """Applies a strategy's actions to an AgentState the way a runner would, without a book:
    GTC places are recorded under fresh keys, cancels remove, replaces amend."""

    def __init__(self) -> None:
        self.next = 1

    def apply(self, state: AgentState, actions, t: int = 0) -> None:
        for a in actions:
            if isinstance(a, Place):
                if a.tif == "gtc" and a.price is not None:
                    state.add_order(self.next, a.side, a.price, a.qty, a.tag, t)
                self.next += 1
            elif isinstance(a, Cancel):
                assert a.key in state.open_orders, f"cancel of an unknown key {a.key}"
                state.remove_order(a.key)
            else:
                assert isinstance(a, Replace)
                o = state.open_orders[a.key]
                state.amend_order(
                    a.key, a.price if a.price is not None else o.price, a.qty or o.qty
                )


def places(actions):
    return [a for a in actions if isinstance(a, Place)]


# --- the package ------------------------------------------------------------------------------


def test_package_imports_no_django_redis_or_asyncio():
    code = (
        "import sys, agents.strategies as s; "
        "bad = sorted(m for m in ('django', 'redis', 'asyncio', 'numpy') if m in sys.modules); "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
    for path in (ROOT / "agents" / "strategies").glob("*.py"):
        text = path.read_text()
        for name in ("django", "redis", "asyncio", "numpy"):
            assert f"import {name}" not in text and f"from {name}" not in text, (path, name)


def test_doctests():
    assert doctest.testmod(strategies_pkg).failed == 0


def test_registry():
    assert set(STRATEGIES) == {"noise", "market_maker", "momentum", "value", "twap", "pov"}
    for name, cls in STRATEGIES.items():
        assert issubclass(cls, Strategy) and cls.name == name
        strategy = make_strategy(name, {}, random.Random(1))
        assert isinstance(strategy, cls) and strategy.params == cls.params_cls()
    with pytest.raises(ParamError) as err:
        make_strategy("arbitrage", {}, random.Random(1))
    assert err.value.field == "strategy" and "noise" in err.value.message
    with pytest.raises(TypeError):
        NoiseStrategy({}, None)  # an rng is required: never the global random module
    with pytest.raises(TypeError):
        NoiseStrategy(MomentumParams(), random.Random(1))


# --- data types -------------------------------------------------------------------------------


def test_market_view_properties():
    v = view(100, 103, last=101)
    assert (v.best_bid, v.best_ask, v.spread, v.mid, v.ref_price) == (100, 103, 3, 101.5, 101.5)
    assert v.bids == [(100, 10)] and v.asks == [(103, 10)]
    one_sided = view(100, None, last=None)
    assert one_sided.mid is None and one_sided.spread is None and one_sided.ref_price == 100
    assert view(None, None, last=98).ref_price == 98
    assert view(None, 105).ref_price == 105
    assert view(reference=500).ref_price == 500
    assert view(fundamental=499.5).ref_price == 499.5
    assert view().ref_price is None
    with pytest.raises(AttributeError):
        v.time_ns = 5  # frozen


def test_agent_state_bookkeeping():
    s = AgentState(cash=1_000_000, max_position=10)
    s.add_order(1, "buy", 100, 4, "b0", 7)
    s.add_order(2, "sell", 105, 3)
    assert s.open_qty("buy") == 4 and s.open_qty("sell") == 3
    assert s.buy_room() == 6 and s.sell_room() == 7
    s.fill("buy", 100, 3, key=1)  # partial fill of order 1
    assert (s.position, s.cash, s.open_orders[1].qty) == (3, 1_000_000 - 300, 1)
    assert s.buy_room() == 10 - 3 - 1 and s.sell_room() == 10 + 3 - 3
    s.fill("buy", 100, 1, key=1)
    assert 1 not in s.open_orders
    s.fill("sell", 110, 2)  # an IOC of its own: no open order involved
    assert (s.position, s.cash) == (2, 1_000_000 - 400 + 220)
    assert s.equity(100) == s.cash + 200
    s.amend_order(2, 104, 2)
    assert s.open_orders[2] == OpenOrder("sell", 104, 2, None, 0)
    assert s.remove_order(2) is not None and s.remove_order(2) is None
    s.reset(cash=5)
    assert (s.cash, s.position, s.open_orders) == (5, 0, {})
    assert AgentState().buy_room() > 10**15  # no limit


def test_agent_state_applies_trades_cancels_replaces_and_rejections():
    s = AgentState(cash=10_000)
    s.add_order("b", "buy", 100, 5)
    s.add_order("a", "sell", 102, 4)
    # A fill of an open order: position, cash and the order's open quantity move.
    order = s.apply_trade("buy", 100, 2, "b")
    assert order is s.open_orders["b"] and order.qty == 3
    assert (s.position, s.cash) == (2, 10_000 - 200)
    # Filled to zero: removed, and still returned so the caller knows it is done.
    done = s.apply_trade("buy", 100, 3, "b")
    assert done is not None and done.qty == 0 and "b" not in s.open_orders
    assert (s.position, s.cash) == (5, 10_000 - 500)
    # An order the state does not record (an IOC, or a key it never had): money moves only.
    assert s.apply_trade("sell", 101, 1, None) is None
    assert s.apply_trade("sell", 101, 1, "unknown") is None
    assert (s.position, s.cash) == (3, 10_000 - 500 + 202)
    # Replace, then refusals: only a refused NEW or an unknown order ends it.
    assert s.apply_replace("a", 103, 2) is s.open_orders["a"]
    assert (s.open_orders["a"].price, s.open_orders["a"].qty) == (103, 2)
    assert s.apply_replace("unknown", 1, 1) is None and s.apply_replace(None, 1, 1) is None
    assert s.apply_reject("replace", "a", "POSITION_LIMIT") is False and "a" in s.open_orders
    assert s.apply_reject("cancel", "a", "UNKNOWN_ORDER") is True and "a" not in s.open_orders
    s.add_order("n", "buy", 99, 1)
    assert s.apply_reject("new", "n", "POSITION_LIMIT") is True and not s.open_orders
    assert s.apply_reject("new", None, "HALTED") is True  # a NEW it never recorded: still done
    # Cancel.
    s.add_order("c", "sell", 110, 1)
    assert s.apply_cancel("c") == OpenOrder("sell", 110, 1, None, 0)
    assert s.apply_cancel("c") is None and s.apply_cancel(None) is None


def test_a_wash_trade_fills_both_orders_and_moves_neither_position_nor_cash():
    # The agent's resting sell is hit by its own buy: each side is applied, both as a wash.
    s = AgentState(cash=1_000, position=4)
    s.add_order("ask", "sell", 100, 10)
    s.add_order("bid", "buy", 100, 3)
    maker = s.apply_trade("sell", 100, 3, "ask", wash=True)
    taker = s.apply_trade("buy", 100, 3, "bid", wash=True)
    assert (s.position, s.cash) == (4, 1_000)  # as the exchange's recorder books it
    assert maker.qty == 7 and s.open_orders["ask"].qty == 7
    assert taker.qty == 0 and "bid" not in s.open_orders
    # The same order filled by someone else is booked as usual.
    s.apply_trade("sell", 100, 2, "ask")
    assert (s.position, s.cash, s.open_orders["ask"].qty) == (2, 1_200, 5)


def test_next_wake_is_poisson_and_seeded():
    rng = random.Random(3)
    t, gaps = 0, []
    for _ in range(20_000):
        nxt = next_wake_ns(rng, 4.0, t)
        gaps.append(nxt - t)
        t = nxt
    assert min(gaps) >= 1
    assert statistics.fmean(gaps) == pytest.approx(S / 4, rel=0.03)
    assert statistics.pstdev(gaps) == pytest.approx(S / 4, rel=0.05)  # exponential: sd = mean
    assert next_wake_ns(random.Random(9), 2.0, 10) == next_wake_ns(random.Random(9), 2.0, 10)
    assert Strategy.next_wake_ns is next_wake_ns
    with pytest.raises(ValueError):
        next_wake_ns(rng, 0.0)


# --- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_params_defaults_and_schema(name):
    cls = STRATEGIES[name].params_cls
    assert cls.validate({}) == cls() == cls.validate(None) == validate_params(name, {})
    schema = cls.schema()
    assert [f["name"] for f in schema] == list(cls().to_dict())
    for f in schema:
        assert f["help"] and f["type"] in {"int", "float", "bool", "str"}
    # Round trip through a plain dict (what the admin stores).
    assert cls.validate(cls().to_dict()) == cls()


@pytest.mark.parametrize(
    ("name", "data", "field", "fragment"),
    [
        ("noise", {"colour": 1}, "colour", "unknown parameter"),
        ("noise", {"buy_prob": 1.5}, "buy_prob", "at most 1.0"),
        ("noise", {"size_min": 0}, "size_min", "at least 1"),
        ("noise", {"size_min": "3"}, "size_min", "must be an integer"),
        ("noise", {"size_min": 2.5}, "size_min", "whole number"),
        ("noise", {"size_min": True}, "size_min", "must be an integer"),
        ("noise", {"cross_prob": None}, "cross_prob", "must be a number"),
        ("noise", {"cross_prob": float("nan")}, "cross_prob", "finite"),
        ("noise", {"size_min": 50, "size_max": 10}, "size_max", "at least size_min"),
        ("market_maker", {"levels": 0}, "levels", "at least 1"),
        ("market_maker", {"levels": 51}, "levels", "at most 50"),
        ("market_maker", {"post_only": 1}, "post_only", "true or false"),
        ("market_maker", {"half_spread": 0.1}, "half_spread", "at least 0.5"),
        ("momentum", {"source": "vwap"}, "source", "one of mid, trade"),
        ("momentum", {"source": 3}, "source", "must be a string"),
        ("momentum", {"fast_s": 30, "slow_s": 30}, "slow_s", "greater than fast_s"),
        ("value", {"threshold_ticks": 10, "aggressive_ticks": 5}, "aggressive_ticks", "at least"),
        ("value", {"trade_size": -1}, "trade_size", "at least 1"),
    ],
)
def test_params_errors_name_the_field(name, data, field, fragment):
    with pytest.raises(ParamError) as err:
        validate_params(name, data)
    assert err.value.field == field
    assert fragment in err.value.message
    assert str(err.value) == f"{field}: {err.value.message}"
    assert isinstance(err.value, ValueError)


def test_params_coercion_and_non_mapping():
    p = NoiseParams.validate({"cross_prob": 0, "offset_mean": 2})
    assert p.cross_prob == 0.0 and isinstance(p.cross_prob, float)
    assert isinstance(p.offset_mean, float)
    with pytest.raises(ParamError) as err:
        NoiseParams.validate([("cross_prob", 0.1)])
    assert err.value.field == "__all__"
    with pytest.raises(ParamError):
        MarketMakerParams(levels=-3)  # direct construction is checked too
    assert FundamentalParams.validate({"sd": 0}).sd == 0.0
    with pytest.raises(ParamError) as err:
        FundamentalParams.validate({"step_s": 10, "half_life_s": 5})
    assert err.value.field == "step_s"


# --- noise ------------------------------------------------------------------------------------


def test_noise_trades_around_the_mid():
    p = NoiseParams(cross_prob=0.1, market_prob=0.3, size_max=200)
    noise = NoiseStrategy(p, random.Random(11))
    v = view(1000, 1002)  # mid 1001
    sides, sizes, offsets = Counter(), [], []
    kinds = Counter()
    for _ in range(5000):
        (a,) = noise.decide(v, AgentState())
        assert isinstance(a, Place) and a.qty >= 1
        sides[a.side] += 1
        sizes.append(a.qty)
        if a.tif == "gtc":
            kinds["limit"] += 1
            assert a.tag == "n"
            # Passive: behind the mid, never crossing the opposite touch.
            if a.side == "buy":
                assert a.price <= 1001 and a.price < 1002
                offsets.append(1001 - a.price)
            else:
                assert a.price >= 1001 and a.price > 1000
                offsets.append(a.price - 1001)
        elif a.price is None:
            kinds["market"] += 1
            assert a.tif == "ioc"
        else:
            kinds["ioc"] += 1
            assert a.tif == "ioc"
            assert a.price == (1003 if a.side == "buy" else 999)  # 1 tick through the touch
    assert 0.45 < sides["buy"] / 5000 < 0.55
    crossing = (kinds["market"] + kinds["ioc"]) / 5000
    assert 0.08 < crossing < 0.12
    assert 0.2 < kinds["market"] / (kinds["market"] + kinds["ioc"]) < 0.4
    assert 2 < statistics.fmean(offsets) < 4.5  # offset_mean 3 ticks
    # Heavy-tailed sizes: mostly small, occasionally very large, capped.
    assert statistics.median(sizes) <= 2 and max(sizes) == 200 and min(sizes) == 1
    assert sum(s >= 20 for s in sizes) > 50


def test_noise_narrows_a_wide_spread_and_needs_an_anchor():
    noise = NoiseStrategy({"cross_prob": 0.0}, random.Random(5))
    prices = [
        a.price for a in (noise.decide(view(1000, 1040), AgentState())[0] for _ in range(200))
    ]
    assert sum(1000 < p < 1040 for p in prices) > 150  # mostly inside the spread
    assert noise.decide(view(), AgentState()) == []
    (a,) = noise.decide(view(reference=700), AgentState())
    assert 650 < a.price < 750


def test_noise_cancels_stale_and_excess_orders():
    p = NoiseParams(max_open=3, cancel_prob=0.0, order_ttl_s=10.0, stale_ticks=20)
    noise = NoiseStrategy(p, random.Random(2))
    s = AgentState()
    s.add_order("old", "buy", 995, 1, "n", 0)  # 12 s old at t=12 s
    s.add_order("far", "sell", 1040, 1, "n", 11 * S)  # 39 ticks from the mid
    for k in range(4):
        s.add_order(k, "buy", 999, 1, "n", 11 * S + k)
    acts = noise.decide(view(1000, 1002, t=12 * S), s)
    cancels = [a.key for a in acts if isinstance(a, Cancel)]
    # Stale ones, then the oldest of the rest down to max_open - 1 (room for the new order).
    assert cancels == ["old", "far", 0, 1]
    assert len(places(acts)) == 1
    # cancel_prob: now and then the oldest goes even when under the cap.
    noise = NoiseStrategy(NoiseParams(cancel_prob=0.5), random.Random(3))
    s = AgentState()
    s.add_order("a", "buy", 999, 1, "n", 0)
    hits = sum(
        any(isinstance(a, Cancel) for a in noise.decide(view(1000, 1002, t=1), s))
        for _ in range(1000)
    )
    assert 420 < hits < 580


def test_noise_respects_the_position_limit():
    noise = NoiseStrategy({"size_min": 5, "size_max": 5}, random.Random(4))
    s = AgentState(position=8, max_position=10)
    for _ in range(200):
        for a in places(noise.decide(view(1000, 1002), s)):
            assert a.qty <= (2 if a.side == "buy" else 5)
    s = AgentState(position=10, max_position=10)
    assert all(a.side == "sell" for _ in range(100) for a in noise.decide(view(1000, 1002), s))


# --- market maker -----------------------------------------------------------------------------


def ladder(actions, side):
    return sorted(
        ((a.price, a.qty, a.tag) for a in places(actions) if a.side == side),
        key=lambda x: x[2],
    )


def test_maker_quotes_a_ladder_on_both_sides():
    mm = MarketMakerStrategy(
        MarketMakerParams(levels=3, size=4, half_spread=2.0, spacing=2), random.Random(1)
    )
    acts = mm.decide(view(996, 1004), AgentState())  # mid 1000
    assert all(isinstance(a, Place) and a.tif == "gtc" and a.post_only for a in acts)
    assert ladder(acts, "buy") == [(998, 4, "b0"), (996, 4, "b1"), (994, 4, "b2")]
    assert ladder(acts, "sell") == [(1002, 4, "a0"), (1004, 4, "a1"), (1006, 4, "a2")]


def test_maker_never_crosses_the_touch():
    mm = MarketMakerStrategy({"half_spread": 0.5}, random.Random(1))
    acts = mm.decide(view(1000, 1001), AgentState())
    assert ladder(acts, "buy")[0][0] == 1000 and ladder(acts, "sell")[0][0] == 1001
    # A large skew pushes the centre far down, but quotes stay off the touch.
    acts = mm.decide(view(1000, 1001), AgentState(position=40))
    sells = ladder(acts, "sell")
    assert min(p for p, _, _ in sells) >= 1001
    assert max(p for p, _, _ in ladder(acts, "buy")) < 1001


def test_maker_skews_against_its_inventory():
    params = MarketMakerParams(levels=2, skew=0.25, max_inventory=100, half_spread=1.0)
    v = view(990, 1010)

    def inner(position):
        acts = MarketMakerStrategy(params, random.Random(1)).decide(
            v, AgentState(position=position)
        )
        return ladder(acts, "buy")[0][0], ladder(acts, "sell")[0][0]

    flat, long, short = inner(0), inner(20), inner(-20)
    assert flat == (999, 1001)
    assert long == (994, 996)  # long 20 lots -> centre 5 ticks lower: sells cheaper
    assert short == (1004, 1006)


def test_maker_stops_growing_inventory_at_its_limit():
    params = MarketMakerParams(levels=3, size=5, max_inventory=30, skew=0.0)
    mm = MarketMakerStrategy(params, random.Random(1))
    acts = mm.decide(view(990, 1010), AgentState(position=30))
    assert ladder(acts, "buy") == [] and len(ladder(acts, "sell")) == 3
    acts = mm.decide(view(990, 1010), AgentState(position=-30))
    assert ladder(acts, "sell") == [] and len(ladder(acts, "buy")) == 3
    # The engine's limit (counting open orders) shrinks the ladder to fit.
    acts = mm.decide(view(990, 1010), AgentState(position=3, max_position=10))
    assert [q for _, q, _ in ladder(acts, "buy")] == [5, 2]
    assert sum(q for _, q, _ in ladder(acts, "sell")) == 13 and len(ladder(acts, "sell")) == 3


def test_maker_requotes_by_replace_not_by_piling_up():
    mm = MarketMakerStrategy(MarketMakerParams(levels=2, size=5), random.Random(1))
    state, keys = AgentState(), Keys()
    keys.apply(state, mm.decide(view(995, 1005), state))
    assert len(state.open_orders) == 4
    # Unchanged market: nothing to do.
    assert mm.decide(view(995, 1005), state) == []
    # The market moves: every quote is moved with a Replace, nothing new is placed.
    acts = mm.decide(view(1005, 1015), state)
    assert acts and all(isinstance(a, Replace) for a in acts)
    keys.apply(state, acts)
    bids = sorted(o.price for o in state.open_orders.values() if o.side == "buy")
    asks = sorted(o.price for o in state.open_orders.values() if o.side == "sell")
    assert asks == [1011, 1012] and bids == [1008, 1009]  # around the new mid, 1010
    # A partial fill tops the quote back up once it is below refill_ratio of its size.
    key_b0 = next(k for k, o in state.open_orders.items() if o.tag == "b0")
    state.open_orders[key_b0].qty = 2
    acts = mm.decide(view(1005, 1015), state)
    assert acts == [Replace(key_b0, None, 5)]
    # Strays (untagged, duplicate tags, wrong side) are cancelled.
    state.add_order("stray", "buy", 900, 1, None)
    state.add_order("dup", "buy", 1003, 5, "b1")
    state.add_order("wrong", "sell", 1100, 5, "b0")
    acts = mm.decide(view(1005, 1015), state)
    assert {a.key for a in acts if isinstance(a, Cancel)} >= {"stray", "dup", "wrong"}


def test_maker_never_has_more_than_n_orders_a_side():
    rng = random.Random(42)
    params = MarketMakerParams(levels=3, size=5, shock_ticks=15)
    mm = MarketMakerStrategy(params, random.Random(7))
    state, keys = AgentState(max_position=40), Keys()
    mid = 1000
    for step in range(3000):
        t = step * S // 10
        mid += rng.choice((-3, -1, 0, 0, 1, 3)) + (rng.choice((-30, 30)) if step % 500 == 0 else 0)
        half = rng.randint(1, 6)
        v = view(mid - half, mid + half, t=t, last=mid)
        acts = mm.decide(v, state)
        # Actions that shrink come before those that grow exposure.
        grew = False
        for a in acts:
            growing = isinstance(a, Place) or (
                isinstance(a, Replace)
                and a.qty is not None
                and a.qty > state.open_orders[a.key].qty
            )
            assert not (grew and not growing), acts
            grew = grew or growing
        keys.apply(state, acts, t)
        for side in ("buy", "sell"):
            assert sum(o.side == side for o in state.open_orders.values()) <= 3
        # Random fills (the runner would report them) move inventory around.
        for key, o in list(state.open_orders.items()):
            if rng.random() < 0.1:
                state.fill(o.side, o.price, rng.randint(1, o.qty), key)
        assert state.open_qty("buy") + state.position <= 40
        assert state.open_qty("sell") - state.position <= 40


def test_maker_widens_after_a_shock_then_narrows():
    params = MarketMakerParams(
        levels=1, half_spread=2.0, widen_factor=4.0, shock_ticks=20, shock_window_s=2.0, widen_s=5
    )
    mm = MarketMakerStrategy(params, random.Random(1))

    def quoted_spread(v):
        acts = mm.decide(v, AgentState())
        return ladder(acts, "sell")[0][0] - ladder(acts, "buy")[0][0]

    assert quoted_spread(view(980, 1020, t=0)) == 4
    assert quoted_spread(view(982, 1022, t=S // 2)) == 4  # a 2-tick drift is no shock
    assert not mm.widened
    assert quoted_spread(view(950, 990, t=S)) == 16  # 32 ticks down within 2 s: widen x4
    assert mm.widened
    assert quoted_spread(view(950, 990, t=5 * S)) == 16  # still inside widen_s
    assert quoted_spread(view(950, 990, t=7 * S)) == 4  # calm again
    # A sweep seen in the recent trades is a shock too, even with the mid back in place.
    mm.reset()
    sweep = (Trade(9 * S, 1001, 5, "buy"), Trade(9 * S, 1030, 5, "buy"))
    assert quoted_spread(view(980, 1020, t=9 * S)) == 4
    assert quoted_spread(view(980, 1020, t=10 * S, trades=sweep)) == 16
    old_sweep = (Trade(1 * S, 1001, 5, "buy"), Trade(1 * S, 1030, 5, "buy"))
    mm.reset()
    assert quoted_spread(view(980, 1020, t=10 * S, trades=old_sweep)) == 4  # outside window


def test_maker_anchors_on_others_and_falls_back_on_an_empty_book():
    mm = MarketMakerStrategy(MarketMakerParams(levels=1, skew=0.5), random.Random(1))
    # Empty book: the reference price, then the fundamental, then nothing.
    acts = mm.decide(view(reference=2000), AgentState())
    assert ladder(acts, "buy")[0][0] == 1999 and ladder(acts, "sell")[0][0] == 2001
    fresh = MarketMakerStrategy(MarketMakerParams(levels=1), random.Random(1))
    assert ladder(fresh.decide(view(fundamental=3000.4), AgentState()), "buy")[0][0] == 2999
    assert MarketMakerStrategy({}, random.Random(1)).decide(view(), AgentState()) == []
    # Its own quotes are the whole book: it keeps its anchor (no runaway under skew).
    state, keys = AgentState(position=10), Keys()  # skew: centre 5 ticks down
    keys.apply(state, mm.decide(view(990, 1010), state))
    first = sorted((o.side, o.price) for o in state.open_orders.values())
    for _ in range(20):
        bids = [(o.price, o.qty) for o in state.open_orders.values() if o.side == "buy"]
        asks = [(o.price, o.qty) for o in state.open_orders.values() if o.side == "sell"]
        own_only = MarketView.from_depth(0, bids, asks, last_price=1000)
        keys.apply(state, mm.decide(own_only, state))
    assert sorted((o.side, o.price) for o in state.open_orders.values()) == first


# --- momentum ---------------------------------------------------------------------------------


def drive(strategy, mids, state=None, dt=S, start=0, spread=2):
    """Feeds a price path (one view a second) and returns the actions per step."""
    state = state or AgentState()
    out = []
    for i, m in enumerate(mids):
        out.append(strategy.decide(view(m - spread // 2, m + spread // 2, t=start + i * dt), state))
    return out


def test_momentum_buys_on_an_up_cross_and_sells_on_a_down_cross():
    params = MomentumParams(fast_s=3, slow_s=15, threshold_ticks=1.0, trade_size=4)
    mom = MomentumStrategy(params, random.Random(1))
    flat = drive(mom, [1000] * 30)
    assert all(a == [] for a in flat)  # warm-up, then no signal
    up = drive(mom, [1000 + 2 * i for i in range(1, 11)], start=30 * S)
    buys = [a for acts in up for a in acts]
    assert buys and all(a.side == "buy" and a.tif == "ioc" for a in buys)
    first = buys[0]
    ask_then = next(1000 + 2 * (i + 1) + 1 for i, acts in enumerate(up) if acts)
    assert first.price == ask_then + 2 and first.qty == 4  # 2 ticks through the ask
    assert mom.signal == 1
    # Prices turn down: the averages lag, so it keeps buying until they cross, then sells only.
    down = drive(mom, [1020 - 3 * i for i in range(1, 15)], start=40 * S)
    sides = "".join(a.side[0] for acts in down for a in acts)
    assert sides.startswith("b") and "s" in sides
    assert sides == "b" * sides.index("s") + "s" * (len(sides) - sides.index("s"))
    assert mom.signal == -1


def test_momentum_needs_warm_up_and_respects_its_position():
    params = MomentumParams(fast_s=2, slow_s=10, threshold_ticks=0.5, trade_size=5, max_position=8)
    mom = MomentumStrategy(params, random.Random(1))
    assert all(a == [] for a in drive(mom, [1000 + 3 * i for i in range(9)]))  # < slow_s
    # Long signal, already holding 6 of 8: buys only the 2 missing, then nothing at the max.
    state = AgentState(position=6)
    acts = drive(mom, [1030 + 3 * i for i in range(3)], state=state, start=10 * S)
    buys = [a for step in acts for a in step]
    assert buys and all(a.qty == 2 for a in buys)
    state.position = 8
    assert all(a == [] for a in drive(mom, [1040, 1045, 1050], state=state, start=13 * S))
    # The engine's limit binds too.
    state = AgentState(position=0, max_position=3)
    (a,) = drive(mom, [1060], state=state, start=16 * S)[0]
    assert a.qty == 3


def test_momentum_trade_source_and_market_orders():
    params = MomentumParams(source="trade", fast_s=2, slow_s=8, use_market=True)
    mom = MomentumStrategy(params, random.Random(1))
    s = AgentState()
    # The mid is flat but trades print higher and higher: the trade-price averages cross up.
    acts = []
    for i in range(20):
        v = view(999, 1001, t=i * S, last=1000 + (0 if i < 10 else 3 * (i - 9)))
        acts += mom.decide(v, s)
    assert acts and all(a.side == "buy" and a.price is None and a.tif == "ioc" for a in acts)


# --- value ------------------------------------------------------------------------------------


def test_value_buys_below_and_sells_above_the_fundamental():
    p = ValueParams(noise_ticks=0.0, threshold_ticks=3, aggressive_ticks=15, trade_size=5)
    val = ValueStrategy(p, random.Random(1))
    # Fundamental 8 above the mid: a passive buy one tick inside the touch.
    (a,) = val.decide(view(996, 1004, fundamental=1008.0), AgentState())
    assert (a.side, a.price, a.tif, a.qty, a.tag) == ("buy", 997, "gtc", 5, "v")
    # 8 below: a passive sell inside the touch.
    (a,) = val.decide(view(996, 1004, fundamental=992.0), AgentState())
    assert (a.side, a.price, a.tif) == ("sell", 1003, "gtc")
    # Far above: take liquidity, never paying more than its estimate.
    (a,) = val.decide(view(996, 1004, fundamental=1030.0), AgentState())
    assert (a.side, a.price, a.tif) == ("buy", 1006, "ioc")
    (a,) = val.decide(view(996, 1004, fundamental=1019.0), AgentState())
    assert (a.side, a.price, a.tif) == ("buy", 1006, "ioc")
    (a,) = val.decide(view(996, 1004, fundamental=970.0), AgentState())
    assert (a.side, a.price, a.tif) == ("sell", 994, "ioc")
    # Fairly priced: nothing.
    assert val.decide(view(996, 1004, fundamental=1001.0), AgentState()) == []
    # Without a fundamental it has no opinion.
    assert val.decide(view(996, 1004), AgentState()) == []


def test_value_passive_price_never_beyond_its_estimate_and_works_one_order():
    p = ValueParams(noise_ticks=0.0, threshold_ticks=3, aggressive_ticks=50)
    val = ValueStrategy(p, random.Random(1))
    # Spread of 1: joins the bid; a wide spread: inside but not above estimate - threshold.
    (a,) = val.decide(view(1000, 1001, fundamental=1010.0), AgentState())
    assert (a.side, a.price) == ("buy", 1000)
    (a,) = val.decide(view(980, 1040, fundamental=1020.0), AgentState())
    assert (a.side, a.price) == ("buy", 981)
    (a,) = val.decide(view(1000, 1040, fundamental=1024.0), AgentState())
    assert a.price == 1001
    state, keys = AgentState(), Keys()
    keys.apply(state, val.decide(view(996, 1004, fundamental=1010.0), state))
    (key,) = state.open_orders
    # The market moves: the working order is moved, not duplicated.
    assert val.decide(view(998, 1006, fundamental=1012.0), state) == [Replace(key, 999, 5)]
    # Mispricing flips: the buy goes, a sell comes.
    acts = val.decide(view(998, 1006, fundamental=990.0), state)
    assert acts[0] == Cancel(key) and places(acts)[0].side == "sell"
    # Fair again: it withdraws.
    assert val.decide(view(998, 1006, fundamental=1002.0), state) == [Cancel(key)]
    # Aggressive: withdraws the resting order first.
    acts = val.decide(view(998, 1006, fundamental=1100.0), state)
    assert acts[0] == Cancel(key) and acts[1].tif == "ioc"


def test_value_respects_max_position_and_observes_with_noise():
    p = ValueParams(noise_ticks=0.0, max_position=10, trade_size=5)
    val = ValueStrategy(p, random.Random(1))
    (a,) = val.decide(view(996, 1004, fundamental=1100.0), AgentState(position=7))
    assert a.qty == 3
    assert val.decide(view(996, 1004, fundamental=1100.0), AgentState(position=10)) == []
    (a,) = val.decide(view(996, 1004, fundamental=900.0), AgentState(position=10))
    assert a.side == "sell" and a.qty == 5
    noisy = ValueStrategy(ValueParams(noise_ticks=4.0, bias_ticks=2.0), random.Random(8))
    estimates = []
    for _ in range(4000):
        noisy.decide(view(996, 1004, fundamental=1000.0), AgentState())
        estimates.append(noisy.estimate - 1000.0)
    assert statistics.fmean(estimates) == pytest.approx(noisy.bias, abs=0.3)
    assert statistics.pstdev(estimates) == pytest.approx(4.0, rel=0.08)
    assert noisy.bias != 0.0


# --- determinism ------------------------------------------------------------------------------


def random_views(seed, n=400):
    rng = random.Random(seed)
    mid, f, out, trades = 1000, 1000.0, [], deque(maxlen=10)
    for i in range(n):
        mid += rng.randint(-2, 2)
        f += rng.gauss(0, 1.5)
        if rng.random() < 0.3:
            trades.append(Trade(i * S // 4, mid + rng.randint(-3, 3), rng.randint(1, 9), "buy"))
        half = rng.randint(1, 4)
        out.append(
            view(
                mid - half, mid + half, t=i * S // 4, last=mid, trades=tuple(trades), fundamental=f
            )
        )
    return out


def run_actions(name, seed, views):
    strategy = make_strategy(name, {}, random.Random(seed))
    state, keys, out = AgentState(max_position=30), Keys(), []
    for v in views:
        acts = strategy.decide(v, state)
        out.append(repr(acts))
        keys.apply(state, acts, v.time_ns)
    return out


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_same_seed_same_actions(name):
    views = random_views(5)
    a, b = run_actions(name, 123, views), run_actions(name, 123, views)
    assert a == b
    assert sum(x != "[]" for x in a) > 5
    if name in {"noise", "value"}:  # the ones that draw random numbers at every wake
        assert run_actions(name, 124, views) != a


def test_strategies_never_touch_the_global_random_module():
    state = random.getstate()
    for name in STRATEGIES:
        run_actions(name, 1, random_views(2, 100))
    Fundamental({}, 1).value_at(3600 * S)
    assert random.getstate() == state


# --- the fundamental value --------------------------------------------------------------------


def test_ou_reverts_to_its_mean():
    # Start 20 % above the mean; after one half-life the log-deviation has halved on average.
    params = {"mean": 1000.0, "half_life_s": 100.0, "sd": 0.01, "jump_rate_per_hour": 0.0}
    devs = []
    for seed in range(200):
        f = Fundamental(params, seed, initial=1200.0)
        devs.append(math.log(f.value_at(100 * S) / 1000.0))
    assert statistics.fmean(devs) == pytest.approx(math.log(1.2) / 2, rel=0.05)
    f = Fundamental(params, 1, initial=1200.0)
    assert abs(math.log(f.value_at(2000 * S) / 1000.0)) < 0.05  # 20 half-lives later


def test_ou_stationary_statistics():
    params = {"mean": 5000.0, "half_life_s": 30.0, "sd": 0.02, "jump_rate_per_hour": 0.0}
    f = Fundamental(params, 7)
    xs = [math.log(f.value_at(i * S)) for i in range(1, 100_001)]
    assert f.steps == 100_000
    assert statistics.fmean(xs) == pytest.approx(math.log(5000.0), abs=0.002)
    assert statistics.pstdev(xs) == pytest.approx(0.02, rel=0.07)
    m = statistics.fmean(xs)
    num = sum((a - m) * (b - m) for a, b in itertools.pairwise(xs))
    den = sum((a - m) ** 2 for a in xs)
    assert num / den == pytest.approx(0.5 ** (1 / 30), abs=0.01)  # lag-1 autocorrelation


def test_ou_jumps_arrive_at_the_configured_rate():
    params = {"half_life_s": 3600.0, "sd": 0.0, "jump_rate_per_hour": 12.0, "jump_sd": 0.01}
    f = Fundamental(params, 3, start_ns=0)
    hours = 500
    f.value_at(hours * 3600 * S)
    expected = 12 * hours
    assert abs(f.jumps - expected) < 4 * math.sqrt(expected)
    # With sd=0 the only moves are jumps (and the pull back to the mean).
    g = Fundamental({**params, "jump_rate_per_hour": 0.0}, 3)
    assert g.value_at(3600 * S) == pytest.approx(10_000.0)


def test_ou_path_is_seeded_and_independent_of_query_times():
    params = {"half_life_s": 60.0, "jump_rate_per_hour": 30.0, "step_s": 0.5}
    a, b, c = Fundamental(params, 11), Fundamental(params, 11), Fundamental(params, 12)
    rng = random.Random(0)
    t = 0
    while t < 3600 * S:
        t += rng.randint(1, 20 * S)
        b.value_at(t)
    end = 3600 * S + 10 * S
    assert a.value_at(end) == b.value_at(end) != c.value_at(end)
    assert a.jumps == b.jumps
    assert a.value_at(end - 100 * S) == a.value  # time does not go back
    # Between grid points the value holds.
    assert a.value_at(end + S // 4) == a.value_at(end)


def test_ou_shock():
    f = Fundamental({"mean": 1000.0, "sd": 0.0, "jump_rate_per_hour": 0.0}, 1)
    assert f.shock(-10.0, 5 * S) == pytest.approx(900.0)
    assert f.mean == pytest.approx(900.0)
    assert f.value_at(10_000 * S) == pytest.approx(900.0)  # permanent: no reversion
    g = Fundamental({"mean": 1000.0, "sd": 0.0, "half_life_s": 10.0, "jump_rate_per_hour": 0.0}, 1)
    g.shock(20.0, permanent=False)
    assert g.value == pytest.approx(1200.0) and g.mean == pytest.approx(1000.0)
    assert g.value_at(10 * S) == pytest.approx(1000.0 * 1.2**0.5)  # one half-life
    with pytest.raises(ValueError):
        g.shock(-100.0)


# --- a mini market against the real engine ----------------------------------------------------

OPPOSITE = {"buy": "sell", "sell": "buy"}


class MiniMarket:
    """The smallest honest loop: agents wake on their own Poisson clocks, see the book as it is,
    and their actions go straight into a real OrderBook; each agent's state is kept from the
    engine's events only."""

    def __init__(self, seed: int, population, *, reference=10_000, depth=5):
        self.book = OrderBook("MINI")
        self.fundamental = Fundamental(
            {
                "mean": float(reference),
                "half_life_s": 600.0,
                "sd": 0.004,
                "jump_rate_per_hour": 30.0,
                "jump_sd": 0.002,
            },
            seed,
        )
        self.reference = reference
        self.depth = depth
        self.agents = []  # (strategy, state, rate, rng)
        self.states = {}
        self.heap = []
        master = random.Random(seed)
        for name, count, rate, params, max_position in population:
            for _ in range(count):
                account = len(self.agents) + 1
                rng = random.Random(master.getrandbits(64))
                state = AgentState(max_position=max_position)
                self.agents.append((make_strategy(name, params, rng), state, rate, rng))
                self.states[account] = state
                heapq.heappush(self.heap, (next_wake_ns(rng, rate), account))
        self.next_id = 1
        self.trades = deque(maxlen=20)
        self.last_price = None
        self.now = 0
        self.commands = 0
        self.rejections = Counter()
        self.trade_count = 0
        self.volume = 0

    def view(self) -> MarketView:
        bids, asks = self.book.depth(self.depth)
        return MarketView.from_depth(
            self.now,
            bids,
            asks,
            last_price=self.last_price,
            trades=tuple(self.trades),
            reference=self.reference,
            fundamental=self.fundamental.value_at(self.now),
        )

    def events(self, events) -> None:
        states = self.states
        for e in events:
            kind = e.kind
            if kind == "trade":
                taker_side = e.aggressor
                states[e.maker_account].fill(OPPOSITE[taker_side], e.price, e.qty, e.maker_order_id)
                states[e.taker_account].fill(taker_side, e.price, e.qty, e.taker_order_id)
                self.trades.append(Trade(self.now, e.price, e.qty, taker_side))
                self.last_price = e.price
                self.trade_count += 1
                self.volume += e.qty
            elif kind == "cancelled":
                states[e.account].remove_order(e.order_id)
            elif kind == "replaced":
                states[e.account].amend_order(e.order_id, e.price, e.qty)
            elif kind == "rejected":
                self.rejections[(e.command, e.reason)] += 1
                if e.command == "new" or e.reason == "UNKNOWN_ORDER":
                    states[e.account].remove_order(e.order_id)

    def apply(self, account: int, state: AgentState, actions) -> None:
        book = self.book
        for a in actions:
            self.commands += 1
            if isinstance(a, Place):
                oid = self.next_id
                self.next_id += 1
                if a.price is None:
                    evs = book.market_order(
                        oid, account, a.side, a.qty, stp="cancel_newest",
                        max_position=state.max_position,
                    )  # fmt: skip
                else:
                    if a.tif == "gtc":
                        state.add_order(oid, a.side, a.price, a.qty, a.tag, self.now)
                    evs = book.new_order(
                        oid, account, a.side, a.price, a.qty, tif=a.tif, post_only=a.post_only,
                        stp="cancel_newest", max_position=state.max_position,
                    )  # fmt: skip
            elif isinstance(a, Cancel):
                evs = book.cancel(a.key, account)
            else:
                evs = book.replace(a.key, account, price=a.price, qty=a.qty)
            self.events(evs)

    def run(self, wakes: int, on_wake=None) -> None:
        for _ in range(wakes):
            t, account = heapq.heappop(self.heap)
            self.now = t
            strategy, state, rate, rng = self.agents[account - 1]
            actions = strategy.decide(self.view(), state)
            self.apply(account, state, actions)
            heapq.heappush(self.heap, (next_wake_ns(rng, rate, t), account))
            if on_wake is not None:
                on_wake(self, strategy, state)


POPULATION = [
    # name, count, wakes/s, params, engine max position
    ("market_maker", 2, 4.0, {"levels": 3, "size": 5, "skew": 0.1, "max_inventory": 60}, 100),
    ("noise", 20, 0.5, {"size_max": 40}, 30),
    ("momentum", 4, 0.5, {"fast_s": 5.0, "slow_s": 30.0, "trade_size": 3}, 30),
    ("value", 8, 0.4, {"bias_ticks": 3.0, "max_position": 100, "trade_size": 10}, 100),
    ("twap", 1, 1.0, {"side": "buy", "quantity": 150, "horizon_s": 600.0}, 1000),
    ("pov", 1, 1.0, {"side": "sell", "quantity": 150, "participation": 0.05}, 1000),
]


def test_mini_market_stays_sane():
    market = MiniMarket(2024, POPULATION)
    stats = Counter()
    spreads = []

    def check(m, strategy, state):
        bbo = m.book.bbo()
        if bbo.bid is not None and bbo.ask is not None:
            assert bbo.bid_price < bbo.ask_price, "the book crossed"
            spreads.append(bbo.spread)
        else:
            stats["one_sided"] += 1
        if isinstance(strategy, MarketMakerStrategy):
            for side in ("buy", "sell"):
                assert sum(o.side == side for o in state.open_orders.values()) <= 3

    market.run(20_000, check)

    # Trades happen, from every kind of agent.
    assert market.trade_count > 300 and market.volume > 1000
    traded = Counter()
    for strategy, state, _, _ in market.agents:
        if state.position != 0 or state.cash != 0:
            traded[strategy.name] += 1
    assert set(traded) == set(STRATEGIES), traded
    # The spread stays tight most of the time, the book is two-sided almost always.
    assert stats["one_sided"] < 0.02 * 20_000
    spreads.sort()
    assert spreads[int(0.9 * len(spreads))] <= 10, Counter(spreads).most_common(10)
    # The price follows the fundamental roughly (within 2 %).
    mid = (market.book.bbo().bid_price + market.book.bbo().ask_price) / 2
    assert abs(mid / market.fundamental.value - 1) < 0.02
    # Rejections are rare: strategies size inside their limits and never cross post-only.
    assert sum(market.rejections.values()) < 0.01 * market.commands, market.rejections
    assert not any(reason == "POST_ONLY_WOULD_CROSS" for _, reason in market.rejections)
    # Every agent's own book-keeping matches the engine exactly.
    exposures = market.book.exposures()
    resting = {}
    for o in market.book.resting_orders():
        resting.setdefault(o.account, {})[o.order_id] = (o.side, o.price, o.qty)
    for account, state in market.states.items():
        assert state.position == (exposures[account].position if account in exposures else 0)
        own = {k: (o.side, o.price, o.qty) for k, o in state.open_orders.items()}
        assert own == resting.get(account, {}), account
        if state.max_position is not None:
            assert abs(state.position) <= state.max_position
    assert sum(s.cash for s in market.states.values()) == 0  # cash only changes hands
    assert sum(s.position for s in market.states.values()) == 0


def test_mini_market_is_reproducible():
    def fingerprint(seed):
        m = MiniMarket(seed, POPULATION)
        m.run(1500)
        return m.book.state_hash(), m.trade_count, [(s.cash, s.position) for s in m.states.values()]

    assert fingerprint(5) == fingerprint(5)
    assert fingerprint(5) != fingerprint(6)


def test_mini_market_follows_a_fundamental_shock():
    market = MiniMarket(7, POPULATION)
    market.run(4000)
    before = market.fundamental.value
    shocked = market.fundamental.shock(-5.0, market.now)  # about 500 ticks down
    market.reference = round(market.reference * 0.95)
    start = market.now
    mids = []

    def record(m, strategy, state):
        bbo = m.book.bbo()
        if bbo.bid is not None and bbo.ask is not None:
            mids.append((m.now - start, (bbo.bid_price + bbo.ask_price) / 2))

    market.run(3000, record)
    # Within a minute of simulated time most of the gap has closed, through the agents' own
    # logic (value agents sell, momentum follows, makers widen and skew).
    after_a_minute = [mid for t, mid in mids if 60 * S <= t < 70 * S]
    assert after_a_minute, mids[-1]
    assert statistics.fmean(after_a_minute) < before - 0.6 * (before - shocked)
    assert abs(mids[-1][1] / market.fundamental.value - 1) < 0.02
