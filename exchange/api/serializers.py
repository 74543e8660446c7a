"""Request and response shapes of the API. Decimals are strings everywhere, written to their
precision (`exchange.protocol.decimals`): a price to its instrument's tick ("100.10" when the tick
is 0.01), a quantity to its lot ("10000", "1.5"), money to the currency's decimals ("0.00"), other
numbers without trailing zeros ("0.01"); request bodies refuse fields they do not know."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from functools import cached_property

from django.conf import settings
from django.core.validators import RegexValidator
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError

from exchange.models import Instrument, Order, OrderStatus, OrderType, Side, TimeInForce
from exchange.orders.gateway import OrderOutcome
from exchange.orders.progress import OrderProgress, reason_text
from exchange.orders.rules import CLIENT_ORDER_ID_MAX, STP_MODES, OrderRequest
from exchange.protocol.decimals import EIGHT_PLACES, decimal_str, money_str, price_str, qty_str
from exchange.protocol.symbols import SYMBOL_CHARACTERS, SYMBOL_MAX
from exchange.selectors import CANDLE_INTERVALS


class UtcDateTime(serializers.DateTimeField):
    """A time as the API gives every time: ISO 8601 in UTC, whatever timezone is active. Fixed
    rather than looked up per value (DRF asks for the current timezone, an asgiref Local whose
    every read costs microseconds on the event loop of the order-entry path)."""

    def __init__(self, **kwargs):
        super().__init__(default_timezone=UTC, **kwargs)


# A symbol that could not exist is as unknown as one that does not.
# (Its length is the field's `max_length`, refused as such.)
SYMBOL_FORMAT = RegexValidator(
    rf"^[{SYMBOL_CHARACTERS}]+$", "Unknown symbol.", code="unknown_symbol"
)
CLIENT_ORDER_ID_FORMAT = RegexValidator(
    r"^[ -~]+$",
    f"client_order_id must be at most {CLIENT_ORDER_ID_MAX} printable ASCII characters.",
    code="invalid_client_order_id",
)


DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class DecimalString(serializers.DecimalField):
    """A decimal in and out as a string, as the schema says: in, a string of digits with an
    optional point ("100.10") — not a JSON number (a float by the time most clients send it), an
    exponent ("1e0") or padding (" 485.00 "); at most 24 digits, 8 after the point."""

    default_error_messages = {
        "invalid": 'Write the number as a decimal string, like "100.10".',
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 24)
        kwargs.setdefault("decimal_places", 8)
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not DECIMAL_TEXT.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)

    def to_representation(self, value):
        return decimal_str(value)


class StrictBoolean(serializers.BooleanField):
    """true or false, as JSON has them (not "yes", 1 or "true")."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _instrument(field: serializers.Field, instance) -> Instrument:
    """The instrument whose precision a value is written with: the object's own (an order, a
    fill, a trade, a position), the object itself (an instrument), else the one the view put in
    the context (a book, candles)."""
    if isinstance(instance, Instrument):
        return instance
    instrument = getattr(instance, "instrument", None)
    return instrument if instrument is not None else field.context["instrument"]


class PriceString(DecimalString):
    """A price, written to its instrument's tick: "100.10", never "100.1"."""

    def get_attribute(self, instance):
        value = super().get_attribute(instance)
        return None if value is None else (value, _instrument(self, instance).tick_size)

    def to_representation(self, value):
        return price_str(*value)


class QuantityString(DecimalString):
    """A quantity, written to its instrument's lot: "10000", never "1E+4"."""

    def get_attribute(self, instance):
        value = super().get_attribute(instance)
        return None if value is None else (value, _instrument(self, instance).lot_size)

    def to_representation(self, value):
        return qty_str(*value)


class MoneyString(DecimalString):
    """Money, written to the currency's decimals (more only when it has them): "0.00"."""

    def to_representation(self, value):
        return money_str(value)


class ReasonText(serializers.CharField):
    """The engine's reason in plain words (`exchange.orders.progress.REASON_TEXT`), "" for none."""

    def to_representation(self, value):
        return reason_text(value) if value else ""


