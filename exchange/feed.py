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

BOOK_DEPTH = 20  # levels a side in book frames (the ladder shows 10, the depth chart 20)
SEED_DEPTH = 20  # levels a side in the engine's book key
RECENT_TRADES = 50  # trades in a snapshot, for the tape
LEVEL_BUFFER = 200_000  # level events kept for re-seeding from a book key that lags behind
STATS_WINDOW_S = 10  # trades and orders per second are averaged over this many seconds


def decimal_str(value: Decimal) -> str:
    """As the REST API writes decimals: no exponent, no trailing zeros."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class Scale:
    """Turns an instrument's ticks and lots into decimal strings."""

    tick_size: Decimal
    lot_size: Decimal

    def price(self, ticks: int) -> str:
        return decimal_str(self.tick_size * ticks)

    def qty(self, lots: int) -> str:
        return decimal_str(self.lot_size * lots)


@dataclass(frozen=True, slots=True)
class MdMessage:
    """One market-data message: events `first..last`, their lines (split), and the BBO line."""

    first: int
    last: int
    lines: list[list[str]]


def parse_md(text: str) -> MdMessage:
    """`M from to`, event lines, `B ...` (`docs/protocol.md`, "Market data")."""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if not rows or rows[0][0] != "M" or len(rows[0]) != 3:
        raise ValueError(f"not a market-data message: {text[:80]!r}")
    return MdMessage(
        first=int(rows[0][1]),
        last=int(rows[0][2]),
        lines=[row for row in rows[1:] if row[0] != "B"],
    )


def parse_event_lines(text: str) -> list[list[str]]:
    """The event lines of an event-stream entry, split (`seq kind ...`)."""
    return [line.split() for line in text.splitlines() if line.strip()]


# --- private executions ---------------------------------------------------------------------


def private_events(lines: list[list[str]], scale: Scale, watched: set[int]) -> dict[int, list]:
    """Each watched account's own events among `lines`, as frame dicts. A trade concerns two
    accounts and each gets it from its own side (role, side, remaining); nobody sees the other
    party's account."""
    out: dict[int, list] = {}
    for row in lines:
        kind = row[1]
        if kind == "L" or kind == "S":
            continue
        seq = int(row[0])
        if kind == "T":
            maker, taker = int(row[3]), int(row[5])
            if maker not in watched and taker not in watched:
                continue
            aggressor = row[8]
            passive = "sell" if aggressor == "buy" else "buy"
            base = {"seq": seq, "kind": "trade", "price": scale.price(int(row[6]))}
            base["qty"] = scale.qty(int(row[7]))
            if maker in watched:
                out.setdefault(maker, []).append(
                    base
                    | {
                        "order_id": int(row[2]),
                        "role": "maker",
                        "side": passive,
                        "remaining": scale.qty(int(row[9])),
                    }
                )
            if taker in watched:
                out.setdefault(taker, []).append(
                    base
                    | {
                        "order_id": int(row[4]),
                        "role": "taker",
                        "side": aggressor,
                        "remaining": scale.qty(int(row[10])),
                    }
                )
            continue
        account = int(row[3])
        if account not in watched:
            continue
        order_id = int(row[2])
        if kind == "A":
            event = {
                "kind": "accepted",
                "side": row[4],
                "type": row[5],
                "time_in_force": row[6],
                "price": scale.price(int(row[7])) if row[5] == "limit" else None,
                "qty": scale.qty(int(row[8])),
                "post_only": row[9] == "1",
                "ref": int(row[10]),
            }
        elif kind == "J":
            event = {"kind": "rejected", "command": row[4], "reason": row[5], "ref": int(row[6])}
        elif kind == "C":
            event = {
                "kind": "cancelled",
                "side": row[4],
                "price": scale.price(int(row[5])),
                "qty": scale.qty(int(row[6])),
                "reason": row[7],
            }
        elif kind == "R":
            event = {
                "kind": "replaced",
                "side": row[4],
                "price": scale.price(int(row[7])),
                "qty": scale.qty(int(row[8])),
                "kept_priority": row[9] == "1",
            }
        else:
            continue
        out.setdefault(account, []).append({"seq": seq, "order_id": order_id, **event})
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
        seq, halted = self.seq, self.halted
        self.seed(book)
        for level_seq, side, price, qty in replay:
            self._set_level(side, price, qty)
            self.levels.append((level_seq, side, price, qty))
        if key_seq < seq:
            self.seq, self.halted = seq, halted
        return True

    # -- events --------------------------------------------------------------------------------

    def _set_level(self, side: str, price: int, qty: int) -> None:
        levels = self.bids if side == "buy" else self.asks
        if qty:
            levels[price] = qty
        else:
            levels.pop(price, None)

    def apply(self, lines: list[list[str]], now_ms: int, through: int | None = None) -> None:
        """Applies level, trade and status lines above the current sequence number; trades wait
        in `pending_trades` for the next trades frame. `through`: the last sequence number the
        lines cover (a message's `to`: its last events may be ones market data leaves out)."""
        for row in lines:
            seq = int(row[0])
            if seq <= self.seq:
                continue
            kind = row[1]
            if kind == "L":
                side, price, qty = row[2], int(row[3]), int(row[4])
                self._set_level(side, price, qty)
                if len(self.levels) == self.levels.maxlen:
                    self.levels_from = self.levels[0][0] + 1
                self.levels.append((seq, side, price, qty))
                self.book_dirty = True
            elif kind == "T":
                price, qty = self.scale.price(int(row[6])), int(row[7])
                trade = {
                    "seq": seq,
                    "price": price,
                    "qty": self.scale.qty(qty),
                    "side": row[8],
                    "time": now_ms,
                }
                self.pending_trades.append(trade)
                self.trades.append(trade)
                self.volume += self.scale.lot_size * qty
                self.last_price = price
                self._count(trades=1)
            elif kind == "S":
                if row[2] == "HALTED":
                    self.halted = True
                elif row[2] == "RESUMED":
                    self.halted = False
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
        return self._chain("book") | {"halted": self.halted, "bids": bids, "asks": asks}

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
            "volume": decimal_str(self.volume),
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
            "bids": bids,
            "asks": asks,
            # Trades still waiting for their frame come with that frame, not twice.
            "trades": [t for t in self.trades if t["seq"] <= self.sent_seq],
            "stats": self.stats(),
        }
