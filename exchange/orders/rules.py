"""The rules an order must meet before it may be journaled: pure functions of the request, its
instrument and its account, with no I/O — one place, called once per order by the gateway (the
engine then applies the rules that need the book: position limits, post-only, halts).

Each raises an `InvalidInput` (or `Forbidden`) naming the first bad field; bad input is refused
before anything is written.
"""

import itertools
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import flashbook_engine

from exchange.errors import (
    Conflict,
    ExchangeError,
    Forbidden,
    InsufficientFunds,
    InvalidInput,
    NotFound,
)
from exchange.models import Account, Instrument, OrderType, Side, TimeInForce
from exchange.protocol.decimals import (
    DecimalInputError,
    currency_decimals,
    decimal_str,
    parse_decimal,
    qty_str,
)

STP_MODES = ("none", "cancel_newest", "cancel_oldest", "cancel_both")
CLIENT_ORDER_ID_MAX = 64
# The recorder names the orders it learns of only from the engine `engine-{SYMBOL}-{order_id}`.
RESERVED_CLIENT_ORDER_ID_PREFIX = "engine-"


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str
    quantity: Decimal
    order_type: str = OrderType.LIMIT
    time_in_force: str | None = None  # default: GTC for limit, IOC for market
    price: Decimal | None = None
    post_only: bool = False
    client_order_id: str | None = None
    stp: str = "cancel_newest"


def tradable(symbol: str, instrument: Instrument | None) -> Instrument:
    """The instrument, if it takes orders now."""
    if instrument is None:
        raise NotFound(f"Unknown symbol {symbol!r}.", field="symbol", code="unknown_symbol")
    if not instrument.enabled:
        raise InvalidInput(
            f"{symbol} is not open for trading.", field="symbol", code="instrument_disabled"
        )
    if instrument.halted:
        raise Conflict(f"Trading in {symbol} is halted.", field="symbol", code="instrument_halted")
    return instrument


def decimal_value(value, field: str) -> Decimal:
    try:
        return parse_decimal(value)
    except DecimalInputError as error:
        finite = " finite" if error.reason == "non_finite" else ""
        raise InvalidInput(
            f"{field} must be a{finite} number.", field=field, code="invalid_number"
        ) from None


# The choices' values, once: `Side.values` and its kind build a new list on every access.
_SIDES = frozenset(Side.values)
_ORDER_TYPES = frozenset(OrderType.values)
_TIMES_IN_FORCE = frozenset(TimeInForce.values)


def new_fields(request: OrderRequest, instrument: Instrument, account: Account) -> dict:
    """The journal fields of a valid NEW, or an InvalidInput naming the first bad field."""
    if request.side not in _SIDES:
        raise InvalidInput("side must be 'buy' or 'sell'.", field="side", code="invalid_choice")
    if request.order_type not in _ORDER_TYPES:
        raise InvalidInput("type must be 'limit' or 'market'.", field="type", code="invalid_choice")
    is_limit = request.order_type == OrderType.LIMIT
    tif = request.time_in_force or (TimeInForce.GTC if is_limit else TimeInForce.IOC)
    if tif not in _TIMES_IN_FORCE:
        raise InvalidInput(
            "time_in_force must be 'gtc', 'ioc' or 'fok'.",
            field="time_in_force",
            code="invalid_choice",
        )
    if not is_limit and tif == TimeInForce.GTC:
        raise InvalidInput(
            "A market order must be IOC or FOK.", field="time_in_force", code="invalid_choice"
        )
    if request.post_only and (not is_limit or tif != TimeInForce.GTC):
        raise InvalidInput(
            "post_only is only for GTC limit orders.", field="post_only", code="invalid_post_only"
        )
    if request.stp not in STP_MODES:
        raise InvalidInput(
            f"stp must be one of {', '.join(STP_MODES)}.", field="stp", code="invalid_choice"
        )

    lots = valid_lots(request.quantity, instrument, account)

    fields: dict[str, str | int] = {
        "t": "new",
        "acct": account.pk,
        "side": request.side,
        "type": request.order_type,
        "tif": tif,
        "qty": lots,
        "maxpos": account.default_max_position,
        "stp": request.stp,
    }
    if is_limit:
        if request.price is None:
            raise InvalidInput("A limit order needs a price.", field="price", code="required")
        fields["px"] = valid_ticks(request.price, instrument)
    elif request.price is not None:
        raise InvalidInput("A market order has no price.", field="price", code="invalid_price")
    if request.post_only:
        fields["post"] = 1
    return fields