class Shape(serializers.Serializer):
    """A serializer whose fields are walked once, not for every value it reads or gives: DRF walks
    `fields` (a mapping whose every step goes through `__getitem__`) for each of them, ~20 % of
    validating an order and of giving one, on the order-entry path's serializers that are built
    once and used for every request. The fields of a serializer are fixed once bound."""

    @cached_property
    def _writable_fields(self) -> tuple[serializers.Field, ...]:
        return tuple(field for field in self.fields.values() if not field.read_only)

    @cached_property
    def _readable_fields(self) -> tuple[serializers.Field, ...]:
        return tuple(field for field in self.fields.values() if not field.write_only)

    @cached_property
    def _has_read_only(self) -> bool:
        return any(field.read_only for field in self.fields.values())

    def _read_only_defaults(self):
        return super()._read_only_defaults() if self._has_read_only else {}


# A request body: a JSON object whose every key is a known field (else 400 unknown_field). The
# schema says `additionalProperties: false` for these (exchange.api.schema).
class StrictSerializer(Shape):
    @cached_property
    def _known(self) -> frozenset[str]:
        return frozenset(name for name, field in self.fields.items() if not field.read_only)

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            known = self._known
            for key in data:
                if key not in known:
                    name = str(key)[:64]
                    raise ValidationError(
                        {name: [ErrorDetail(f"Unknown field {name!r}.", code="unknown_field")]}
                    )
        return super().to_internal_value(data)


# --- Errors (for the schema) --------------------------------------------------------------------


class ErrorBodySerializer(Shape):
    status = serializers.IntegerField()
    code = serializers.CharField(help_text="Stable, machine-readable: invalid_price, not_found…")
    field = serializers.CharField(allow_null=True, help_text="The offending field, if any.")
    message = serializers.CharField()


class ErrorSerializer(Shape):
    error = ErrorBodySerializer()


# --- Meta -------------------------------------------------------------------------------------


class ApiEndpointSerializer(Shape):
    method = serializers.CharField()
    path = serializers.CharField()
    summary = serializers.CharField()


class ApiIndexSerializer(Shape):
    name = serializers.CharField()
    version = serializers.CharField()
    documentation = serializers.CharField(help_text="Interactive documentation (Swagger UI).")
    schema = serializers.CharField(help_text="The OpenAPI schema.")
    authentication = serializers.CharField()
    websocket = serializers.CharField(
        help_text="The WebSocket API's path: requests and subscriptions on one connection."
    )
    endpoints = ApiEndpointSerializer(many=True)


class ServerTimeSerializer(Shape):
    server_time = UtcDateTime()
    epoch_ms = serializers.IntegerField(help_text="Milliseconds since the Unix epoch.")


# --- Instruments and market data --------------------------------------------------------------


class InstrumentSerializer(Shape):
    symbol = serializers.CharField()
    name = serializers.CharField()
    tick_size = DecimalString()
    lot_size = DecimalString()
    min_order_qty = QuantityString()
    max_order_qty = QuantityString()
    reference_price = PriceString()
    price_band_pct = DecimalString(
        help_text="The price band, in percent: a limit price further than this from the last "
        "trade (before any, the reference price) is rejected PRICE_OUT_OF_BAND, and a market "
        "order trades no further (its rest is cancelled PRICE_BAND). 0: none."
    )
    volatility_move_pct = DecimalString(
        help_text="The volatility pause: a trade more than this many percent from any trade of "
        "the last `volatility_window_seconds` pauses the book for `volatility_pause_seconds` "
        "(new orders and replaces are rejected VOLATILITY_PAUSE; cancels work). 0: none."
    )
    volatility_window_seconds = serializers.IntegerField()
    volatility_pause_seconds = serializers.IntegerField()
    maker_fee_bps = serializers.IntegerField(
        help_text="Fee of the resting side of a trade, in basis points of its value "
        "(negative: a rebate)."
    )
    taker_fee_bps = serializers.IntegerField(
        help_text="Fee of the incoming side of a trade, in basis points of its value."
    )
    enabled = serializers.BooleanField()
    halted = serializers.BooleanField()


class BookQuerySerializer(Shape):
    depth = serializers.IntegerField(min_value=1, max_value=20, default=20)


