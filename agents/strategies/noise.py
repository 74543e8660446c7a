"""Noise trader: uninformed order flow around the mid.

At each wake it first tidies its own orders — cancelling those older than ``order_ttl_s`` or
farther than ``stale_ticks`` from the current anchor, the oldest ones beyond ``max_open``, and
(with probability ``cancel_prob``) its oldest one — then sends one order: a random side
(``buy_prob``), a heavy-tailed size (a Pareto draw with tail index ``size_alpha``, scaled by
``size_min``, capped at ``size_max``), and

* with probability ``cross_prob`` a marketable order: a market order (probability
  ``market_prob``) or an IOC limit ``cross_slip_ticks`` through the opposite touch;
* otherwise a GTC limit ``k`` ticks behind the mid (``k`` geometric, mean about
  ``offset_mean``), never crossing the opposite touch — so a wide spread gets filled in.
"""

from __future__ import annotations

import math

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

__all__ = ["NoiseParams", "NoiseStrategy"]


class NoiseParams(Params):
    buy_prob: float = param(0.5, lo=0.0, hi=1.0, help="Probability an order is a buy.")
    size_min: int = param(1, lo=1, hi=1_000_000, help="Smallest order size (lots).")
    size_max: int = param(100, lo=1, hi=1_000_000, help="Largest order size (lots).")
    size_alpha: float = param(
        1.5, lo=0.5, hi=10.0, help="Pareto tail index of sizes (smaller = heavier tail)."
    )
    offset_mean: float = param(
        3.0, lo=0.0, hi=10_000.0, help="Mean distance of limit orders behind the mid (ticks)."
    )
    cross_prob: float = param(
        0.1, lo=0.0, hi=1.0, help="Probability an order is marketable (takes liquidity)."
    )
    market_prob: float = param(
        0.3, lo=0.0, hi=1.0, help="Share of marketable orders sent as market orders (else IOC)."
    )
    cross_slip_ticks: int = param(
        1, lo=0, hi=10_000, help="How far a marketable IOC limit reaches through the touch."
    )
    cancel_prob: float = param(
        0.2, lo=0.0, hi=1.0, help="Probability per wake of cancelling its oldest order."
    )
    max_open: int = param(5, lo=1, hi=1000, help="Most resting orders it keeps.")
    order_ttl_s: float = param(60.0, lo=0.001, hi=1e7, help="Orders older than this are cancelled.")
    stale_ticks: int = param(
        50, lo=1, hi=10**9, help="Orders farther than this from the mid are cancelled."
    )

    def check(self) -> None:
        if self.size_max < self.size_min:
            raise ParamError("size_max", f"must be at least size_min ({self.size_min})")


class NoiseStrategy(Strategy):
    name = "noise"
    params_cls = NoiseParams
    params: NoiseParams

    def reset(self) -> None:
        p = self.params
        self._ttl_ns = round(p.order_ttl_s * NS_PER_S)
        # int(expovariate(lam)) is geometric with mean 1 / (e^lam - 1): solve for offset_mean.
        self._offset_lam = math.log1p(1.0 / p.offset_mean) if p.offset_mean > 0 else 0.0

    def decide(self, view: MarketView, state: AgentState) -> list[Action]:
        p = self.params
        rng = self.rng
        random = rng.random
        actions: list[Action] = []
        ref = view.ref_price
        orders = state.open_orders

        # 1. Tidy up: stale, far away, too many, or now and then the oldest.
        if orders:
            now = view.time_ns
            ttl = self._ttl_ns
            stale = p.stale_ticks
            keep = []
            for key, o in orders.items():
                if now - o.time_ns > ttl or (ref is not None and abs(o.price - ref) > stale):
                    actions.append(Cancel(key))
                else:
                    keep.append(key)
            excess = len(keep) - (p.max_open - 1)  # room for the order about to be sent
            if excess <= 0 and keep and random() < p.cancel_prob:
                excess = 1
            for i in range(min(max(excess, 0), len(keep))):
                actions.append(Cancel(keep[i]))

        if ref is None:
            return actions

        # 2. One new order.
        buy = random() < p.buy_prob
        qty = int(p.size_min * rng.paretovariate(p.size_alpha))
        if qty > p.size_max:
            qty = p.size_max
        room = state.buy_room() if buy else state.sell_room()
        if qty > room:
            qty = room
        if qty <= 0:
            return actions
        side = BUY if buy else SELL
        opposite = view.ask if buy else view.bid

        if opposite is not None and random() < p.cross_prob:
            if random() < p.market_prob:
                actions.append(Place(side, qty, None, "ioc"))
            else:
                slip = p.cross_slip_ticks
                price = opposite[0] + slip if buy else opposite[0] - slip
                if price >= 1:
                    actions.append(Place(side, qty, price, "ioc"))
            return actions

        k = int(rng.expovariate(self._offset_lam)) if self._offset_lam else 0
        if buy:
            price = math.floor(ref) - k
            if opposite is not None and price >= opposite[0]:
                price = opposite[0] - 1
        else:
            price = math.ceil(ref) + k
            if opposite is not None and price <= opposite[0]:
                price = opposite[0] + 1
        if price >= 1:
            actions.append(Place(side, qty, price, "gtc", False, "n"))
        return actions