def valid_lots(value, instrument: Instrument, account: Account) -> int:
    """An order quantity in lots, checked against the instrument, the account and the engine."""
    quantity = decimal_value(value, "quantity")
    if quantity <= 0:
        raise InvalidInput("quantity must be positive.", field="quantity", code="invalid_quantity")
    if not instrument.is_whole_lots(quantity):
        raise InvalidInput(
            f"quantity must be a whole number of lots of {decimal_str(instrument.lot_size)}.",
            field="quantity",
            code="invalid_quantity",
        )
    if quantity < instrument.min_order_qty or quantity > instrument.max_order_qty:
        raise InvalidInput(
            f"quantity must be between {qty_str(instrument.min_order_qty, instrument.lot_size)} "
            f"and {qty_str(instrument.max_order_qty, instrument.lot_size)}.",
            field="quantity",
            code="invalid_quantity",
        )
    lots = instrument.qty_to_lots(quantity)
    if lots > account.max_order_qty:
        raise InvalidInput(
            f"quantity is above the account's order limit of {account.max_order_qty} lots.",
            field="quantity",
            code="order_too_large",
        )
    if lots > flashbook_engine.MAX_QTY:
        raise InvalidInput("quantity is too large.", field="quantity", code="invalid_quantity")
    return lots


def valid_ticks(value, instrument: Instrument) -> int:
    """A limit price in ticks: positive, on the instrument's grid, within the engine's range."""
    price = decimal_value(value, "price")
    if price <= 0:
        raise InvalidInput("price must be positive.", field="price", code="invalid_price")
    if not instrument.is_on_tick(price):
        raise InvalidInput(
            f"price must be a multiple of the tick size {decimal_str(instrument.tick_size)}.",
            field="price",
            code="invalid_price",
        )
    ticks = instrument.price_to_ticks(price)
    if ticks > flashbook_engine.MAX_PRICE:
        raise InvalidInput("price is too large.", field="price", code="invalid_price")
    return ticks


def account_refusal(account: Account, equity: Callable[[], Decimal]) -> ExchangeError | None:
    """Why the account may not place orders now, if it may not."""
    if not account.active:
        return Forbidden("This account is not active.", code="account_inactive")
    if equity() < account.min_bankroll:
        return Forbidden(
            "Equity is below the account's minimum bankroll.", code="insufficient_equity"
        )
    return None


# --- Buying power ------------------------------------------------------------------------------
# Money in the funds state (`exchange.orders.funds`) is an integer of FUNDS_UNIT: the database's
# own precision (8 places), so that the recorder's cash changes carry over exactly. Redis runs its
# scripts in Lua, whose numbers are doubles: every amount stays at or below FUNDS_MAX (2^53 - 1,
# about 90 million in money), where doubles are exact integers. Cash above it is capped (the
# account may use 90 million of it: conservative); a cost above it is refused, as no capped cash
# covers it. A coarser unit raises the cap, at the price of rounding the recorder's changes.
FUNDS_UNIT = Decimal("0.00000001")
FUNDS_MAX = 2**53 - 1
_UNITS_PER_MONEY = Fraction(1) / Fraction(FUNDS_UNIT)