class BookSerializer(Shape):
    symbol = serializers.CharField()
    seq = serializers.IntegerField(help_text="Sequence number of the last event reflected.")
    halted = serializers.BooleanField()
    available = serializers.BooleanField(
        help_text="False when the engine has not published this book (then it is empty, seq 0)."
    )
    updated_at = UtcDateTime(allow_null=True)
    bids = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(), min_length=2, max_length=2),
        help_text="[price, quantity] pairs, best first.",
    )
    asks = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(), min_length=2, max_length=2),
        help_text="[price, quantity] pairs, best first.",
    )
    band = serializers.ListField(
        child=serializers.CharField(),
        min_length=2,
        max_length=2,
        allow_null=True,
        help_text="[lowest, highest] limit price the price band allows now; null: no band.",
    )
    paused_until = UtcDateTime(
        allow_null=True,
        help_text="Until when the volatility guard pauses the book (new orders and replaces "
        "are refused); null: not paused.",
    )

    def to_representation(self, instance):
        data = super().to_representation(instance)
        instrument = self.context["instrument"]  # the view's: its tick and lot
        tick, lot = instrument.tick_size, instrument.lot_size
        data["bids"] = [[price_str(p, tick), qty_str(q, lot)] for p, q in instance.bids]
        data["asks"] = [[price_str(p, tick), qty_str(q, lot)] for p, q in instance.asks]
        band = instance.band
        data["band"] = None if band is None else [price_str(p, tick) for p in band]
        return data


class TradeSerializer(Shape):
    seq = serializers.IntegerField()
    price = PriceString()
    quantity = QuantityString()
    aggressor_side = serializers.ChoiceField(choices=Side.choices)
    executed_at = UtcDateTime()


class CandleQuerySerializer(Shape):
    interval = serializers.ChoiceField(choices=list(CANDLE_INTERVALS), default="1m")
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class CandleSerializer(Shape):
    start = UtcDateTime()
    open = PriceString()
    high = PriceString()
    low = PriceString()
    close = PriceString()
    volume = QuantityString()
    trades = serializers.IntegerField()


class CandlesSerializer(Shape):
    symbol = serializers.CharField()
    interval = serializers.CharField()
    candles = CandleSerializer(many=True)


# --- Orders -----------------------------------------------------------------------------------


class OrderCreateSerializer(StrictSerializer):
    symbol = serializers.CharField(max_length=SYMBOL_MAX, validators=[SYMBOL_FORMAT])
    side = serializers.ChoiceField(choices=Side.choices)
    type = serializers.ChoiceField(choices=OrderType.choices, default=OrderType.LIMIT)
    time_in_force = serializers.ChoiceField(
        choices=TimeInForce.choices,
        required=False,
        allow_null=True,
        help_text="Default: gtc for limit orders, ioc for market orders.",
    )
    price = DecimalString(required=False, allow_null=True, help_text="Limit orders only.")
    quantity = DecimalString()
    post_only = StrictBoolean(default=False)
    client_order_id = serializers.CharField(
        max_length=CLIENT_ORDER_ID_MAX,
        required=False,
        trim_whitespace=False,
        validators=[CLIENT_ORDER_ID_FORMAT],
        help_text="Your id for the order (printable ASCII). A retry with the same id returns "
        "the existing order (200) and places nothing.",
    )
    stp = serializers.ChoiceField(
        choices=STP_MODES, default="cancel_newest", help_text="Self-trade prevention."
    )
    wait = StrictBoolean(
        default=True,
        help_text="Wait (briefly) for the engine's immediate outcome. false: answer 202 at once.",
    )


def order_request(data: dict) -> tuple[OrderRequest, float]:
    """The gateway's request from `OrderCreateSerializer`'s validated data, and how long to wait
    for the engine's outcome (shared by both entry points of `order_entry.place`)."""
    request = OrderRequest(
        symbol=data["symbol"],
        side=data["side"],
        quantity=data["quantity"],
        order_type=data["type"],
        time_in_force=data.get("time_in_force"),
        price=data.get("price"),
        post_only=data["post_only"],
        client_order_id=data.get("client_order_id"),
        stp=data["stp"],
    )
    return request, wait_seconds(data)


WAIT_FOR_ANSWER = (
    "Wait (briefly) for the engine's answer: 200 with the order after it, or 409 with the "
    "engine's reason when it refused. false: answer 202 at once."
)


def wait_seconds(data: dict) -> float:
    """How long an order command waits for the engine's answer (its `wait` field)."""
    return settings.FLASHBOOK_ORDER_WAIT if data["wait"] else 0.0


class OrderCancelSerializer(StrictSerializer):
    wait = StrictBoolean(default=True, help_text=WAIT_FOR_ANSWER)


class OrderReplaceSerializer(StrictSerializer):
    price = DecimalString(required=False, allow_null=True)
    quantity = DecimalString(
        required=False, allow_null=True, help_text="The new remaining quantity."
    )
    wait = StrictBoolean(default=True, help_text=WAIT_FOR_ANSWER)


