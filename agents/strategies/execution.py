"""Execution agents: a parent order of ``quantity`` lots worked into the market in child orders,
as a broker's algorithm does, and its cost measured the way desks measure it.

* **TWAP** (``twap``): the schedule is linear in time — by ``t`` seconds after its first wake it
  should have done ``quantity * t / horizon_s``.
* **POV** (``pov``, percentage of volume): it should have done ``participation`` of the volume
  the market traded since its first wake (its own fills included), up to ``quantity``.

At each wake the agent compares what it has done with the schedule. Behind by up to
``catch_up_lots`` it works passively: one limit order for the shortfall at its own side's touch
(re-pegged when the touch moves or after ``refresh_s``). Behind by more, or at the horizon, it
takes: an IOC limit ``slip_ticks`` through the opposite touch. Ahead of schedule it waits. It
stops once the whole quantity is done. With ``delay_s`` it starts that long after its first
wake (parent orders arriving through the day).

What it cost (``report()``): the average fill price against the **arrival price** (the mid at its
first wake; implementation shortfall) and against the market's **VWAP** over its active period,
both in basis points, positive when it paid (bought above, sold below). The VWAP and POV's volume
come from the view's window of recent trades, read once each (by time): an agent must wake often
enough that the window (30 trades live, `recent_trades` in a simulation: 20 by default) does
not overflow between wakes, or it undercounts volume.
"""

from __future__ import annotations

from typing import Literal

from .base import (
    BUY,
    NS_PER_S,
    Action,
    AgentState,
    Cancel,
    MarketView,
    Params,
    Place,
    Strategy,
    param,
)

__all__ = ["PovParams", "PovStrategy", "TwapParams", "TwapStrategy"]

CHILD = "x"  # the tag of its resting child order


class ExecutionParams(Params):
    side: Literal["buy", "sell"] = param("buy", help="Buy or sell the parent order.")
    quantity: int = param(500, lo=1, hi=10**12, help="The parent order's size (lots).")
    catch_up_lots: int = param(
        20, lo=0, hi=10**12, help="Behind schedule by more than this, it takes liquidity."
    )
    slip_ticks: int = param(
        2, lo=0, hi=100_000, help="How far a catch-up IOC reaches through the opposite touch."
    )
    refresh_s: float = param(
        30.0, lo=0.001, hi=86_400.0, help="A resting child older than this is re-pegged."
    )
    delay_s: float = param(
        0.0, lo=0.0, hi=7 * 86_400.0, help="Waits this long after its first wake to start (s)."
    )


class TwapParams(ExecutionParams):
    horizon_s: float = param(
        1800.0, lo=1.0, hi=7 * 86_400.0, help="Time to spread the parent order over (s)."
    )


class PovParams(ExecutionParams):
    participation: float = param(
        0.1, lo=0.001, hi=0.5, help="Share of the market's volume it aims to be."
    )


