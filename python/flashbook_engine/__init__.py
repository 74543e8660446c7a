"""Flashbook's matching engine, from Python.

One :class:`OrderBook` per symbol: price-time priority on integer ticks, trades at the maker's
price, gap-free sequenced :class:`Event` objects. Prices are ``int`` ticks and quantities ``int``
lots; enum values are short strings (``"buy"``, ``"gtc"``, ...; see :mod:`flashbook_engine._types`).

    >>> from flashbook_engine import OrderBook
    >>> book = OrderBook("ACME")
    >>> [e.kind for e in book.new_order(1, 7, "sell", 101, 5)]
    ['accepted', 'level']
    >>> [(e.kind, e.price, e.qty) for e in book.new_order(2, 8, "buy", 105, 2)][1]
    ('trade', 101, 2)

Batches: build :class:`Command` objects (``Command.new(...)``, ``Command.cancel(...)``, ...) and
pass them to :meth:`OrderBook.submit_many`, which converts them all before matching and releases
the GIL for large batches.
"""

from ._engine import (
    MAX_PRICE,
    MAX_QTY,
    Bbo,
    Command,
    Event,
    Exposure,
    OrderBook,
    QueuePosition,
    RestingOrder,
    SnapshotError,
    command_fields,
    decode_events,
    run_worker,
    symbol_shard,
)
from ._engine import __version__ as __version__
from ._types import (
    BookStatus,
    CancelReason,
    CommandKind,
    EventKind,
    OrderType,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)

__all__ = [
    "MAX_PRICE",
    "MAX_QTY",
    "Bbo",
    "BookStatus",
    "CancelReason",
    "Command",
    "CommandKind",
    "Event",
    "EventKind",
    "Exposure",
    "OrderBook",
    "OrderType",
    "QueuePosition",
    "RejectReason",
    "RestingOrder",
    "Side",
    "SnapshotError",
    "StpMode",
    "TimeInForce",
    "__version__",
    "command_fields",
    "decode_events",
    "run_worker",
    "symbol_shard",
]
