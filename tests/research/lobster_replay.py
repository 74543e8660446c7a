"""An independent reading of LOBSTER files for the tests: parse both files and replay the message
file order by order, checking every row against the format's rules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EMPTY_ASK, EMPTY_BID = 9999999999, -9999999999


@dataclass
class Message:
    time: str
    kind: int
    order_id: int
    size: int
    price: int
    direction: int


def read_messages(path: Path) -> list[Message]:
    rows = []
    for line in path.read_text().splitlines():
        cols = line.split(",")
        assert len(cols) == 6, line
        rows.append(Message(cols[0], *(int(c) for c in cols[1:])))
    return rows


def read_book(path: Path, levels: int) -> list[list[int]]:
    rows = []
    for line in path.read_text().splitlines():
        cols = [int(c) for c in line.split(",")]
        assert len(cols) == 4 * levels, line
        rows.append(cols)
    return rows


def book_row(orders: dict[int, list[int]], levels: int) -> list[int]:
    """The LOBSTER row of a book given as ``order id -> [direction, price, size]``."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for direction, price, size in orders.values():
        side = bids if direction == 1 else asks
        side[price] = side.get(price, 0) + size
    bid_levels = sorted(bids.items(), reverse=True)[:levels]
    ask_levels = sorted(asks.items())[:levels]
    row = []
    for i in range(levels):
        row += list(ask_levels[i]) if i < len(ask_levels) else [EMPTY_ASK, 0]
        row += list(bid_levels[i]) if i < len(bid_levels) else [EMPTY_BID, 0]
    return row


def replay(
    messages: list[Message],
    book: list[list[int]],
    levels: int,
    initial: dict[int, list[int]] | None = None,
) -> dict[int, list[int]]:
    """Applies every message to a book of orders (``initial``: the orders resting before the
    first message, ``{id: [direction, price, size]}``; none by default) and asserts that the
    order book file's row k is exactly that book after message k. Returns the resting orders
    at the end."""
    assert len(messages) == len(book), "the two files must have the same number of rows"
    orders: dict[int, list[int]] = {k: list(v) for k, v in (initial or {}).items()}
    previous_time = None
    for k, (m, row) in enumerate(zip(messages, book, strict=True)):
        seconds = float(m.time)
        assert previous_time is None or seconds >= previous_time, f"row {k}: time went back"
        previous_time = seconds
        assert len(m.time.split(".")[1]) == 9, f"row {k}: nanosecond precision expected"
        if m.kind == 7:
            assert m.price in (-1, 0, 1) and m.order_id == 0 and m.size == 0, m
        else:
            assert m.direction in (1, -1) and m.size > 0 and m.price > 0, m
        if m.kind == 1:
            assert m.order_id not in orders, f"row {k}: order {m.order_id} already rests"
            orders[m.order_id] = [m.direction, m.price, m.size]
        elif m.kind in (2, 3, 4):
            order = orders.get(m.order_id)
            assert order is not None, f"row {k}: order {m.order_id} is not resting ({m})"
            assert order[0] == m.direction, f"row {k}: direction differs from the order's"
            assert order[1] == m.price, f"row {k}: price differs from the order's"
            if m.kind == 3:
                assert m.size == order[2], f"row {k}: a deletion removes the whole remainder"
                del orders[m.order_id]
            elif m.kind == 2:
                assert m.size < order[2], f"row {k}: a partial cancellation leaves a remainder"
                order[2] -= m.size
            else:
                assert m.size <= order[2], f"row {k}: executed more than rests"
                order[2] -= m.size
                if order[2] == 0:
                    del orders[m.order_id]
        else:
            assert m.kind == 7, f"row {k}: unexpected event type {m.kind}"
        assert row == book_row(orders, levels), f"row {k} does not match the replayed book"
        if row[0] != EMPTY_ASK and row[2] != EMPTY_BID:
            assert row[2] < row[0], f"row {k}: the book is crossed"
    return orders