class OrderCancelAllSerializer(StrictSerializer):
    symbol = serializers.CharField(
        max_length=SYMBOL_MAX, required=False, validators=[SYMBOL_FORMAT]
    )


class OrderCancelAllResultSerializer(Shape):
    requested = serializers.IntegerField(help_text="Cancels sent to the engine.")


class OrderListQuerySerializer(Shape):
    symbol = serializers.CharField(max_length=SYMBOL_MAX, required=False)
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    open = serializers.BooleanField(
        required=False, default=False, help_text="Only open orders (pending, new, partial)."
    )


class OrderFillSerializer(Shape):
    price = PriceString()
    quantity = QuantityString()
    role = serializers.ChoiceField(choices=[("maker", "Maker"), ("taker", "Taker")])


class OrderSerializer(Shape):
    id = serializers.IntegerField(
        help_text="The order's id, given when it is placed: unique across symbols, increasing."
    )
    exchange_order_id = serializers.IntegerField(
        source="order_id",
        allow_null=True,
        help_text="The engine's id of the order: the same as `id` for orders placed here.",
    )
    client_order_id = serializers.CharField()
    symbol = serializers.CharField(source="instrument.symbol")
    side = serializers.ChoiceField(choices=Side.choices)
    type = serializers.ChoiceField(source="order_type", choices=OrderType.choices)
    time_in_force = serializers.ChoiceField(choices=TimeInForce.choices)
    post_only = serializers.BooleanField()
    price = PriceString(allow_null=True)
    quantity = QuantityString()
    filled_quantity = QuantityString()
    remaining_quantity = QuantityString()
    average_fill_price = PriceString(
        allow_null=True, help_text="To the tick, with more decimals when the average has them."
    )
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    reject_reason = serializers.CharField(allow_blank=True)
    reject_reason_text = ReasonText(
        source="reject_reason",
        allow_blank=True,
        help_text='reject_reason in plain words, for people ("" when there is none).',
    )
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class OrderDetailSerializer(OrderSerializer):
    fills = OrderFillSerializer(many=True, source="fill_views")


class QueuePositionSerializer(Shape):
    quantity_ahead = QuantityString(
        source="qty_ahead",
        help_text="Open quantity of the orders ahead of this one at its price (they fill first).",
    )
    orders_ahead = serializers.IntegerField(help_text="How many orders are ahead of this one.")
    level_quantity = QuantityString(
        source="level_qty",
        help_text="The price level's whole open quantity, this order's included.",
    )
    level_orders = serializers.IntegerField(help_text="The price level's order count.")
    seq = serializers.IntegerField(help_text="The engine's event sequence number it reflects.")


class OrderRowSerializer(OrderSerializer):
    """An order in a list: `GET /orders/` and the WebSocket API's `orders.open`."""

    queue_position = QueuePositionSerializer(
        allow_null=True,
        help_text="Where a resting order stands in its queue (see the order's detail); else null.",
    )


class OrderStatusSerializer(OrderDetailSerializer):
    queue_position = QueuePositionSerializer(
        allow_null=True,
        help_text=(
            "Where the order stands in its price level's queue, as the engine last published it "
            "(about every 50 ms while busy): null unless it rests among the 20 best levels of its "
            "side and within the first 100 orders of its level."
        ),
    )


@dataclass(frozen=True)
class FillView:
    price: Decimal
    quantity: Decimal
    role: str
    instrument: Instrument  # its tick and lot say how the numbers are written


def order_with_fills(order: Order) -> Order:
    """An order with its recorded fills, for `OrderDetailSerializer` (one the recorder has not
    recorded yet has none recorded)."""
    if isinstance(order, Order):  # else a `PendingOrder`: nothing recorded, no fills
        instrument = order.instrument
        order.fill_views = [
            FillView(f.price, f.quantity, f.role, instrument) for f in order.fills.all()
        ]
    return order


def order_after_command(order: Order, progress: OrderProgress) -> Order:
    """An order as the engine's answer to a cancel or replace left it (`progress`, from the
    order's known state): status, price, quantities, the fills the replace made. Presentation
    only, as `order_from_outcome`."""
    instrument = order.instrument
    order.status = progress.status
    order.reject_reason = progress.reject_reason
    if progress.price_ticks is not None and order.price is not None:
        order.price = instrument.ticks_to_price(progress.price_ticks)
    order = order_with_fills(order)
    if progress.fills:  # a replace that traded: its fills after the recorded ones
        notional = (order.average_fill_price or 0) * order.filled_quantity
        for price, lots, role in progress.fills:
            fill_price, quantity = instrument.ticks_to_price(price), instrument.lots_to_qty(lots)
            order.fill_views.append(FillView(fill_price, quantity, role, instrument))
            notional += fill_price * quantity
        filled = instrument.lots_to_qty(progress.filled_lots)
        order.average_fill_price = (notional / filled).quantize(EIGHT_PLACES)
    order.quantity = instrument.lots_to_qty(progress.quantity_lots)
    order.filled_quantity = instrument.lots_to_qty(progress.filled_lots)
    return order


