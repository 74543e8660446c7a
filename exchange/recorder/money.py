"""The recorder's arithmetic, one event at a time: every amount rounded as the database stores it
(8 places), so the database does not depend on how the stream was cut into batches."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from exchange.protocol.decimals import EIGHT_PLACES

ZERO = Decimal(0)


def q8(value: Decimal) -> Decimal:
    """Rounds to the 8 places every money and quantity column stores."""
    return value.quantize(EIGHT_PLACES, rounding=ROUND_HALF_EVEN)


def apply_fill(position, side: str, price: Decimal, qty: Decimal) -> None:
    """Moves a position by one fill. Adding to a position (or opening one) moves the average
    price; reducing it realizes P&L against the average price; going through zero realizes the
    closed part and opens the rest at the fill price. Rounded to 8 places at every step."""
    signed = qty if side == "buy" else -qty
    held = position.quantity
    if held == 0 or (held > 0) == (signed > 0):
        total = held + signed
        position.average_price = q8((abs(held) * position.average_price + qty * price) / abs(total))
        position.quantity = total
        return
    closing = min(qty, abs(held))
    direction = 1 if held > 0 else -1
    position.realized_pnl = q8(
        position.realized_pnl + closing * (price - position.average_price) * direction
    )
    position.quantity = held + signed
    if position.quantity == 0:
        position.average_price = ZERO
    elif (position.quantity > 0) != (held > 0):
        position.average_price = price  # flipped: the rest opened at this price


def next_average_price(average: Decimal | None, filled: Decimal, price: Decimal, qty: Decimal):
    """An order's average fill price after one more fill of `qty` at `price`."""
    return q8(((average or ZERO) * filled + price * qty) / (filled + qty))


def trade_amount(price: Decimal, qty: Decimal) -> Decimal:
    """The cash that changes hands in one trade (the buyer pays it, the seller receives it)."""
    return q8(price * qty)
