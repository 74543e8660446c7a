"""String literal types of the engine's enums, for annotations.

Import them from the package: ``from flashbook_engine import Side``.

The bindings take and return these exact strings; anything else raises ``ValueError``.
"""

from typing import Literal, TypeAlias

Side: TypeAlias = Literal["buy", "sell"]
OrderType: TypeAlias = Literal["limit", "market"]
TimeInForce: TypeAlias = Literal["gtc", "ioc", "fok"]
StpMode: TypeAlias = Literal["none", "cancel_newest", "cancel_oldest", "cancel_both"]
CommandKind: TypeAlias = Literal[
    "new", "cancel", "replace", "halt", "resume", "reset", "band", "volatility", "fees", "clock"
]
EventKind: TypeAlias = Literal[
    "accepted", "rejected", "trade", "cancelled", "replaced", "level", "status"
]
RejectReason: TypeAlias = Literal[
    "INVALID_QUANTITY",
    "INVALID_PRICE",
    "DUPLICATE_ORDER_ID",
    "UNKNOWN_ORDER",
    "BOOK_HALTED",
    "POST_ONLY_WOULD_CROSS",
    "POSITION_LIMIT",
    "INVALID_TIME_IN_FORCE",
    "INVALID_POST_ONLY",
    "MALFORMED",
    "PRICE_OUT_OF_BAND",
    "INVALID_BAND",
    "VOLATILITY_PAUSE",
    "INVALID_VOLATILITY",
    "INVALID_FEES",
]
CancelReason: TypeAlias = Literal[
    "USER", "REMAINDER", "FOK_UNFILLABLE", "SELF_TRADE", "RESET", "PRICE_BAND"
]
BookStatus: TypeAlias = Literal[
    "HALTED", "RESUMED", "RESET", "BAND", "PAUSED", "PAUSE_ENDED", "VOLATILITY", "FEES"
]

__all__ = [
    "BookStatus",
    "CancelReason",
    "CommandKind",
    "EventKind",
    "OrderType",
    "RejectReason",
    "Side",
    "StpMode",
    "TimeInForce",
]
