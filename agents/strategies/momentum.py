"""Momentum trader: a moving-average crossover that takes liquidity.

At each wake it samples a price — the mid (``source="mid"``) or the last trade
(``source="trade"``; the mid until the first trade) — into two exponential moving averages with
time constants ``fast_s`` and ``slow_s``, weighted by the real time between samples, so the
signal does not depend on how often it wakes. Once warmed up (``slow_s`` of samples), the signal
turns long when the fast average is more than ``threshold_ticks`` above the slow one and short
when it is that far below; in between it keeps its last direction but does not trade.

While the signal is long it buys toward a position of ``+max_position``, at most ``trade_size``
lots per wake; while short it sells toward ``-max_position``. So it trades when the signal flips
and stops when it is at its limit. Orders take liquidity: IOC limits ``aggression_ticks`` through
the opposite touch, or market orders with ``use_market``.
"""

from __future__ import annotations

import math
from typing import Literal

from .base import (
    BUY,
    NS_PER_S,
    SELL,
    Action,
    AgentState,
    Cancel,
    MarketView,
    ParamError,
    Params,
    Place,
    Strategy,
    param,
)

__all__ = ["MomentumParams", "MomentumStrategy"]


class MomentumParams(Params):
    source: Literal["mid", "trade"] = param("mid", help="Price the averages follow.")
    fast_s: float = param(10.0, lo=0.001, hi=86_400.0, help="Fast average time constant (s).")
    slow_s: float = param(60.0, lo=0.001, hi=864_000.0, help="Slow average time constant (s).")
    threshold_ticks: float = param(
        1.0, lo=0.0, hi=1e9, help="Fast minus slow must exceed this to signal (ticks)."
    )
    trade_size: int = param(5, lo=1, hi=1_000_000, help="Most lots traded per wake.")
    max_position: int = param(25, lo=1, hi=10**12, help="Position it trades toward (lots).")
    aggression_ticks: int = param(
        2, lo=0, hi=100_000, help="How far its IOC limit reaches through the opposite touch."
    )
    use_market: bool = param(False, help="Send market orders instead of IOC limits.")

    def check(self) -> None:
        if self.slow_s <= self.fast_s:
            raise ParamError("slow_s", f"must be greater than fast_s ({self.fast_s})")


class MomentumStrategy(Strategy):
    name = "momentum"
    params_cls = MomentumParams
    params: MomentumParams

    def reset(self) -> None:
        p = self.params
        self._inv_fast_ns = 1.0 / (p.fast_s * NS_PER_S)
        self._inv_slow_ns = 1.0 / (p.slow_s * NS_PER_S)
        self._warmup_ns = round(p.slow_s * NS_PER_S)
        self._use_trades = p.source == "trade"
        self._fast = 0.0
        self._slow = 0.0
        self._t = -1
        self._t0 = -1
        #: +1 long, -1 short, 0 not yet decided.
        self.signal = 0

    def decide(self, view: MarketView, state: AgentState) -> list[Action]:
        p = self.params
        price: float | None
        if self._use_trades and view.last_price is not None:
            price = float(view.last_price)
        else:
            price = view.mid
            if price is None:
                price = view.ref_price
        if price is None:
            return []
        now = view.time_ns
        if self._t < 0:
            self._fast = self._slow = price
            self._t = self._t0 = now
            return []
        dt = now - self._t
        if dt > 0:
            self._fast += (1.0 - math.exp(-dt * self._inv_fast_ns)) * (price - self._fast)
            self._slow += (1.0 - math.exp(-dt * self._inv_slow_ns)) * (price - self._slow)
            self._t = now
        if now - self._t0 < self._warmup_ns:
            return []

        diff = self._fast - self._slow
        if diff > p.threshold_ticks:
            self.signal = 1
        elif diff < -p.threshold_ticks:
            self.signal = -1
        else:
            return []  # dead zone: hold

        # It only ever takes liquidity; anything resting (left over from elsewhere) goes.
        actions: list[Action] = [Cancel(k) for k in state.open_orders] if state.open_orders else []
        position = state.position
        if self.signal > 0:
            qty = min(p.trade_size, p.max_position - position, state.buy_room())
            touch = view.ask
            side = BUY
        else:
            qty = min(p.trade_size, p.max_position + position, state.sell_room())
            touch = view.bid
            side = SELL
        if qty <= 0:
            return actions
        if p.use_market:
            actions.append(Place(side, qty, None, "ioc"))
        elif touch is not None:
            limit = touch[0] + p.aggression_ticks if side == BUY else touch[0] - p.aggression_ticks
            if limit >= 1:
                actions.append(Place(side, qty, limit, "ioc"))
        return actions
