"""How engine events move an order through its statuses. Pure functions, shared by the gateway
(interpreting the engine's immediate reply) and the recorder (the persisted projection), so the two
can never disagree about what an event means."""

from dataclasses import dataclass, field

from exchange.errors import Conflict
from exchange.models import OrderStatus

# Cancel reasons that mean "the order's time in force ran out" rather than "someone cancelled it":
# the rest of an IOC or market order, an unfillable FOK, a market order stopped at the band's edge.
_EXPIRY_REASONS = frozenset({"REMAINDER", "FOK_UNFILLABLE", "PRICE_BAND"})

# The engine's reasons in plain words, for every entry point that tells a person or a program why
# (the REST API's error messages, the WebSocket API, FIX's Text).
REASON_TEXT = {
    "INVALID_QUANTITY": "The quantity is not valid.",
    "INVALID_PRICE": "The price is not valid.",
    "DUPLICATE_ORDER_ID": "The exchange has an order with this id already.",
    "UNKNOWN_ORDER": "The order is not open (filled, cancelled or expired already).",
    "BOOK_HALTED": "Trading in this instrument is halted.",
    "POST_ONLY_WOULD_CROSS": "A post-only order would have traded on arrival.",
    "POSITION_LIMIT": "The order would take the position beyond its limit.",
    "INVALID_TIME_IN_FORCE": "The time in force does not apply to this order.",
    "INVALID_POST_ONLY": "Post-only applies only to resting limit orders.",
    "MALFORMED": "The command was malformed.",
    "PRICE_OUT_OF_BAND": "The price is outside the instrument's price band.",
    "VOLATILITY_PAUSE": "Trading is paused after a large price move.",
    "USER": "Cancelled as asked.",
    "REMAINDER": "The unfilled rest expired (immediate or cancel).",
    "FOK_UNFILLABLE": "The order could not fill whole at once (fill or kill).",
    "SELF_TRADE": "Cancelled to prevent a trade with your own order.",
    "RESET": "The book was reset by the exchange.",
    "PRICE_BAND": "The market order stopped at the edge of the price band.",
}


def reason_text(reason: str) -> str:
    return REASON_TEXT.get(reason, reason)


def refusal(reason: str) -> Conflict:
    """The error for a cancel or replace the engine refused: 409, the reason as its code (an
    order that is no longer open: `order_not_open`, as the gateway says when it knows already)."""
    code = "order_not_open" if reason == "UNKNOWN_ORDER" else reason.lower()
    return Conflict(reason_text(reason), code=code)


def ends_by_expiry(reason: str) -> bool:
    """Whether a cancel reason means the order expired (EXPIRED) rather than was cancelled."""
    return reason in _EXPIRY_REASONS


@dataclass
class OrderProgress:
    """An order's state in lots and ticks, as far as the events seen so far tell."""

    order_id: int
    quantity_lots: int
    status: str = OrderStatus.PENDING
    filled_lots: int = 0
    notional_ticks: int = 0  # sum of price_ticks * lots over fills, for the average price
    reject_reason: str = ""
    refused: str = ""  # the engine's reason when it refused a cancel or a replace of the order
    price_ticks: int | None = None
    fills: list[tuple[int, int, str]] = field(default_factory=list)  # (price, lots, role)

    @property
    def remaining_lots(self) -> int:
        return self.quantity_lots - self.filled_lots

    def apply(self, event) -> None:
        """Advances the state by one `flashbook_engine.Event` that concerns this order."""
        kind = event.kind
        if kind == "accepted":
            if self.status == OrderStatus.PENDING:
                self.status = OrderStatus.NEW
        elif kind == "rejected":
            # A refused cancel or replace leaves the order as it was (the order may even belong
            # to someone else: the engine answers UNKNOWN_ORDER for another account's order).
            if event.command == "new":
                self.status = OrderStatus.REJECTED
                self.reject_reason = event.reason
            else:
                self.refused = event.reason
        elif kind == "trade":
            role = "maker" if event.maker_order_id == self.order_id else "taker"
            self.filled_lots += event.qty
            self.notional_ticks += event.price * event.qty
            self.fills.append((event.price, event.qty, role))
            self.status = (
                OrderStatus.FILLED if self.remaining_lots <= 0 else OrderStatus.PARTIALLY_FILLED
            )
        elif kind == "cancelled":
            self.status = (
                OrderStatus.EXPIRED if event.reason in _EXPIRY_REASONS else OrderStatus.CANCELED
            )
            if event.reason not in ("USER",):
                self.reject_reason = event.reason
        elif kind == "replaced":
            # `qty` is the new remaining quantity; the order's total is filled + remaining.
            self.quantity_lots = self.filled_lots + event.qty
            self.price_ticks = event.price
            if self.status == OrderStatus.PENDING:  # resting, so the engine had accepted it
                self.status = OrderStatus.NEW

    @property
    def average_fill_ticks(self) -> float | None:
        return self.notional_ticks / self.filled_lots if self.filled_lots else None


def concerns(event, order_id: int) -> bool:
    """Whether an event is about the order (as the order itself or as a trade's maker/taker)."""
    if event.kind == "trade":
        return order_id in (event.maker_order_id, event.taker_order_id)
    return event.order_id == order_id