def worst_fee_bps(instrument: Instrument) -> int:
    """The highest fee rate an order of the instrument may pay, in basis points: the larger of the
    taker and maker rates (a negative maker fee is a rebate, never a cost)."""
    return max(0, instrument.taker_fee_bps, instrument.maker_fee_bps)


def _units_per_tick_lot(instrument: Instrument) -> Fraction:
    """What one lot at one tick costs at worst, fee included, in FUNDS_UNIT (exact)."""
    fee = Fraction(10_000 + worst_fee_bps(instrument), 10_000)
    return Fraction(instrument.tick_size) * Fraction(instrument.lot_size) * _UNITS_PER_MONEY * fee


def fee_rounding_units(instrument: Instrument, lots: int) -> int:
    """What fee rounding may add to a buy of `lots`, in FUNDS_UNIT: each fill's fee is rounded to
    the currency's unit half away from zero (`exchange.protocol.fees`), up to half a unit above
    what the rate gives, and an order of `lots` lots has at most `lots` fills."""
    if not worst_fee_bps(instrument):
        return 0
    half_unit = Fraction(1, 2 * 10 ** currency_decimals())
    return math.ceil(lots * half_unit * _UNITS_PER_MONEY)


def order_cost_units(instrument: Instrument, price_ticks: int, lots: int) -> int:
    """The worst-case cost of buying `lots` at `price_ticks` (price times quantity plus the worst
    fee and its rounding), in FUNDS_UNIT, rounded up (a reservation is never smaller than the
    money it stands for) and at most FUNDS_MAX + 1 (above any cash the funds state holds). The
    one place a buy's reservation is computed: the gateway, the recorder's releases and the
    bootstrap all call it."""
    value = price_ticks * lots * _units_per_tick_lot(instrument)
    units = -(-value.numerator // value.denominator) + fee_rounding_units(instrument, lots)
    return min(FUNDS_MAX + 1, units)


def market_buy_units_per_tick(instrument: Instrument, lots: int) -> Fraction:
    """What a market buy of `lots` costs per tick of its valuation price, in FUNDS_UNIT (exact):
    the append script multiplies it by the price band's upper limit, which only the engine's
    latest book key knows, rounds up and adds `fee_rounding_units` — `order_cost_units` at that
    price."""
    return lots * _units_per_tick_lot(instrument)


def cash_units(cash: Decimal) -> int:
    """Cash in FUNDS_UNIT, rounded down and kept within ±FUNDS_MAX (never more than there is)."""
    return max(-FUNDS_MAX, min(FUNDS_MAX, math.floor(Fraction(cash) * _UNITS_PER_MONEY)))


def money_of_units(units: int) -> Decimal:
    return Decimal(units) * FUNDS_UNIT


def replace_cost_units(order, fields: dict, instrument: Instrument) -> int:
    """The worst-case cost of a buy order once replaced (`fields`, a REPLACE's): its new price,
    else its present one, times its new remaining quantity, else its remaining quantity as the
    caller knows it — at or above the engine's (fills only ever lower it)."""
    if hasattr(order, "price_ticks"):  # the journal's record of an order not recorded yet
        ticks, lots = order.price_ticks, order.quantity_lots
    else:
        price = order.price
        ticks = 0 if price is None else instrument.price_to_ticks(price)
        lots = instrument.qty_to_lots(order.quantity - order.filled_quantity)
    return order_cost_units(instrument, fields.get("px", ticks), fields.get("qty", lots))


def insufficient_funds(available_units: int, needed_units: int) -> InsufficientFunds:
    """The refusal of an order whose worst-case cost is above the account's available cash, the
    two amounts written plainly."""
    needed = (
        "more than " + decimal_str(money_of_units(FUNDS_MAX))
        if needed_units > FUNDS_MAX
        else decimal_str(money_of_units(needed_units))
    )
    return InsufficientFunds(
        f"Insufficient funds: the order needs {needed} (its worst-case cost, price times quantity "
        f"plus fees) and the account has {decimal_str(money_of_units(available_units))} "
        "available (cash minus what its open buy orders reserve).",
        field="quantity",
    )


# Generated client order ids: this process's random prefix and a counter — unique without a system
# call per order (uuid4 reads the kernel's random source every time).
_ID_PREFIX = uuid.uuid4().hex[:16]
_id_counter = itertools.count(1)


def _generated_client_order_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def client_order_id(value: str | None) -> tuple[str, bool]:
    """The order's client order id, and whether it was generated here (then no order can have
    it yet)."""
    if value is None or value == "":
        return _generated_client_order_id(), True
    if len(value) > CLIENT_ORDER_ID_MAX or not value.isascii() or not value.isprintable():
        raise InvalidInput(
            f"client_order_id must be at most {CLIENT_ORDER_ID_MAX} printable ASCII characters.",
            field="client_order_id",
            code="invalid_client_order_id",
        )
    if value.startswith(RESERVED_CLIENT_ORDER_ID_PREFIX):
        raise InvalidInput(
            f"client_order_id must not start with {RESERVED_CLIENT_ORDER_ID_PREFIX!r} "
            "(reserved for orders the exchange records on its own).",
            field="client_order_id",
            code="invalid_client_order_id",
        )
    return value, False


def own_open(account: Account, order) -> None:
    """An order the account may cancel or replace: its own, and open (one the recorder has not
    recorded yet is PENDING: open, whatever the engine has made of it — the engine decides)."""
    if order.account_id != account.pk:
        raise NotFound("No such order.", code="unknown_order")
    if not order.is_open or order.order_id is None:
        raise Conflict(f"The order is {order.status.lower()}.", code="order_not_open")


def cancel_fields(account: Account, order) -> dict[str, str | int]:
    own_open(account, order)
    return {"t": "cancel", "id": order.order_id, "acct": account.pk}


def replace_fields(
    account: Account, order, price, quantity, instrument: Instrument
) -> dict[str, str | int]:
    own_open(account, order)
    if price is None and quantity is None:
        raise InvalidInput("Give a new price, a new quantity or both.", code="required")
    fields: dict[str, str | int] = {"t": "replace", "id": order.order_id, "acct": account.pk}
    if price is not None:
        if order.order_type != OrderType.LIMIT:
            raise InvalidInput("Only limit orders have a price.", field="price")
        fields["px"] = valid_ticks(price, instrument)
    if quantity is not None:
        fields["qty"] = valid_lots(quantity, instrument, account)
    return fields


BOOK_COMMANDS = ("halt", "resume", "reset")


def rule_commands(instrument: Instrument) -> list[dict[str, str | int]]:
    """The journal commands of the rules an instrument's engine enforces — its price band
    (BAND), its volatility guard (VOLATILITY) and its fee rates (FEES) — from the database's
    units (percent, seconds, basis points) to the engine's (basis points, ticks, milliseconds)."""
    return [
        {
            "t": "band",
            "bps": int(instrument.price_band_pct * 100),
            "px": instrument.price_to_ticks(instrument.reference_price),
        },
        {
            "t": "volatility",
            "bps": int(instrument.volatility_move_pct * 100),
            "win": instrument.volatility_window_seconds * 1000,
            "pause": instrument.volatility_pause_seconds * 1000,
        },
        {"t": "fees", "maker": instrument.maker_fee_bps, "taker": instrument.taker_fee_bps},
    ]


def rules_are_defaults(instrument: Instrument) -> bool:
    """Whether a fresh book already enforces these rules (no band, no guard, no fees)."""
    return (
        not instrument.price_band_pct
        and not instrument.volatility_move_pct
        and not instrument.maker_fee_bps
        and not instrument.taker_fee_bps
    )


def book_command(command: str) -> dict[str, str | int]:
    if command not in BOOK_COMMANDS:
        raise InvalidInput(f"Unknown book command {command!r}.", field="command")
    return {"t": command}
