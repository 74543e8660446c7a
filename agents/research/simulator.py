"""The discrete-event simulator: one process, one simulated clock in nanoseconds, one priority
queue, the Rust book through its Python bindings and the same strategy classes as the live runner.

What happens, in simulated time:

* An agent **wakes** (a Poisson clock: its rate times the market's activity level), looks at the
  market as it is at that instant (a :class:`MarketView` built from the level mirror), decides,
  and sends its actions. The simulator records its GTC orders in its state at once, as the live
  runner does, under a *client key*.
* The actions are **delivered** to the exchange one latency later (the agent's own base latency
  plus an exponential jitter), in the order sent: an agent's messages never overtake each other.
  Engine order ids are handed out at delivery, so they grow in the order the exchange sees orders,
  as the engine requires; the client key maps to the engine id from then on.
* The engine's events update every agent's state (fills, cancels, replaces, rejections) through
  the same ``AgentState.apply_*`` methods as the live runner's — a self-trade fills both orders
  and moves neither position nor cash — and are turned into LOBSTER rows as they happen.
* **Shocks** move the fundamental value (and the reference price); **halts** stop trading for a
  while. The market opens empty at the session's start and the run stops at its end.

Everything random comes from generators seeded from the run's seed in a fixed order, and ties in
the queue are broken by insertion order, so a configuration and a seed give one history.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from heapq import heappush
from types import SimpleNamespace
from typing import TextIO

from flashbook_engine import Command, OrderBook

from agents.strategies import (
    BUY,
    SELL,
    AgentState,
    Cancel,
    Fundamental,
    MarketView,
    Place,
    Strategy,
    Trade,
    make_strategy,
)
from exchange.orders.rules import cash_units, order_cost_units
from exchange.protocol.decimals import currency_decimals
from exchange.protocol.fees import fee_amount

from .activity import ActivityClock
from .config import SimConfig
from .fork import OUTSIDE, ForkStart
from .lobster import LobsterBook

__all__ = ["Agent", "RunData", "Simulation"]

NS_PER_S = 1_000_000_000
WAKE, DELIVER, SHOCK, HALT, RESUME, CLOCK = 0, 1, 2, 3, 4, 5
NS_PER_MS = 1_000_000
_set_field = object.__setattr__
_log = math.log
#: How often (simulated) the progress callback is called.
_PROGRESS_EVERY_NS = 10 * NS_PER_S


class Agent:
    """One agent: its strategy, its state and its plumbing (clock, latency, counters)."""

    __slots__ = (
        "account",
        "base_latency_ns",
        "cancels",
        "cash_limited",
        "fees",
        "follows_activity",
        "group",
        "initial_cash",
        "jitter_ns",
        "last_arrival_ns",
        "latency_rng",
        "name",
        "orders",
        "rate",
        "rejects",
        "rng",
        "state",
        "strategy",
        "traded_qty",
        "trades",
        "wakes",
        "wants_depth",
    )

    def __init__(self, account: int, name: str, group: str, strategy: Strategy, state, rng):
        self.account = account
        self.name = name
        self.group = group
        self.strategy = strategy
        self.state: AgentState = state
        self.rng: random.Random = rng
        self.latency_rng = random.Random(0)
        self.rate = 1.0
        self.base_latency_ns = 0
        self.jitter_ns = 0.0
        self.last_arrival_ns = 0
        self.follows_activity = True
        self.wants_depth = False
        self.initial_cash = 0
        self.cash_limited = False
        self.fees = Decimal(0)  # money, what its fills paid (`exchange.protocol.fees`)
        self.orders = self.cancels = self.rejects = 0
        self.trades = self.traded_qty = self.wakes = 0


@dataclass
class RunData:
    """What a run leaves besides its files: per-second and per-minute series for the metrics and
    the report, and counters."""

    start_ns: int
    end_ns: int
    #: The mid (ticks, a float; NaN while one side is empty) at the end of every second.
    mid_by_second: list[float] = field(default_factory=list)
    #: The spread (ticks; 0 while one side is empty) at the end of every second.
    spread_by_second: list[int] = field(default_factory=list)
    #: Traded lots in every second.
    volume_by_second: list[int] = field(default_factory=list)
    trades_by_second: list[int] = field(default_factory=list)
    #: The fundamental value (ticks) at the end of every second.
    fundamental_by_second: list[float] = field(default_factory=list)
    messages: int = 0
    commands: int = 0
    wakes: int = 0
    trades: int = 0
    volume: int = 0
    #: The sign (+1 buy, -1 sell) of every marketable order that traded, in arrival order: one
    #: entry per order however many resting orders it executed against (order flow, not fills).
    trade_signs: list[int] = field(default_factory=list)
    #: How many orders of each size (lots) reached the exchange.
    order_sizes: Counter = field(default_factory=Counter)
    rejections: Counter = field(default_factory=Counter)
    wall_s: float = 0.0
    #: CPU time of this process during the run (on a busy machine, wall time minus waiting).
    cpu_s: float = 0.0


class Simulation:
    """One run: ``Simulation(config, seed, lobster=..., trades_out=...).run()``. The LOBSTER
    writer and the trades file are handed in (the caller owns the files)."""

    def __init__(
        self,
        config: SimConfig,
        seed: int,
        *,
        lobster: LobsterBook,
        trades_out: TextIO | None = None,
        progress: Callable[[int, int], None] | None = None,
        fork: ForkStart | None = None,
    ) -> None:
        self.config = config
        self.seed = seed
        self.lob = lobster
        self.trades_out = trades_out
        self.progress = progress
        # A fork starts from the live market's book (`fork.py`); a day from an empty one.
        self.book = fork.open_book() if fork is not None else OrderBook(config.symbol, 1 << 16)
        # The engine's clock in a fork is the live journal's (Unix milliseconds); the simulated
        # one is time of day: the guard is told the simulated time plus this offset.
        self._clock_offset_ms = 0
        if fork is not None and self.book.now_ms:
            self._clock_offset_ms = self.book.now_ms - config.start_ns // NS_PER_MS
        # The live exchange's rules, enforced by the same engine: the price band, the volatility
        # guard (whose clock is the simulated one: `_tell_time`) and the fee rates.
        self.book.submit(Command.band(config.band_bps, config.reference_ticks))
        self._guarded = config.volatility_bps > 0
        if self._guarded:
            self.book.submit(
                Command.volatility(
                    config.volatility_bps,
                    config.volatility_window_s * 1000,
                    config.volatility_pause_s * 1000,
                )
            )
        self._fees_on = bool(config.maker_fee_bps or config.taker_fee_bps)
        self._money_unit = config.tick_size * config.lot_size
        if self._fees_on:
            self.book.submit(Command.fees(config.maker_fee_bps, config.taker_fee_bps))
            self._currency_decimals = currency_decimals()
        # What the buying-power rule reads of the instrument (`_short_of_funds`).
        self._cost_rules = SimpleNamespace(
            tick_size=config.tick_size,
            lot_size=config.lot_size,
            maker_fee_bps=config.maker_fee_bps,
            taker_fee_bps=config.taker_fee_bps,
        )
        self.start_ns = config.start_ns
        self.end_ns = config.end_ns
        master = random.Random(seed)
        # Fixed draw order: environment first, then the agents in configuration order.
        fundamental_seed = master.getrandbits(64)
        activity_seed = master.getrandbits(64)
        self.activity = ActivityClock(
            sd=config.activity.sd,
            half_life_s=config.activity.half_life_s,
            step_s=config.activity.step_s,
            start_ns=self.start_ns,
            seed=activity_seed,
        )
        initial_value = None if fork is None or fork.fundamental is None else fork.fundamental[0]
        self.fundamental = Fundamental(
            config.fundamental, fundamental_seed, start_ns=self.start_ns, initial=initial_value
        )
        self.reference = config.reference_ticks
        self.agents: list[Agent] = []
        unit = config.tick_size * config.lot_size
        for group in config.agents:
            for i in range(group.count):
                account = len(self.agents) + 1 if fork is None else fork.accounts[group.name]
                rng = random.Random(master.getrandbits(64))
                cash = int(group.initial_cash / unit)
                state = AgentState(cash=cash, max_position=group.max_position)
                name = group.name if group.count == 1 else f"{group.name}-{i + 1}"
                agent = Agent(
                    account, name, group.name, make_strategy(group.strategy, group.params, rng),
                    state, rng,
                )  # fmt: skip
                agent.latency_rng = random.Random(master.getrandbits(64))
                agent.rate = group.wake_rate_hz
                lat = group.latency
                base_us = lat.base_us * (1.0 + lat.spread * (2.0 * agent.latency_rng.random() - 1))
                agent.base_latency_ns = round(base_us * 1000)
                agent.jitter_ns = lat.jitter_us * 1000.0
                agent.follows_activity = group.follows_activity
                agent.wants_depth = group.strategy == "market_maker"
                agent.initial_cash = cash
                # Cash to spend: buys are held to it, as the live exchange's are. Without (0, the
                # presets' default) cash is only the P&L's bookkeeping.
                agent.cash_limited = cash > 0
                self.agents.append(agent)
        self.by_account: dict[int, Agent] = {a.account: a for a in self.agents}

        self.heap: list[tuple] = []
        self._seq = 0
        self.next_eid = 1
        self.next_key = 1
        self.key_to_eid: dict[int, int] = {}
        self.eid_to_key: dict[int, int] = {}
        self.recent: deque[Trade] = deque(maxlen=config.recent_trades)
        self._recent_tuple: tuple[Trade, ...] = ()
        self._recent_dirty = False
        self._trade_rows: list[str] = []
        self._price_multiplier = config.price_multiplier
        self._lot_size = config.lot_size
        self.last_price: int | None = None
        self._last_taker_eid = -1
        self.data = RunData(self.start_ns, self.end_ns)
        seconds = -(-(self.end_ns - self.start_ns) // NS_PER_S)
        self.data.volume_by_second = [0] * seconds
        self.data.trades_by_second = [0] * seconds
        self._view_version = -1
        self._touch: tuple = (None, None)
        self._depth: tuple = ((), ())
        self._depth_version = -1
        self._view = MarketView(self.start_ns, reference=self.reference)
        self._view_of = -2
        if fork is not None:
            self._open_fork(fork)

    def _open_fork(self, fork: ForkStart) -> None:
        """The agents' accounts as the fork found them: their cash (held to it, as the live
        exchange holds every account), positions and resting orders; the other accounts' orders
        under passive `outside` agents; the level mirror, the last trades and the guard's state
        of the restored book."""
        book, lob = self.book, self.lob
        unit = self.config.tick_size * self.config.lot_size
        cash = fork.capture.cash
        for agent in self.agents:
            money = Decimal(cash.get(agent.account, "0"))
            agent.state.cash = agent.initial_cash = int(money / unit)
            agent.cash_limited = True
        exposures = book.exposures()
        for order in book.resting_orders():
            agent = self.by_account.get(order.account)
            if agent is None:
                state = AgentState()
                agent = Agent(
                    order.account, f"account-{order.account}", "outside", OUTSIDE, state,
                    random.Random(0),
                )  # fmt: skip
                self.agents.append(agent)
                self.by_account[order.account] = agent
            key = self.next_key
            self.next_key = key + 1
            agent.state.add_order(key, order.side, order.price, order.qty, None, self.start_ns)
            self.key_to_eid[key] = order.order_id
            self.eid_to_key[order.order_id] = key
        for account, agent in self.by_account.items():
            exposure = exposures.get(account)
            agent.state.position = exposure.position if exposure is not None else 0
        self.next_eid = book.last_order_id + 1
        bids, asks = book.depth(book.level_count)
        lob.seed(bids, asks)
        for time_ns, price, qty, aggressor in fork.recent_trades():
            self.recent.append(Trade(time_ns, price, qty, aggressor))
            self.last_price = price
        self._recent_dirty = bool(self.recent)
        if book.paused:
            self._push(self._engine_ms_to_ns(book.volatility[3]), CLOCK, None)

    def _engine_ms_to_ns(self, engine_ms: int) -> int:
        return max(self.start_ns, (engine_ms - self._clock_offset_ms) * NS_PER_MS)

    # --- the queue --------------------------------------------------------------------------------

    def _push(self, time_ns: int, kind: int, agent: Agent | None, payload: object = None) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (time_ns, self._seq, kind, agent, payload))

    def _schedule_wake(self, agent: Agent, now: int) -> None:
        rate = agent.rate
        if agent.follows_activity:
            rate *= self.activity.level(now)
        self._push(now + max(1, int(agent.rng.expovariate(rate) * NS_PER_S)), WAKE, agent)

    # --- running ----------------------------------------------------------------------------------

    def run(self) -> RunData:
        started = time.perf_counter()
        cpu_started = time.process_time()
        for agent in self.agents:
            if agent.strategy is not OUTSIDE:  # the accounts of a fork that are no agents
                self._schedule_wake(agent, self.start_ns)
        for shock in self.config.shocks:
            self._push(shock.at_ns, SHOCK, None, shock)
        for halt in self.config.halts:
            self._push(halt.start_ns, HALT, None)
            self._push(halt.end_ns, RESUME, None)

        heap = self.heap
        pop = heapq.heappop
        end = self.end_ns
        data = self.data
        next_second = self.start_ns + NS_PER_S
        next_progress = self.start_ns + _PROGRESS_EVERY_NS
        wake = self._wake
        deliver = self._deliver
        while heap:
            now, _, kind, agent, payload = pop(heap)
            if now >= end:
                break
            if now >= next_second:
                next_second = self._sample_until(now, next_second)
                if now >= next_progress and self.progress is not None:
                    next_progress += _PROGRESS_EVERY_NS
                    self.progress(now - self.start_ns, self.lob.messages)
            if kind == WAKE:
                wake(agent, now)
            elif kind == DELIVER:
                deliver(agent, payload, now)
            elif kind == SHOCK:
                self._shock(payload, now)
            elif kind == HALT:
                self.book.halt()
                self.lob.halt_indicator(now, -1)
            elif kind == RESUME:
                self.book.resume()
                self.lob.halt_indicator(now, 1)
            else:
                self._tell_time(now)
        self._sample_until(end, next_second)
        self.lob.flush()
        self._flush_trades()
        data.messages = self.lob.messages
        data.wakes = sum(a.wakes for a in self.agents)
        data.wall_s = time.perf_counter() - started
        data.cpu_s = time.process_time() - cpu_started
        if self.progress is not None:
            self.progress(end - self.start_ns, self.lob.messages)
        return data

    def _sample_until(self, now: int, next_second: int) -> int:
        """Record the per-second series for every second boundary up to ``now``."""
        data = self.data
        lob = self.lob
        bid, ask = lob.bid, lob.ask
        if bid is not None and ask is not None:
            mid = (bid[0] + ask[0]) * 0.5
            spread = ask[0] - bid[0]
        else:
            mid, spread = math.nan, 0
        fundamental = self.fundamental.value_at(self.activity.business_time(now))
        limit = min(now, self.end_ns)
        while next_second <= limit:
            data.mid_by_second.append(mid)
            data.spread_by_second.append(spread)
            data.fundamental_by_second.append(fundamental)
            next_second += NS_PER_S
        return next_second

    def _shock(self, shock, now: int) -> None:
        self.fundamental.shock(
            shock.pct, self.activity.business_time(now), permanent=shock.permanent
        )
        self.reference = max(1, round(self.reference * (1.0 + shock.pct / 100.0)))

    # --- an agent wakes ---------------------------------------------------------------------------

    def _wake(self, agent: Agent, now: int) -> None:
        agent.wakes += 1
        lob = self.lob
        version = lob.version
        if self._view_version != version:
            self._view_version = version
            self._touch = (lob.bid, lob.ask)
        bid, ask = self._touch
        if agent.wants_depth:
            if self._depth_version != version:
                self._depth_version = version
                self._depth = lob.depth(self.config.view_levels)
            bids, asks = self._depth
        else:
            bids = asks = ()
        if self._recent_dirty:
            self._recent_dirty = False
            self._recent_tuple = tuple(self.recent)
        activity = self.activity
        # One view object for every wake, updated in place: the fields that change at every
        # wake (time, fundamental) always, the book's only when it moved. Building a frozen
        # MarketView costs about 1.3 us, most of a wake's own overhead. Safe because strategies
        # are called one at a time and never keep a view past decide() (a test checks the shipped
        # ones); the view stays read-only to them.
        view = self._view
        set_field = _set_field
        set_field(view, "time_ns", now)
        set_field(view, "fundamental", self.fundamental.value_at(activity.business_time(now)))
        if self._view_of != self._view_version or bids is not view.bids:
            self._view_of = self._view_version
            set_field(view, "bid", bid)
            set_field(view, "ask", ask)
            set_field(view, "bids", bids)
            set_field(view, "asks", asks)
        if view.last_price != self.last_price:
            set_field(view, "last_price", self.last_price)
        if view.trades is not self._recent_tuple:
            set_field(view, "trades", self._recent_tuple)
        if view.reference != self.reference:
            set_field(view, "reference", self.reference)
        state = agent.state
        actions = agent.strategy.decide(view, state)
        if actions:
            keys = []
            for action in actions:
                if type(action) is Place and action.tif == "gtc" and action.price is not None:
                    key = self.next_key
                    self.next_key = key + 1
                    state.add_order(key, action.side, action.price, action.qty, action.tag, now)
                    keys.append(key)
                else:
                    keys.append(None)
            arrival = now + agent.base_latency_ns
            if agent.jitter_ns:  # exponential jitter (expovariate's formula, inlined)
                arrival += int(-_log(1.0 - agent.latency_rng.random()) * agent.jitter_ns)
            if arrival < agent.last_arrival_ns:
                arrival = agent.last_arrival_ns  # never overtake its own earlier messages
            agent.last_arrival_ns = arrival
            self._seq += 1
            heappush(self.heap, (arrival, self._seq, DELIVER, agent, (actions, keys)))
        # The next wake: a Poisson clock at the agent's rate times the market's activity.
        rate = agent.rate * activity.level(now) if agent.follows_activity else agent.rate
        self._seq += 1
        # random.expovariate's own formula, inlined (the same draws, without the call)
        delay = int(-_log(1.0 - agent.rng.random()) / rate * NS_PER_S)
        heappush(self.heap, (now + (delay if delay > 0 else 1), self._seq, WAKE, agent, None))

    # --- the exchange receives --------------------------------------------------------------------

    def _tell_time(self, now: int) -> None:
        """Moves the engine's clock to the simulated time (its volatility guard's window and
        pauses run on it); a pause that is over ends with a type-7 row, as a halt does."""
        for event in self.book.advance_clock(now // NS_PER_MS + self._clock_offset_ms):
            if event.status == "PAUSE_ENDED":
                self.lob.halt_indicator(now, 1)

    def _deliver(self, agent: Agent, payload, now: int) -> None:
        actions, keys = payload
        book = self.book
        if self._guarded:
            self._tell_time(now)
        account = agent.account
        state = agent.state
        key_to_eid = self.key_to_eid
        self.data.commands += len(actions)
        for action, key in zip(actions, keys, strict=True):
            kind = type(action)
            if kind is Place:
                if (
                    agent.cash_limited
                    and action.side == BUY
                    and self._short_of_funds(agent, action, key)
                ):
                    continue
                eid = self.next_eid
                self.next_eid = eid + 1
                agent.orders += 1
                self.data.order_sizes[action.qty] += 1
                if key is not None:
                    key_to_eid[key] = eid
                    self.eid_to_key[eid] = key
                if action.price is None:
                    events = book.market_order(
                        eid, account, action.side, action.qty,
                        stp="cancel_newest", max_position=state.max_position,
                    )  # fmt: skip
                    self._apply(events, now, eid, action.side == BUY, 0, 0)
                else:
                    events = book.new_order(
                        eid, account, action.side, action.price, action.qty,
                        tif=action.tif, post_only=action.post_only,
                        stp="cancel_newest", max_position=state.max_position,
                    )  # fmt: skip
                    if key is not None and len(events) == 2 and events[1].kind == "level":
                        # Accepted and resting untouched: the common case, one type-1 row.
                        self.lob.add(now, eid, action.qty, action.price, action.side == BUY)
                        continue
                    rest = action.qty if action.tif == "gtc" else 0
                    self._apply(events, now, eid, action.side == BUY, action.price, rest)
            elif kind is Cancel:
                eid = key_to_eid.get(action.key)
                if eid is None:
                    continue  # done before the cancel arrived (filled, or never accepted)
                agent.cancels += 1
                events = book.cancel(eid, account)
                if len(events) == 2:
                    # Cancelled and its level updated: the common case, one type-3 row.
                    e = events[0]
                    self.lob.delete(now, eid, e.qty, e.price, e.side == BUY)
                    del key_to_eid[action.key]
                    del self.eid_to_key[eid]
                    state.apply_cancel(action.key)
                    continue
                self._apply(events, now, eid, False, 0, 0)
            else:
                eid = key_to_eid.get(action.key)
                if eid is None:
                    continue
                events = book.replace(eid, account, price=action.price, qty=action.qty)
                self._apply(events, now, eid, False, 0, 0)

    def _short_of_funds(self, agent: Agent, action: Place, key) -> bool:
        """The live gateway's buying-power rule (`exchange.orders.rules.order_cost_units`): a
        buy whose worst-case cost — price times quantity plus the worst fee; a market buy at the
        band's upper limit — is above the agent's cash (net of its fees) less what its other open
        buys reserve is refused `INSUFFICIENT_FUNDS` (a market buy with no band to value it at,
        `NO_PRICE_BAND`), before it reaches the book. True when refused."""
        rules = self._cost_rules
        price = action.price
        if price is None:
            limits = self.book.band_limits
            price = limits[1] if limits is not None else None
        if price is None:
            reason = "NO_PRICE_BAND"
        else:
            state = agent.state
            held = sum(
                order_cost_units(rules, order.price, order.qty)
                for other, order in state.open_orders.items()
                if other != key and order.side == BUY and order.price is not None
            )
            cash = cash_units(state.cash * self._money_unit - agent.fees)
            if order_cost_units(rules, price, action.qty) <= cash - held:
                return False
            reason = "INSUFFICIENT_FUNDS"
        self.data.rejections[reason] += 1
        agent.rejects += 1
        agent.state.apply_reject("new", key, reason)
        return True

    def _forget(self, eid: int) -> None:
        key = self.eid_to_key.pop(eid, None)
        if key is not None:
            del self.key_to_eid[key]

    def _apply(self, events, now: int, eid: int, is_buy: bool, price: int, rest: int) -> None:
        """Turns one command's events into LOBSTER rows and state updates. ``eid`` is the order
        the command is about; for a NEW limit order ``rest`` is the quantity that will rest if
        nothing trades (0 for IOC, FOK and market orders) — the type-1 row for what is left comes
        after the executions, as LOBSTER has it."""
        lob = self.lob
        agents = self.by_account
        eid_to_key = self.eid_to_key
        for e in events:
            kind = e.kind
            if kind == "trade":
                maker_eid = e.maker_order_id
                qty = e.qty
                trade_price = e.price
                aggressor = e.aggressor
                maker_buys = aggressor == SELL
                lob.execute(now, maker_eid, qty, trade_price, maker_buys)
                maker = agents[e.maker_account]
                taker = agents[e.taker_account]
                # A self-trade (a wash): both orders fill, neither position nor cash moves.
                wash = e.maker_account == e.taker_account
                maker_side = BUY if maker_buys else SELL
                maker_key = eid_to_key.get(maker_eid)
                maker.state.apply_trade(maker_side, trade_price, qty, maker_key, wash=wash)
                maker.trades += 1
                maker.traded_qty += qty
                if e.maker_remaining == 0:
                    self._forget(maker_eid)
                taker.state.apply_trade(aggressor, trade_price, qty, eid_to_key.get(eid), wash=wash)
                if self._fees_on:
                    # The rates the engine stamped on the trade, the exchange's fee rule.
                    value = trade_price * qty * self._money_unit
                    decimals = self._currency_decimals
                    maker.fees += fee_amount(value, e.maker_fee_bps, decimals)
                    taker.fees += fee_amount(value, e.taker_fee_bps, decimals)
                taker.trades += 1
                taker.traded_qty += qty
                if e.taker_remaining == 0:
                    self._forget(eid)
                    rest = 0
                elif rest:
                    rest = e.taker_remaining
                self._record_trade(now, trade_price, qty, aggressor, maker, taker, maker_eid, eid)
            elif kind == "cancelled":
                order_id = e.order_id
                if order_id == eid and e.reason != "USER":
                    rest = 0  # the incoming order's remainder (IOC, FOK, self-trade): never rested
                else:
                    lob.delete(now, order_id, e.qty, e.price, e.side == BUY)
                key = eid_to_key.pop(order_id, None)
                if key is not None:
                    del self.key_to_eid[key]
                    agents[e.account].state.apply_cancel(key)
            elif kind == "replaced":
                old_qty, new_qty = e.old_qty, e.qty
                new_price = e.price
                is_buy = e.side == BUY
                if e.kept_priority:
                    if new_qty < old_qty:
                        lob.partial_cancel(now, eid, old_qty - new_qty, new_price, is_buy)
                else:
                    lob.delete(now, eid, old_qty, e.old_price, is_buy)
                    price, rest = new_price, new_qty
                agents[e.account].state.apply_replace(eid_to_key.get(eid), new_price, new_qty)
            elif kind == "status":
                if e.status == "PAUSED":
                    # The volatility guard paused the book: a type-7 row now, and a clock tick
                    # when the pause is due to end (the engine ends it; `_tell_time` writes it).
                    lob.halt_indicator(now, -1)
                    self._push(self._engine_ms_to_ns(self.book.volatility[3]), CLOCK, None)
            elif kind == "rejected":
                self.data.rejections[e.reason] += 1
                agent = agents[e.account]
                agent.rejects += 1
                rest = 0
                if agent.state.apply_reject(e.command, eid_to_key.get(eid), e.reason):
                    self._forget(eid)
        if rest:
            lob.add(now, eid, rest, price, is_buy)

    def _record_trade(self, now, price, qty, aggressor, maker, taker, maker_eid, taker_eid):
        data = self.data
        data.trades += 1
        data.volume += qty
        if taker_eid != self._last_taker_eid:
            # A sweep is one order: its sign counts once in the order flow.
            self._last_taker_eid = taker_eid
            data.trade_signs.append(1 if aggressor == BUY else -1)
        self.last_price = price
        self.recent.append(Trade(now, price, qty, aggressor))
        self._recent_dirty = True
        second = (now - self.start_ns) // NS_PER_S
        data.volume_by_second[second] += qty
        data.trades_by_second[second] += 1
        if self.trades_out is not None:
            seconds, fraction = divmod(now, NS_PER_S)
            self._trade_rows.append(
                f"{seconds}.{fraction:09d},{price * self._price_multiplier},"
                f"{qty * self._lot_size},{aggressor},{maker_eid},{taker_eid},{maker.name},"
                f"{taker.name}\n"
            )
            if len(self._trade_rows) >= 65_536:
                self._flush_trades()

    def _flush_trades(self) -> None:
        if self.trades_out is not None:
            self.trades_out.writelines(self._trade_rows)
        self._trade_rows.clear()
