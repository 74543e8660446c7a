"""How every decimal is written — in the API, the live feed, the pages, the admin, error messages
and the agents' status — and how one is read from input that is not a DRF serializer's (an
order's price and quantity at the gateway, a shock's percentage, a simulation configuration's
money): `parse_decimal`, the one parser.

Numbers are written to their precision, never with an exponent, never rounded:

* a price with as many decimals as its instrument's tick size (`price_str`: "100.10" when the
  tick is 0.01, "100" when it is 1 or 25),
* a quantity with as many as its lot size (`qty_str`: "10000" when the lot is 1, "1.5" when it is
  0.5),
* money with the currency's decimals (`money_str`, `settings.FLASHBOOK_CURRENCY_DECIMALS`, 2 by
  default: "1250.50", "0.00", never "0E-8").

All three are `fixed_str`: *at least* that many decimals, more only when the value has them (a
mark at the mid of a one-cent spread, "100.105"; an average price, "1.00666667"; money in an
instrument whose tick-lot is finer than a cent, "0.0025"), at most 8. A value is never cut short
of what it is. Other numbers (a tick size, a percentage) are written by `decimal_str`: no trailing
zeros ("0.01", "12.5")."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Literal

EIGHT_PLACES = Decimal("0.00000001")
# Quantizing to 8 places needs more digits than the default context's 28 for large amounts.
_WIDE = Context(prec=60, rounding=ROUND_HALF_EVEN)


def decimal_str(value: Decimal | int | str) -> str:
    """A decimal as a plain string without exponent or trailing zeros, rounded to 8 places."""
    if not isinstance(value, Decimal):
        value = Decimal(value)
    text = format(value.normalize(_WIDE), "f")
    # Rounded only when there are more than 8 places (rare: prices and amounts on the tick have
    # fewer), so the common case costs one normalize: 0.9 us against 1.7 us (the feed's hot path).
    point = text.find(".")
    if point != -1 and len(text) - point > 9:
        text = format(value.quantize(EIGHT_PLACES, context=_WIDE).normalize(_WIDE), "f")
    return "0" if text in ("0", "-0") else text


def places(step: Decimal) -> int:
    """The decimals a grid step has: 2 for a tick of 0.01 or 0.05, 0 for 1 or 25, 1 for 0.5."""
    places = _PLACES.get(step)
    if places is None:
        places = _PLACES[step] = max(0, -step.normalize(_WIDE).as_tuple().exponent)
    return places


_PLACES: dict[Decimal, int] = {}  # a handful of tick and lot sizes, each asked for per value


def fixed_str(value: Decimal | int | str, decimals: int) -> str:
    """A decimal with at least `decimals` places (padded with zeros), more only when it has them
    (at most 8), no exponent: `fixed_str(Decimal("100.1"), 2)` is "100.10"."""
    text = decimal_str(value)
    if decimals <= 0:
        return text
    point = text.find(".")
    if point == -1:
        return text + "." + "0" * decimals
    missing = decimals - (len(text) - point - 1)
    return text + "0" * missing if missing > 0 else text


def price_str(value: Decimal, tick_size: Decimal) -> str:
    """A price, to its instrument's tick."""
    return fixed_str(value, places(tick_size))


def qty_str(value: Decimal, lot_size: Decimal) -> str:
    """A quantity, to its instrument's lot."""
    return fixed_str(value, places(lot_size))


def money_str(value: Decimal | int | str) -> str:
    """An amount of money (cash, equity, P&L, a cost basis), to the currency's decimals."""
    return fixed_str(value, currency_decimals())


def currency_decimals() -> int:
    """`settings.FLASHBOOK_CURRENCY_DECIMALS`: how many decimals money is written with."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return getattr(settings, "FLASHBOOK_CURRENCY_DECIMALS", 2)
    except ImproperlyConfigured:  # a research tool writing money without Django's settings
        return 2


def ints_str(scaled: int, decimals: int) -> str:
    """`scaled / 10**decimals` written with exactly `decimals` places, from integers alone: the
    live feed's prices and quantities (ticks x the tick size in units of its last decimal), at a
    fraction of the cost of decimal arithmetic."""
    if decimals == 0:
        return str(scaled)
    digits = str(-scaled if scaled < 0 else scaled).rjust(decimals + 1, "0")
    sign = "-" if scaled < 0 else ""
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


class DecimalInputError(ValueError):
    """A value that is not a finite decimal number. ``reason`` says why: ``"type"`` (not a
    string or a number: None, a bool, a list...), ``"syntax"`` (a string that is no number) or
    ``"non_finite"`` (NaN or an infinity). Callers word the message for their own audience."""

    def __init__(self, value: object, reason: Literal["type", "syntax", "non_finite"]) -> None:
        super().__init__(f"not a finite decimal number: {value!r}")
        self.value = value
        self.reason = reason


def parse_decimal(value: object) -> Decimal:
    """A finite `Decimal` from a `Decimal`, an int, a float (by its shortest repr, so 0.1 is
    Decimal("0.1")) or a string; raises `DecimalInputError` for anything else. A bool is not a
    number here."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DecimalInputError(value, "type")
    else:
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise DecimalInputError(value, "syntax") from None
    if not number.is_finite():
        raise DecimalInputError(value, "non_finite")
    return number
