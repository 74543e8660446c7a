"""Market maker: a ladder of passive quotes on both sides, re-quoted in place.

* **Anchor.** The mid of the *other* participants' touch — its own quotes are taken out of the
  depth first, so skewing its quotes cannot drag its own anchor along (a maker quoting around a
  mid it makes itself runs away). Without a two-sided book it falls back to the last trade, the
  one side others quote, the view's reference price, the fundamental, and finally its previous
  anchor.
* **Ladder.** ``levels`` quotes a side, ``spacing`` ticks apart, ``size`` lots each; the inner
  quotes ``half_spread`` ticks from the centre (rounded outward).
* **Inventory.** The centre moves ``skew`` ticks per lot of position *against* the position (long
  → quotes lower, so it sells more readily and buys less); at ``max_inventory`` it stops quoting
  the side that would grow the position; ladder sizes shrink to fit the engine's position limit
  (``state.max_position`` counts open orders).
* **Re-quoting.** Each quote carries its level as tag (``b0``, ``a2``, ...): an existing quote is
  moved or resized with a ``Replace``, never duplicated; anything else it owns is cancelled. So it
  never has more than ``levels`` orders a side. Actions that lower its open quantity come first,
  so the engine's position check never sees a transient excess. Inner quotes are kept one tick
  off the opposite touch, so it never takes liquidity (nor crosses its own stale quotes).
* **Shocks.** If the anchor moved ``shock_ticks`` or more within ``shock_window_s``, or recent
  trades spanned that many ticks (a sweep through the book), it multiplies its half-spread by
  ``widen_factor`` for ``widen_s`` seconds.
"""

from __future__ import annotations

import math
from collections import deque

from .base import (
    BUY,
    NS_PER_S,
    SELL,
    Action,
    AgentState,
    Cancel,
    MarketView,
    Params,
    Place,
    Replace,
    Strategy,
    param,
)

__all__ = ["MarketMakerParams", "MarketMakerStrategy"]


class MarketMakerParams(Params):
    levels: int = param(3, lo=1, hi=50, help="Quotes per side.")
    size: int = param(5, lo=1, hi=1_000_000, help="Lots per quote.")
    half_spread: float = param(
        1.0, lo=0.5, hi=100_000.0, help="Distance of the inner quotes from the centre (ticks)."
    )
    spacing: int = param(1, lo=1, hi=100_000, help="Ticks between the levels of the ladder.")
    skew: float = param(
        0.1, lo=0.0, hi=1000.0, help="Ticks the quotes move against the position, per lot held."
    )
    max_inventory: int = param(
        50, lo=1, hi=10**12, help="Stop quoting the side that would grow |position| past this."
    )
    requote_ticks: int = param(
        1, lo=1, hi=100_000, help="Move a quote only once its price is this far off."
    )
    refill_ratio: float = param(
        0.5, lo=0.0, hi=1.0, help="Top a quote back up once its open size is below this share."
    )
    shock_ticks: int = param(
        20, lo=1, hi=10**9, help="A move of this many ticks within the window is a shock."
    )
    shock_window_s: float = param(2.0, lo=0.001, hi=86_400.0, help="Shock detection window.")
    widen_factor: float = param(
        3.0, lo=1.0, hi=1000.0, help="Half-spread multiplier after a shock."
    )
    widen_s: float = param(10.0, lo=0.0, hi=86_400.0, help="How long the spread stays wide.")
    post_only: bool = param(True, help="Send quotes post-only (never take liquidity).")


def _others_best(levels: object, touch: tuple[int, int] | None, own: dict[int, int]) -> int | None:
    """The best price on one side with someone else's quantity at it."""
    if levels:
        for price, qty in levels:  # type: ignore[attr-defined]
            if qty > own.get(price, 0):
                return price
        return None
    if touch is None:
        return None
    return touch[0] if touch[1] > own.get(touch[0], 0) else None


