"""Value trader: trades the gap between the price and its estimate of the fundamental value.

It observes the fundamental (``view.fundamental``, see :mod:`.fundamental`) through noise: its
estimate is the true value plus a private bias (drawn once, standard deviation ``bias_ticks``) plus
fresh noise at each look (standard deviation ``noise_ticks``). The mispricing ``m`` is the
estimate minus the mid (or the best anchor the view has).

Its demand grows with the mispricing: it wants a position of ``lots_per_tick`` lots per tick of
``|m|`` beyond ``threshold_ticks`` (long when the price is below its estimate, short above),
capped at ``max_position``, and flat inside the threshold. Each wake it trades toward that target,
at most ``trade_size`` lots:

* toward the mispricing and ``|m| >= aggressive_ticks``: it withdraws its resting order and takes
  liquidity with an IOC limit up to ``slip_ticks`` through the touch, never paying more (or
  selling for less) than its estimate;
* otherwise passively, with one working order moved by ``Replace`` as the market moves: one tick
  inside the touch when the spread allows (at the touch otherwise), never beyond its estimate
  less the threshold; when only unwinding a position the target no longer justifies, it joins
  the touch instead of improving it.

Because it unwinds as the price comes back to value, it keeps capacity for the next mispricing
instead of sitting at its limit.
"""

from __future__ import annotations

import math

from .base import (
    BUY,
    SELL,
    Action,
    AgentState,
    Cancel,
    MarketView,
    ParamError,
    Params,
    Place,
    Replace,
    Strategy,
    param,
)

__all__ = ["ValueParams", "ValueStrategy"]


class ValueParams(Params):
    noise_ticks: float = param(
        5.0, lo=0.0, hi=1e9, help="Standard deviation of each observation's noise (ticks)."
    )
    bias_ticks: float = param(
        0.0, lo=0.0, hi=1e9, help="Standard deviation of the agent's persistent bias (ticks)."
    )
    threshold_ticks: float = param(
        3.0, lo=0.0, hi=1e9, help="Mispricing at which it starts trading passively (ticks)."
    )
    aggressive_ticks: float = param(
        15.0, lo=0.0, hi=1e9, help="Mispricing at which it takes liquidity (ticks)."
    )
    slip_ticks: int = param(
        2, lo=0, hi=100_000, help="How far an aggressive IOC reaches through the touch."
    )
    lots_per_tick: float = param(
        1.0, lo=0.0001, hi=1e9, help="Target position per tick of mispricing past the threshold."
    )
    trade_size: int = param(5, lo=1, hi=1_000_000, help="Most lots per order.")
    max_position: int = param(50, lo=1, hi=10**12, help="Largest position either way (lots).")

    def check(self) -> None:
        if self.aggressive_ticks < self.threshold_ticks:
            raise ParamError(
                "aggressive_ticks", f"must be at least threshold_ticks ({self.threshold_ticks})"
            )


class ValueStrategy(Strategy):
    name = "value"
    params_cls = ValueParams
    params: ValueParams

    def reset(self) -> None:
        b = self.params.bias_ticks
        self.bias = self.rng.gauss(0.0, b) if b > 0 else 0.0
        #: The last estimate it acted on (for inspection and tests).
        self.estimate: float | None = None

    def decide(self, view: MarketView, state: AgentState) -> list[Action]:
        fundamental = view.fundamental
        if fundamental is None:
            return []
        p = self.params
        noise = p.noise_ticks
        estimate = fundamental + self.bias + (self.rng.gauss(0.0, noise) if noise > 0 else 0.0)
        self.estimate = estimate
        bid, ask = view.bid, view.ask
        ref = view.ref_price  # never None here: it falls back to the fundamental
        mispricing = estimate - ref  # type: ignore[operator]
        threshold = p.threshold_ticks
        excess = abs(mispricing) - threshold
        if excess > 0:
            target = min(p.max_position, int(p.lots_per_tick * excess) + 1)
            if mispricing < 0:
                target = -target
        else:
            target = 0
        position = state.position
        delta = target - position
        orders = state.open_orders
        actions: list[Action] = []
        if delta == 0:
            for key in orders:
                actions.append(Cancel(key))
            return actions

        buy = delta > 0
        side = BUY if buy else SELL
        # Toward the mispricing (buying cheap, selling dear), or only unwinding?
        with_value = excess > 0 and (mispricing > 0) == buy
        room = state.buy_room() if buy else state.sell_room()
        want = delta if buy else -delta

        if with_value and excess + threshold >= p.aggressive_ticks:
            touch = ask if buy else bid
            if touch is not None:
                # Withdraw everything resting, then take.
                for key, o in orders.items():
                    actions.append(Cancel(key))
                    if o.side == side:
                        room += o.qty
                qty = min(p.trade_size, want, room)
                if buy:
                    limit = min(touch[0] + p.slip_ticks, math.floor(estimate))
                else:
                    limit = max(touch[0] - p.slip_ticks, math.ceil(estimate))
                if qty > 0 and limit >= 1:
                    actions.append(Place(side, qty, limit, "ioc"))
                return actions

        # Passive: one working order at or inside the touch.
        if buy:
            if with_value:
                price = math.floor(estimate - threshold)
                if bid is not None:
                    inside = bid[0] + 1
                    if ask is not None and inside >= ask[0]:
                        inside = bid[0]
                    price = min(price, inside)
            else:
                price = bid[0] if bid is not None else math.floor(estimate - threshold)
            if ask is not None and price >= ask[0]:
                price = ask[0] - 1
        else:
            if with_value:
                price = math.ceil(estimate + threshold)
                if ask is not None:
                    inside = ask[0] - 1
                    if bid is not None and inside <= bid[0]:
                        inside = ask[0]
                    price = max(price, inside)
            else:
                price = ask[0] if ask is not None else math.ceil(estimate + threshold)
            if bid is not None and price <= bid[0]:
                price = bid[0] + 1
        working = None
        for key, o in orders.items():
            if working is None and o.side == side:
                working = (key, o)
                room += o.qty  # it is being moved, not added to
            else:
                actions.append(Cancel(key))
        qty = min(p.trade_size, want, room)
        if qty <= 0 or price < 1:
            if working is not None:
                actions.append(Cancel(working[0]))
            return actions
        if working is None:
            actions.append(Place(side, qty, price, "gtc", False, "v"))
        else:
            key, o = working
            if o.price != price:
                actions.append(Replace(key, price, qty))
            elif o.qty > qty:
                actions.append(Replace(key, None, qty))
        return actions
