"""Queue positions from the engine's queue key (`{prefix}:queue:{SYM}`, `docs/protocol.md`).

The engine worker writes, beside the L2 book key and as often, the queues of the best levels of
each side: a first line with the sequence number of the last event reflected, then one line per
level, `b|a price orders total id:qty id:qty ...` — the level's order count and open quantity,
then its first orders (at most 100), oldest first. An order's place in its queue is the sum of
what is listed before it. No I/O here: the selectors read the key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueueSpot:
    """Where a resting order stands in its price level's queue (lots)."""

    qty_ahead: int
    orders_ahead: int
    level_qty: int
    level_orders: int
    seq: int


def queue_spot(text: str, side: str, price_ticks: int, order_id: int) -> QueueSpot | None:
    """The place of order `order_id` (resting on `side` at `price_ticks`) in the queue text, or
    None when the text does not list it: its level is not among the best published, it is further
    back than the listed orders, or it is no longer resting."""
    head, _, rest = text.partition("\n")
    if not head.isdigit():
        return None
    tag = f"\n{'b' if side == 'buy' else 'a'} {price_ticks} "
    lines = "\n" + rest
    start = lines.find(tag)
    if start < 0:
        return None
    end = lines.find("\n", start + 1)
    fields = lines[start + 1 : end if end >= 0 else None].split(" ")
    level_orders, level_qty = int(fields[2]), int(fields[3])
    wanted = str(order_id)
    qty_ahead = 0
    for ahead, entry in enumerate(fields[4:]):
        listed_id, _, qty = entry.partition(":")
        if listed_id == wanted:
            return QueueSpot(qty_ahead, ahead, level_qty, level_orders, int(head))
        qty_ahead += int(qty)
    return None