def order_from_outcome(outcome: OrderOutcome) -> Order:
    """The order as the engine's immediate reply describes it, when there was one: status, fills
    so far, reason. Presentation only: the stored row is the recorder's to update."""
    order = outcome.order
    progress = outcome.progress
    if not outcome.created:  # an idempotent retry: the order as recorded
        return order_with_fills(order)
    order.fill_views = []
    if progress is None:  # no answer yet: PENDING
        return order
    instrument = order.instrument
    order.status = progress.status
    order.quantity = instrument.lots_to_qty(progress.quantity_lots)
    order.filled_quantity = instrument.lots_to_qty(progress.filled_lots)
    if progress.filled_lots:
        average = instrument.tick_size * progress.notional_ticks / progress.filled_lots
        order.average_fill_price = average.quantize(EIGHT_PLACES)
    order.reject_reason = progress.reject_reason
    order.fill_views = [
        FillView(instrument.ticks_to_price(price), instrument.lots_to_qty(lots), role, instrument)
        for price, lots, role in progress.fills
    ]
    return order


class FillSerializer(Shape):
    id = serializers.IntegerField()
    order_id = serializers.IntegerField(help_text="The order's id in this API.")
    symbol = serializers.CharField(source="instrument.symbol")
    side = serializers.ChoiceField(choices=Side.choices)
    role = serializers.ChoiceField(choices=[("maker", "Maker"), ("taker", "Taker")])
    price = PriceString()
    quantity = QuantityString()
    fee = MoneyString(
        help_text="What this fill cost in fees (negative: a rebate), at the instrument's maker or "
        "taker rate when it traded; already out of cash and realized P&L."
    )
    trade_seq = serializers.IntegerField(source="trade.seq")
    executed_at = UtcDateTime()


# --- Account ----------------------------------------------------------------------------------


class PositionSerializer(Shape):
    symbol = serializers.CharField()
    quantity = QuantityString(help_text="Net: positive long, negative short.")
    cost_basis = MoneyString(
        help_text="What the open quantity cost, signed like it (negative for a short): exact. "
        "unrealized_pnl = mark_price x quantity - cost_basis."
    )
    average_price = PriceString(
        help_text="cost_basis / |quantity| (0 when flat): to the tick, with more decimals when "
        "the average has them (at most 8)."
    )
    realized_pnl = MoneyString(help_text="Net of fees.")
    fees_paid = MoneyString(help_text="Every fee paid on the instrument (rebates negative).")
    mark_price = PriceString(
        help_text="Mid of the book (half a tick when the spread is odd), else the last trade."
    )
    market_value = MoneyString()
    unrealized_pnl = MoneyString()


class AccountSerializer(Shape):
    id = serializers.IntegerField(source="account.id")
    name = serializers.CharField(source="account.name")
    active = serializers.BooleanField(source="account.active")
    initial_cash = MoneyString(source="account.initial_cash")
    cash = MoneyString()
    equity = MoneyString(help_text="Cash plus positions at their mark prices.")
    realized_pnl = MoneyString(help_text="Net of fees.")
    unrealized_pnl = MoneyString()
    fees_paid = MoneyString(help_text="Every fee paid, all instruments (rebates negative).")
    min_bankroll = MoneyString(source="account.min_bankroll")
    max_order_qty = serializers.IntegerField(source="account.max_order_qty", help_text="Lots.")
    max_position = serializers.IntegerField(
        source="account.default_max_position", help_text="Lots, per instrument."
    )
    positions = PositionSerializer(many=True)


# --- Tokens -----------------------------------------------------------------------------------


class TokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=64)


class TokenSerializer(Shape):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The first characters of the secret.")
    created_at = UtcDateTime()
    last_used_at = UtcDateTime(allow_null=True)


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(
        help_text="The secret: shown this once. Send it as 'Authorization: Bearer <token>'."
    )