class MarketMakerStrategy(Strategy):
    name = "market_maker"
    params_cls = MarketMakerParams
    params: MarketMakerParams

    def reset(self) -> None:
        p = self.params
        n = p.levels
        self._tags = tuple(f"b{k}" for k in range(n)) + tuple(f"a{k}" for k in range(n))
        self._slot_of = {tag: i for i, tag in enumerate(self._tags)}
        self._window_ns = round(p.shock_window_s * NS_PER_S)
        self._widen_ns = round(p.widen_s * NS_PER_S)
        self._history: deque[tuple[int, float]] = deque()
        self._widen_until = -1
        self._anchor: float | None = None
        self._last_time = -1

    @property
    def widened(self) -> bool:
        """True while the spread is widened after a shock (as of the last wake)."""
        return self._widen_until > self._last_time

    def decide(self, view: MarketView, state: AgentState) -> list[Action]:
        p = self.params
        n = p.levels
        now = view.time_ns
        self._last_time = now
        first: list[Action] = []  # cancels and shrinking changes
        later: list[Action] = []  # growth: new quotes, larger sizes

        # Own orders into ladder slots; strays and duplicates are cancelled.
        slots: list = [None] * (2 * n)
        slot_of = self._slot_of
        own_bid: dict[int, int] = {}
        own_ask: dict[int, int] = {}
        for key, o in state.open_orders.items():
            is_buy = o.side == BUY
            own = own_bid if is_buy else own_ask
            own[o.price] = own.get(o.price, 0) + o.qty
            i = slot_of.get(o.tag)  # type: ignore[arg-type]
            if i is None or slots[i] is not None or (i < n) != is_buy:
                first.append(Cancel(key))
            else:
                slots[i] = (key, o)

        # Anchor: the others' mid, else the fallbacks.
        other_bid = _others_best(view.bids, view.bid, own_bid) if own_bid else view.best_bid
        other_ask = _others_best(view.asks, view.ask, own_ask) if own_ask else view.best_ask
        if other_bid is not None and other_ask is not None:
            anchor: float | None = (other_bid + other_ask) * 0.5
        elif view.last_price is not None:
            anchor = float(view.last_price)
        elif other_bid is not None:
            anchor = float(other_bid)
        elif other_ask is not None:
            anchor = float(other_ask)
        elif view.reference is not None:
            anchor = float(view.reference)
        elif view.fundamental is not None:
            anchor = view.fundamental
        else:
            anchor = self._anchor
        if anchor is None:
            return first
        self._anchor = anchor

        # Shock detection: the anchor's move over the window, and the span of recent trades.
        history = self._history
        history.append((now, anchor))
        horizon = now - self._window_ns
        while history[0][0] < horizon:
            history.popleft()
        move = abs(anchor - history[0][1])
        trades = view.trades
        if trades:
            lo = hi = trades[-1].price
            for i in range(len(trades) - 1, -1, -1):
                tr = trades[i]
                if tr.time_ns < horizon:
                    break
                if tr.price < lo:
                    lo = tr.price
                elif tr.price > hi:
                    hi = tr.price
            if hi - lo > move:
                move = hi - lo
        if move >= p.shock_ticks:
            self._widen_until = now + self._widen_ns
        half = p.half_spread * p.widen_factor if now < self._widen_until else p.half_spread

        # Target ladder.
        position = state.position
        centre = anchor - position * p.skew
        bid0 = math.floor(centre - half)
        ask0 = math.ceil(centre + half)
        if view.ask is not None and bid0 >= view.ask[0]:
            bid0 = view.ask[0] - 1
        if view.bid is not None and ask0 <= view.bid[0]:
            ask0 = view.bid[0] + 1
        limit = state.max_position
        bid_budget = (p.size * n) if position < p.max_inventory else 0
        ask_budget = (p.size * n) if position > -p.max_inventory else 0
        if limit is not None:
            bid_budget = min(bid_budget, limit - position)
            ask_budget = min(ask_budget, limit + position)

        spacing = p.spacing
        size = p.size
        requote = p.requote_ticks
        refill = p.refill_ratio
        post_only = p.post_only
        tags = self._tags
        for i in range(2 * n):
            if i < n:
                side = BUY
                price = bid0 - i * spacing
                qty = size if bid_budget >= size else max(bid_budget, 0)
                bid_budget -= qty
            else:
                side = SELL
                price = ask0 + (i - n) * spacing
                qty = size if ask_budget >= size else max(ask_budget, 0)
                ask_budget -= qty
            if price < 1:
                qty = 0
            current = slots[i]
            if current is None:
                if qty > 0:
                    later.append(Place(side, qty, price, "gtc", post_only, tags[i]))
                continue
            key, o = current
            if qty <= 0:
                first.append(Cancel(key))
            elif o.price != price and abs(o.price - price) >= requote:
                (first if qty <= o.qty else later).append(Replace(key, price, qty))
            elif o.qty < qty * refill:
                later.append(Replace(key, None, qty))
            elif o.qty > qty:
                first.append(Replace(key, None, qty))
        if later:
            first.extend(later)
        return first
