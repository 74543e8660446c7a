"""Numbers in the server-rendered pages, written as the API and the pages' scripts write them
(`exchange.protocol.decimals`, `static/js/dom.js`): a price to its instrument's tick, a quantity
to its lot, money to the cent — with thousands grouped, never an exponent."""

from decimal import ROUND_HALF_UP, Decimal

from django import template

from exchange.orders.progress import reason_text
from exchange.protocol.decimals import currency_decimals, price_str, qty_str

register = template.Library()


def _grouped(text: str) -> str:
    sign, text = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, point, fraction = text.partition(".")
    return f"{sign}{int(whole):,}{point}{fraction}"


@register.filter
def tick_price(value, instrument) -> str:
    """A price to the instrument's tick: `{{ fill.price|tick_price:fill.instrument }}`."""
    if value is None:
        return "—"
    return _grouped(price_str(value, instrument.tick_size))


@register.filter
def lot_qty(value, instrument) -> str:
    """A quantity to the instrument's lot."""
    if value is None:
        return "—"
    return _grouped(qty_str(value, instrument.lot_size))


@register.filter
def cents(value) -> str:
    """Money to the cent (the currency's decimals), rounded half away from zero as dom.js's
    money() does; "0.00", never "-0.00"."""
    if value is None:
        return "—"
    decimals = currency_decimals()
    rounded = Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    if not rounded:
        rounded = abs(rounded)
    return _grouped(f"{rounded:.{decimals}f}")


@register.filter
def notional(fill) -> Decimal:
    """What a fill (or any object with a price and a quantity) is worth: price x quantity."""
    return fill.price * fill.quantity


@register.filter
def reason_words(code: str) -> str:
    """The engine's reason code in plain words (`exchange.orders.progress.REASON_TEXT`)."""
    return reason_text(code) if code else ""