class _ExecutionStrategy(Strategy):
    params: ExecutionParams

    def reset(self) -> None:
        self.first_wake_ns: int | None = None
        self.start_ns: int | None = None
        self.end_ns: int | None = None  # the wake at which it saw the parent order done
        self.end_mid: float | None = None  # and the mid (ticks) then
        self.arrival: float | None = None  # mid (ticks) at the first wake
        self.start_position = 0
        self.start_cash = 0
        self.seen_ns = -1  # the newest trade of the window already counted
        self.market_qty = 0  # the market's volume since the first wake (lots)
        self.market_notional = 0  # and its price x quantity (ticks x lots)

    # -- the schedule (subclasses) --------------------------------------------------------------

    def target(self, view: MarketView) -> int:
        """Lots it should have done by now."""
        raise NotImplementedError

    def overdue(self, view: MarketView) -> bool:
        """Whether what is left must be taken now."""
        return False

    # -- what was done ---------------------------------------------------------------------------

    def done(self, state: AgentState) -> int:
        moved = state.position - self.start_position
        return moved if self.params.side == BUY else -moved

    def _count_trades(self, view: MarketView) -> None:
        for trade in view.trades:
            if trade.time_ns > self.seen_ns:
                self.market_qty += trade.qty
                self.market_notional += trade.price * trade.qty
        if view.trades:
            self.seen_ns = max(self.seen_ns, view.trades[-1].time_ns)

    def decide(self, view: MarketView, state: AgentState) -> list[Action]:
        p = self.params
        if self.first_wake_ns is None:
            self.first_wake_ns = view.time_ns
        if self.start_ns is None and view.time_ns - self.first_wake_ns < p.delay_s * NS_PER_S:
            # Not started yet: a parent order that arrives later in the day (staggered metaorders
            # in one run). The arrival price is the mid when it does start.
            return []
        if self.start_ns is None:
            self.start_ns = view.time_ns
            self.arrival = view.mid if view.mid is not None else view.ref_price
            self.start_position, self.start_cash = state.position, state.cash
            # Trades before its arrival are not its market's.
            self.seen_ns = view.trades[-1].time_ns if view.trades else -1
        else:
            self._count_trades(view)
        done = self.done(state)
        left = p.quantity - done
        child = next(
            ((key, o) for key, o in state.open_orders.items() if o.tag == CHILD), (None, None)
        )
        key, resting = child
        if left <= 0:
            if self.end_ns is None:
                self.end_ns = view.time_ns
                self.end_mid = view.mid if view.mid is not None else view.ref_price
            return [Cancel(key)] if key is not None else []
        behind = min(self.target(view), p.quantity) - done
        buy = p.side == BUY
        near = view.bid if buy else view.ask
        far = view.ask if buy else view.bid
        actions: list[Action] = []

        if (behind > p.catch_up_lots or self.overdue(view)) and far is not None:
            if key is not None:
                actions.append(Cancel(key))
            qty = min(left, max(behind, 1))
            price = far[0] + p.slip_ticks if buy else far[0] - p.slip_ticks
            if price >= 1:
                actions.append(Place(p.side, qty, price, "ioc"))
            return actions

        if behind <= 0:
            return actions  # ahead of schedule: let the resting child be
        price = near[0] if near is not None else None
        if price is None:
            ref = view.ref_price
            if ref is None:
                return actions
            price = int(ref) - 1 if buy else int(ref) + 1
        qty = min(left, behind)
        if resting is not None:
            # A child still at the touch stays (its place in the queue is worth more than a few
            # more lots): the shortfall grows a little each wake, and re-sizing it every time
            # would cancel and re-queue all day. Falling far behind is the catch-up's job.
            fresh = view.time_ns - resting.time_ns < p.refresh_s * NS_PER_S
            if fresh and resting.price == price:
                return actions
            actions.append(Cancel(key))
        if price >= 1:
            actions.append(Place(p.side, qty, price, "gtc", False, CHILD))
        return actions

    # -- what it cost ----------------------------------------------------------------------------

    def report(self, state: AgentState) -> dict:
        """The execution so far: done and left (lots), average fill price, arrival price and
        the market's VWAP over its active period (ticks), and the costs against both (bps,
        positive when it paid). From its trades' cash (tick-lots), before fees."""
        done = self.done(state)
        out = {
            "side": self.params.side,
            "quantity": self.params.quantity,
            "done": done,
            "left": self.params.quantity - done,
            "arrival": self.arrival,
            "vwap": self.market_notional / self.market_qty if self.market_qty else None,
            "average": None,
            "cost_vs_arrival_bps": None,
            "cost_vs_vwap_bps": None,
        }
        if done <= 0:
            return out
        paid = (
            self.start_cash - state.cash
            if self.params.side == BUY
            else state.cash - self.start_cash
        )
        average = paid / done
        sign = 1 if self.params.side == BUY else -1
        out["average"] = average
        for name, benchmark in (("arrival", out["arrival"]), ("vwap", out["vwap"])):
            if benchmark:
                out[f"cost_vs_{name}_bps"] = sign * (average - benchmark) / benchmark * 10_000
        return out

    def metaorder(self, state: AgentState) -> dict | None:
        """The parent order as a metaorder, for measuring its price impact
        (``agents/research/impact.py``): side (+1 buy, -1 sell), quantity and lots done, the
        times it started and finished (ns after midnight; ``end_ns`` None while unfinished) and
        the mid at both (ticks). None until it starts."""
        if self.start_ns is None:
            return None
        return {
            "sign": 1 if self.params.side == BUY else -1,
            "quantity": self.params.quantity,
            "done": self.done(state),
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "arrival": self.arrival,
            "end_mid": self.end_mid,
        }


class TwapStrategy(_ExecutionStrategy):
    name = "twap"
    params_cls = TwapParams
    params: TwapParams

    def _elapsed(self, view: MarketView) -> float:
        return (view.time_ns - self.start_ns) / NS_PER_S

    def target(self, view: MarketView) -> int:
        share = min(1.0, self._elapsed(view) / self.params.horizon_s)
        return int(self.params.quantity * share)

    def overdue(self, view: MarketView) -> bool:
        return self._elapsed(view) >= self.params.horizon_s


class PovStrategy(_ExecutionStrategy):
    name = "pov"
    params_cls = PovParams
    params: PovParams

    def target(self, view: MarketView) -> int:
        return int(self.market_qty * self.params.participation)
