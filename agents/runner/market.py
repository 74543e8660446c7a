"""What the agents of one instrument see: the engine's L2 book (its book key, re-read at most
every `BOOK_MAX_AGE_S`, and only once the event stream has moved past the book last read), the
recent trades and last price (from the event stream the runner follows), the reference price
and the fundamental value (an OU process of the runner's own, moved by shocks)."""

from __future__ import annotations

import json
import time
from collections import deque

from agents.strategies import Fundamental, MarketView, Trade

BOOK_MAX_AGE_S = 0.02
# The book key is read again only when the runner has read events past the book it holds (or it
# is this old: should the event stream not be followed for a while). A read at every wake was
# about a third of the demo market's runner's Redis commands, mostly of a book that had not
# changed.
BOOK_UNCHANGED_MAX_AGE_S = 1.0
DEPTH = 10
TRADES_KEPT = 30
# The fundamental value: mean-reverting around the reference price, with jumps now and then.
# About ±1 % around it over a quarter of an hour; a jump of ~0.3 % a minute on average: enough
# for a price that visibly moves on the dashboard, small enough for the book to stay sane.
FUNDAMENTAL_PARAMS = {
    "half_life_s": 900.0,
    "sd": 0.01,
    "jump_rate_per_hour": 60.0,
    "jump_sd": 0.003,
    "step_s": 1.0,
}


class SymbolMarket:
    def __init__(
        self,
        symbol: str,
        *,
        book_key: str,
        reference_ticks: int,
        seed: int,
        saved: dict | None = None,
        now_ns: int | None = None,
    ):
        self.symbol = symbol
        self.book_key = book_key
        self.reference_ticks = reference_ticks
        self.trades: deque[Trade] = deque(maxlen=TRADES_KEPT)
        self.last_price: int | None = None
        self.halted = False
        self.paused = False  # by the volatility guard: orders would be refused, so none are sent
        self.shock_floor = "0-0"  # shocks up to this stream id are already in the fundamental
        self._bids: list = []
        self._asks: list = []
        self._book_read = 0.0
        self.book_seq = -1  # the sequence number of the book held
        self.stream_seq = 0  # the last sequence number read from the event stream
        now_ns = time.time_ns() if now_ns is None else now_ns
        mean, value = float(reference_ticks), None
        if saved:  # carry on where the last runner left the process
            mean, value = float(saved["mean"]), float(saved["value"])
        self.fundamental = Fundamental(
            {**FUNDAMENTAL_PARAMS, "mean": max(mean, 1.0)},
            seed,
            start_ns=now_ns,
            initial=value,
        )

    # --- the book ---

    async def refresh_book(self, redis) -> None:
        now = time.monotonic()
        age = now - self._book_read
        if age < BOOK_MAX_AGE_S or (
            self.book_seq >= self.stream_seq and age < BOOK_UNCHANGED_MAX_AGE_S
        ):
            return
        self._book_read = now
        raw = await redis.get(self.book_key)
        if raw is None:
            self._bids, self._asks = [], []
            self.book_seq = -1
            return
        book = json.loads(raw)
        self.book_seq = int(book.get("seq", -1))
        self._bids = [tuple(level) for level in book.get("bids", [])[:DEPTH]]
        self._asks = [tuple(level) for level in book.get("asks", [])[:DEPTH]]
        self.halted = bool(book.get("halted", False))
        self.paused = book.get("paused_until") is not None

    @property
    def closed(self) -> bool:
        """Whether the book refuses new orders now (halted, or paused by the volatility guard)."""
        return self.halted or self.paused

    def view(self, now_ns: int) -> MarketView:
        return MarketView.from_depth(
            now_ns,
            self._bids,
            self._asks,
            last_price=self.last_price,
            trades=tuple(self.trades),
            reference=self.reference_ticks,
            fundamental=self.fundamental.value_at(now_ns),
        )

    def mark_ticks(self) -> float | None:
        """Where positions are valued: the mid, else the last trade, else the reference."""
        if self._bids and self._asks:
            return (self._bids[0][0] + self._asks[0][0]) / 2
        if self.last_price is not None:
            return float(self.last_price)
        return float(self.reference_ticks)

    # --- events ---

    def on_trade(self, time_ns: int, price: int, qty: int, aggressor: str) -> None:
        self.trades.append(Trade(time_ns, price, qty, aggressor))
        self.last_price = price

    def on_reset(self) -> None:
        self.trades.clear()
        self.last_price = None
        self.paused = False
        self._bids, self._asks = [], []
        self._book_read = 0.0

    def shock(self, pct: float, now_ns: int) -> None:
        self.fundamental.shock(pct, now_ns)
        self._book_read = 0.0

    def saved_state(self, shock_id: str) -> dict:
        return {
            "value": self.fundamental.value,
            "mean": self.fundamental.mean,
            "shock_id": max(shock_id, self.shock_floor, key=_id_key),
            "ts_ms": time.time_ns() // 1_000_000,
        }


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
