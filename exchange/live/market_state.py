"""The bridge's view of one symbol's market, without any I/O: the engine's market-data messages
and event lines in, browser frames out (`docs/protocol.md`, "WebSocket frames").

The book is kept level by level from the engine's `L` lines, seeded from the book key (top 20 a
side). A side whose seed was full may have levels beyond the seed that no event has touched yet;
when the known part of such a side gets thin, the bridge re-seeds from a newer book key and
replays the level events it buffered since that key's sequence number (`reseed`).
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

import flashbook_engine

from exchange.protocol.decimals import ints_str, places, price_str, qty_str

BOOK_DEPTH = 20  # levels a side in book frames (the ladder shows 10, the depth chart 20)
SEED_DEPTH = 20  # levels a side in the engine's book key
RECENT_TRADES = 50  # trades in a snapshot, for the tape
LEVEL_BUFFER = 200_000  # level events kept for re-seeding from a book key that lags behind
STATS_WINDOW_S = 10  # trades and orders per second are averaged over this many seconds


@dataclass(frozen=True, slots=True)
class Scale:
    """Turns an instrument's ticks and lots into the frames' decimal strings: a price to the tick
    ("100.10" when the tick is 0.01), a quantity to the lot ("10000"), as `price_str` and
    `qty_str` write them everywhere else (`exchange.protocol.decimals`). The one definition of
    how the live frames write numbers.

    From integers alone on the feed's hot path: ticks x the tick in units of its last decimal
    (0.05 → 5 hundredths), the point put in by `ints_str` — no decimal arithmetic. Measured
    (bench/bench_decimals.py): 0.32 us a price and 0.12 us a quantity, against 0.57 and 0.55 us
    for the decimal writer that trimmed zeros before."""

    tick_size: Decimal
    lot_size: Decimal
    _price_places: int = field(init=False, repr=False, compare=False)
    _tick_units: int = field(init=False, repr=False, compare=False)
    _qty_places: int = field(init=False, repr=False, compare=False)
    _lot_units: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, step in (("price", self.tick_size), ("qty", self.lot_size)):
            decimals = places(step)
            units = step.scaleb(decimals)  # a whole number: the step in its last decimal
            object.__setattr__(self, f"_{name}_places", decimals)
            object.__setattr__(self, f"_{'tick' if name == 'price' else 'lot'}_units", int(units))

    def price(self, ticks: int) -> str:
        return ints_str(ticks * self._tick_units, self._price_places)

    def qty(self, lots: int) -> str:
        return ints_str(lots * self._lot_units, self._qty_places)

    def price_of(self, price: Decimal) -> str:
        """A price already in decimals (a recorded trade's)."""
        return price_str(price, self.tick_size)

    def qty_of(self, qty: Decimal) -> str:
        """A quantity already in decimals (a recorded trade's, the day's volume)."""
        return qty_str(qty, self.lot_size)


@dataclass(frozen=True, slots=True)
class MdMessage:
    """One market-data message: events `first..last` and those of them it carries (decoded)."""

    first: int
    last: int
    events: list


def parse_md(text: str) -> MdMessage:
    """`M from to`, event lines, `B ...` (`docs/protocol.md`, "Market data"); the event lines are
    decoded by the engine's own decoder, as everywhere."""
    head, _, rest = text.partition("\n")
    parts = head.split()
    if len(parts) != 3 or parts[0] != "M":
        raise ValueError(f"not a market-data message: {text[:80]!r}")
    lines = "".join(
        line + "\n" for line in rest.splitlines() if line.strip() and not line.startswith("B")
    )
    return MdMessage(
        first=int(parts[1]), last=int(parts[2]), events=flashbook_engine.decode_events(lines)
    )


# --- private executions ---------------------------------------------------------------------


def private_events(events: list, scale: Scale, watched: set[int]) -> dict[int, list]:
    """Each watched account's own events among `events` (decoded), as frame dicts. A trade
    concerns two accounts and each gets it from its own side (role, side, remaining); nobody sees
    the other party's account."""
    out: dict[int, list] = {}
    for event in events:
        kind = event.kind
        if kind == "level" or kind == "status":
            continue
        seq = event.seq
        if kind == "trade":
            maker, taker = event.maker_account, event.taker_account
            if maker not in watched and taker not in watched:
                continue
            aggressor = event.aggressor
            passive = "sell" if aggressor == "buy" else "buy"
            base = {"seq": seq, "kind": "trade", "price": scale.price(event.price)}
            base["qty"] = scale.qty(event.qty)
            if maker in watched:
                out.setdefault(maker, []).append(
                    base
                    | {
                        "order_id": event.maker_order_id,
                        "role": "maker",
                        "side": passive,
                        "remaining": scale.qty(event.maker_remaining),
                    }
                )
            if taker in watched:
                out.setdefault(taker, []).append(
                    base
                    | {
                        "order_id": event.taker_order_id,
                        "role": "taker",
                        "side": aggressor,
                        "remaining": scale.qty(event.taker_remaining),
                    }
                )
            continue
        account = event.account
        if account not in watched:
            continue
        if kind == "accepted":
            frame = {
                "kind": "accepted",
                "side": event.side,
                "type": event.order_type,
                "time_in_force": event.tif,
                "price": scale.price(event.price) if event.order_type == "limit" else None,
                "qty": scale.qty(event.qty),
                "post_only": event.post_only,
                "ref": event.client_ref,
            }
        elif kind == "rejected":
            frame = {
                "kind": "rejected",
                "command": event.command,
                "reason": event.reason,
                "ref": event.client_ref,
            }
        elif kind == "cancelled":
            frame = {
                "kind": "cancelled",
                "side": event.side,
                "price": scale.price(event.price),
                "qty": scale.qty(event.qty),
                "reason": event.reason,
            }
        elif kind == "replaced":
            frame = {
                "kind": "replaced",
                "side": event.side,
                "price": scale.price(event.price),
                "qty": scale.qty(event.qty),
                "kept_priority": event.kept_priority,
            }
        else:
            continue
        out.setdefault(account, []).append({"seq": seq, "order_id": event.order_id, **frame})
    return out


def count_accepted(text: str) -> int:
    """Accepted orders among an entry's event lines, without splitting them."""
    return text.count(" A ")


# --- one symbol's public market ---------------------------------------------------------------


@dataclass
class MarketState:
    symbol: str
    scale: Scale
    seq: int = 0  # the last engine event applied to the book
    sent_seq: int = 0  # the `seq` of the last frame sent (the next frame's `prev`)
    halted: bool = False
    paused: bool = False  # by the volatility guard
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    # Beyond these prices the book may hold levels we have not seen (None: the seed was whole).
    bid_floor: int | None = None
    ask_ceiling: int | None = None
    trades: deque = field(default_factory=lambda: deque(maxlen=RECENT_TRADES))
    pending_trades: list = field(default_factory=list)
    book_dirty: bool = False
    last_book_sent: float = 0.0
    last_trades_sent: float = 0.0
    levels: deque = field(default_factory=lambda: deque(maxlen=LEVEL_BUFFER))
    levels_from: int = 1  # every level event with seq >= this is in `levels`
    volume: Decimal = Decimal(0)
    last_price: str | None = None
    per_second: deque = field(default_factory=lambda: deque(maxlen=STATS_WINDOW_S + 1))
    seeded: bool = False

    # -- seeding -------------------------------------------------------------------------------

    def seed(self, book: dict | None) -> None:
        """Takes the engine's book key (or nothing: an empty book at sequence 0) as the truth."""
        book = book or {"seq": 0, "bids": [], "asks": [], "halted": False}
        self.seq = int(book.get("seq", 0))
        self.halted = bool(book.get("halted", False))
        self.paused = book.get("paused_until") is not None
        bids, asks = book.get("bids") or [], book.get("asks") or []
        self.bids = {int(p): int(q) for p, q in bids}
        self.asks = {int(p): int(q) for p, q in asks}
        self.bid_floor = int(bids[-1][0]) if len(bids) >= SEED_DEPTH else None
        self.ask_ceiling = int(asks[-1][0]) if len(asks) >= SEED_DEPTH else None
        self.levels.clear()
        self.levels_from = self.seq + 1
        self.book_dirty = True
        self.seeded = True

    def needs_reseed(self) -> bool:
        """True when a side shows fewer than BOOK_DEPTH levels that are surely complete."""
        if self.bid_floor is not None:
            if sum(1 for p in self.bids if p >= self.bid_floor) < BOOK_DEPTH:
                return True
        if self.ask_ceiling is not None:
            if sum(1 for p in self.asks if p <= self.ask_ceiling) < BOOK_DEPTH:
                return True
        return False

    def reseed(self, book: dict) -> bool:
        """Re-seeds from a book key that may lag behind: the key's levels plus the buffered level
        events after its sequence number. False (nothing changed) when the buffer does not reach
        back that far."""
        key_seq = int(book.get("seq", 0))
        if key_seq < self.seq and key_seq + 1 < self.levels_from:
            return False
        replay = [lv for lv in self.levels if lv[0] > key_seq]
        seq, halted, paused = self.seq, self.halted, self.paused
        self.seed(book)
        for level_seq, side, price, qty in replay:
            self._set_level(side, price, qty)
            self.levels.append((level_seq, side, price, qty))
        if key_seq < seq:
            self.seq, self.halted, self.paused = seq, halted, paused
        return True

    # -- events --------------------------------------------------------------------------------

    def _set_level(self, side: str, price: int, qty: int) -> None:
        levels = self.bids if side == "buy" else self.asks
        if qty:
            levels[price] = qty
        else:
            levels.pop(price, None)

    def apply(self, events: list, now_ms: int, through: int | None = None) -> None:
        """Applies level, trade and status events above the current sequence number; trades wait
        in `pending_trades` for the next trades frame. `through`: the last sequence number the
        events cover (a message's `to`: its last events may be ones market data leaves out)."""
        for event in events:
            seq = event.seq
            if seq <= self.seq:
                continue
            kind = event.kind
            if kind == "level":
                side, price, qty = event.side, event.price, event.qty
                self._set_level(side, price, qty)
                if len(self.levels) == self.levels.maxlen:
                    self.levels_from = self.levels[0][0] + 1
                self.levels.append((seq, side, price, qty))
                self.book_dirty = True
            elif kind == "trade":
                price, qty = self.scale.price(event.price), event.qty
                trade = {
                    "seq": seq,
                    "price": price,
                    "qty": self.scale.qty(qty),
                    "side": event.aggressor,
                    "time": now_ms,
                }
                self.pending_trades.append(trade)
                self.trades.append(trade)
                self.volume += self.scale.lot_size * qty
                self.last_price = price
                self._count(trades=1)
            elif kind == "status":
                status = event.status
                if status == "HALTED" or status == "RESUMED":
                    self.halted = status == "HALTED"
                elif status == "PAUSED" or status == "PAUSE_ENDED":
                    self.paused = status == "PAUSED"
                elif status == "RESET":
                    self.paused = False
                self.book_dirty = True
            self.seq = seq
        if through is not None and through > self.seq:
            self.seq = through

    def count_orders(self, accepted: int) -> None:
        self._count(orders=accepted)

    def _count(self, trades: int = 0, orders: int = 0) -> None:
        second = int(time.time())
        if not self.per_second or self.per_second[-1][0] != second:
            self.per_second.append([second, 0, 0])
        self.per_second[-1][1] += trades
        self.per_second[-1][2] += orders

    # -- frames --------------------------------------------------------------------------------

    def _chain(self, frame_type: str, seq: int | None = None) -> dict:
        seq = self.seq if seq is None else seq
        frame = {"type": frame_type, "symbol": self.symbol, "seq": seq, "prev": self.sent_seq}
        self.sent_seq = seq
        return frame

    def book_levels(self) -> tuple[list, list]:
        price, qty = self.scale.price, self.scale.qty
        # The book may hold thousands of levels: pick the top ones without sorting them all.
        bids = heapq.nlargest(BOOK_DEPTH, self.bids.items())
        asks = heapq.nsmallest(BOOK_DEPTH, self.asks.items())
        return (
            [[price(p), qty(q)] for p, q in bids],
            [[price(p), qty(q)] for p, q in asks],
        )

    def book_frame(self, now: float) -> dict:
        bids, asks = self.book_levels()
        self.book_dirty = False
        self.last_book_sent = now
        return self._chain("book") | {
            "halted": self.halted,
            "paused": self.paused,
            "bids": bids,
            "asks": asks,
        }

    def trades_frame(self, now: float) -> dict:
        trades, self.pending_trades = self.pending_trades, []
        self.last_trades_sent = now
        # The frame covers events up to its last trade; later book changes come in a book frame.
        return self._chain("trades", seq=max(trades[-1]["seq"], self.sent_seq)) | {"trades": trades}

    def stats(self) -> dict:
        now = int(time.time())
        recent = [row for row in self.per_second if now - STATS_WINDOW_S <= row[0] < now]
        return {
            "trades_per_s": round(sum(r[1] for r in recent) / STATS_WINDOW_S, 2),
            "orders_per_s": round(sum(r[2] for r in recent) / STATS_WINDOW_S, 2),
            "volume": self.scale.qty_of(self.volume),
            "last_price": self.last_price,
        }

    def stats_frame(self) -> dict:
        return self._chain("stats", seq=max(self.seq, self.sent_seq)) | self.stats()

    def snapshot(self) -> dict:
        """What a new subscriber starts from: the state as of the last frame sent."""
        bids, asks = self.book_levels()
        return {
            "type": "snapshot",
            "symbol": self.symbol,
            "seq": self.sent_seq,
            "halted": self.halted,
            "paused": self.paused,
            "bids": bids,
            "asks": asks,
            # Trades still waiting for their frame come with that frame, not twice.
            "trades": [t for t in self.trades if t["seq"] <= self.sent_seq],
            "stats": self.stats(),
        }
