"""Exchange models: the database is a projection of the engine's event streams (written by the
recorder), plus what only the web side knows (accounts, tokens, client order ids).

Prices and quantities are decimals here, at the edge; the engine sees integer ticks and lots
(`Instrument.price_to_ticks`, `Instrument.qty_to_lots` and back).
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from exchange.protocol.decimals import price_str, qty_str
from exchange.protocol.symbols import SYMBOL_MAX, SYMBOL_PATTERN, SYMBOL_RULE

SYMBOL_VALIDATOR = RegexValidator(SYMBOL_PATTERN, SYMBOL_RULE)
POSITIVE = MinValueValidator(Decimal("0.00000001"))
NON_NEGATIVE = MinValueValidator(Decimal("0"))
MONEY_PLACES = Decimal("0.00000001")  # what every money column holds


def _money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=24, decimal_places=8, **kwargs)


class Instrument(models.Model):
    symbol = models.CharField(max_length=SYMBOL_MAX, unique=True, validators=[SYMBOL_VALIDATOR])
    name = models.CharField(max_length=120)
    tick_size = models.DecimalField(max_digits=20, decimal_places=8, validators=[POSITIVE])
    lot_size = models.DecimalField(max_digits=20, decimal_places=8, validators=[POSITIVE])
    min_order_qty = _money(validators=[POSITIVE])
    max_order_qty = _money(validators=[POSITIVE])
    reference_price = _money(validators=[POSITIVE])
    enabled = models.BooleanField(
        default=True,
        help_text="Listed: served by an engine within a second and open for orders. Unticking "
        "it delists the instrument: orders are refused and every resting order is cancelled.",
    )
    halted = models.BooleanField(default=False, help_text="Trading halted: new orders refused.")
    price_band_pct = models.DecimalField(
        "price band (%)",
        max_digits=7,
        decimal_places=2,
        default=Decimal("10"),
        # In the database too: rows written without this field (older code, raw SQL) get it.
        db_default=Decimal("10"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1000"))],
        help_text="Fat-finger protection, enforced by the engine: a limit price more than this "
        "far from the last trade (before any, the reference price) is rejected, and a market "
        "order trades no further (its rest is cancelled). 0 turns it off.",
    )
    # The volatility guard (limit-up/limit-down), enforced by the engine. Defaults that let the
    # demo's ordinary moves through and pause it after a shock.
    volatility_move_pct = models.DecimalField(
        "volatility pause: move (%)",
        max_digits=5,
        decimal_places=2,
        default=Decimal("5"),
        db_default=Decimal("5"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="A trade more than this far from any trade of the window pauses the book: new "
        "orders and replaces are refused, cancels work. 0 turns it off.",
    )
    volatility_window_seconds = models.PositiveIntegerField(
        "volatility pause: window (s)",
        default=300,
        db_default=300,
        validators=[MinValueValidator(1), MaxValueValidator(86_400)],
        help_text="How far back the move is measured.",
    )
    volatility_pause_seconds = models.PositiveIntegerField(
        "volatility pause: length (s)",
        default=30,
        db_default=30,
        validators=[MinValueValidator(1), MaxValueValidator(86_400)],
        help_text="How long the book stays paused.",
    )
    # Integers: the engine stamps them on every trade as whole basis points.
    maker_fee_bps = models.IntegerField(
        "maker fee (bps)",
        default=0,
        db_default=0,
        validators=[MinValueValidator(-1000), MaxValueValidator(1000)],
        help_text="Charged on the resting side of each trade, in basis points of its value "
        "(1 bp = 0.01 %). Negative: a rebate, never larger than the taker fee.",
    )
    taker_fee_bps = models.IntegerField(
        "taker fee (bps)",
        default=0,
        db_default=0,
        validators=[MinValueValidator(0), MaxValueValidator(1000)],
        help_text="Charged on the incoming side of each trade, in basis points of its value.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol

    def clean(self) -> None:
        errors = {}
        for field in ("min_order_qty", "max_order_qty"):
            value = getattr(self, field)
            if value is not None and self.lot_size and value % self.lot_size:
                errors[field] = "Must be a whole number of lots."
        if self.reference_price and self.tick_size and self.reference_price % self.tick_size:
            errors["reference_price"] = "Must be on the tick grid."
        # Money is exact in whole tick-lots (tick size x lot size): the columns' 8 places must
        # hold one, or cash and P&L would be rounded.
        if self.tick_size and self.lot_size and (self.tick_size * self.lot_size) % MONEY_PLACES:
            errors["lot_size"] = (
                "Tick size x lot size must have at most 8 decimal places (money is exact)."
            )
        if (
            self.min_order_qty is not None
            and self.max_order_qty is not None
            and self.min_order_qty > self.max_order_qty
        ):
            errors["max_order_qty"] = "Must not be below the minimum order quantity."
        if (
            self.maker_fee_bps is not None
            and self.taker_fee_bps is not None
            and self.maker_fee_bps < -self.taker_fee_bps
        ):
            errors["maker_fee_bps"] = "A maker rebate may not be larger than the taker fee."
        if errors:
            raise ValidationError(errors)

    # Conversions between the decimal edge and the engine's integers. Exact: a value off the grid
    # is the caller's error (the gateway checks with `is_on_tick` / `is_whole_lots` first).
    def price_to_ticks(self, price: Decimal) -> int:
        return int(price / self.tick_size)

    def ticks_to_price(self, ticks: int) -> Decimal:
        return self.tick_size * ticks

    def qty_to_lots(self, qty: Decimal) -> int:
        return int(qty / self.lot_size)

    def lots_to_qty(self, lots: int) -> Decimal:
        return self.lot_size * lots

    def is_on_tick(self, price: Decimal) -> bool:
        return price % self.tick_size == 0

    def is_whole_lots(self, qty: Decimal) -> bool:
        return qty % self.lot_size == 0


class Account(models.Model):
    """Money and limits of one trader: a person (linked user) or an agent."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="trading_account",
    )
    name = models.CharField(max_length=120, unique=True)
    cash = _money(default=Decimal("0"))
    initial_cash = _money(default=Decimal("100000"), validators=[NON_NEGATIVE])
    min_bankroll = _money(
        default=Decimal("0"),
        validators=[NON_NEGATIVE],
        help_text="New orders are refused while equity is below this.",
    )
    default_max_position = models.PositiveBigIntegerField(
        default=1_000_000,
        help_text="Maximum exposure per instrument, in lots (enforced by the engine).",
    )
    max_order_qty = models.PositiveBigIntegerField(
        default=100_000, help_text="Largest single order, in lots."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Position(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="positions")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="positions")
    quantity = _money(default=Decimal("0"), help_text="Net: positive long, negative short.")
    cost_basis = _money(
        default=Decimal("0"),
        help_text="What the open quantity cost, signed like it (negative for a short): exact, "
        "whole tick-lots. The average price is derived from it.",
    )
    realized_pnl = _money(
        default=Decimal("0"), help_text="Net of fees: what closing trades made, minus every fee."
    )
    fees_paid = _money(
        default=Decimal("0"),
        db_default=Decimal("0"),
        help_text="Every fee paid on this instrument (rebates negative), already in realized P&L.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "instrument"], name="one_position")
        ]
        ordering = ["account", "instrument"]

    def __str__(self) -> str:
        return f"{self.account} {self.instrument} {_qty(self)}"

    @property
    def average_price(self) -> Decimal:
        """Cost basis per unit held (display only: never computed with, see recorder.money)."""
        if not self.quantity:
            return Decimal(0)
        return (abs(self.cost_basis) / abs(self.quantity)).quantize(MONEY_PLACES)

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        """What closing the position at `mark` would realize: exact (no rounded average in it)."""
        return unrealized_pnl(mark, self.quantity, self.cost_basis)


def unrealized_pnl(mark: Decimal, quantity: Decimal, cost_basis: Decimal) -> Decimal:
    """A position's unrealized P&L from its quantity and signed cost basis (`recorder.money`):
    one formula for longs and shorts."""
    return mark * quantity - cost_basis


class Side(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderType(models.TextChoices):
    LIMIT = "limit", "Limit"
    MARKET = "market", "Market"


class TimeInForce(models.TextChoices):
    GTC = "gtc", "Good till cancelled"
    IOC = "ioc", "Immediate or cancel"
    FOK = "fok", "Fill or kill"


class OrderStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"  # written by the gateway, not yet seen by the engine
    NEW = "NEW", "New"
    PARTIALLY_FILLED = "PARTIALLY_FILLED", "Partially filled"
    FILLED = "FILLED", "Filled"
    CANCELED = "CANCELED", "Canceled"
    EXPIRED = "EXPIRED", "Expired"  # IOC / market remainder, unfilled FOK
    REJECTED = "REJECTED", "Rejected"


OPEN_STATUSES = (OrderStatus.PENDING, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class OrderAmounts:
    """What an order's quantities and status say, for a row (`Order`) and for an order the
    recorder has not recorded yet (`selectors.PendingOrder`)."""

    __slots__ = ()

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Order(OrderAmounts, models.Model):
    # No index of their own: the unique constraints below lead with each of them.
    instrument = models.ForeignKey(
        Instrument, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    order_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Exchange order id (per instrument), from the journal."
    )
    client_order_id = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=6, choices=OrderType.choices)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices)
    post_only = models.BooleanField(default=False)
    price = _money(null=True, blank=True)
    quantity = _money()
    filled_quantity = _money(default=Decimal("0"))
    average_fill_price = _money(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    reject_reason = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "client_order_id"], name="unique_client_order_id"
            ),
            models.UniqueConstraint(
                fields=["instrument", "order_id"], name="unique_exchange_order_id"
            ),
        ]
        indexes = [models.Index(fields=["account", "status"])]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.instrument} #{self.order_id} {self.side} {_qty(self)}@{_price(self)}"


class Trade(models.Model):
    # No index of its own: `unique_trade_seq` leads with it.
    instrument = models.ForeignKey(
        Instrument, on_delete=models.PROTECT, related_name="trades", db_index=False
    )
    seq = models.PositiveBigIntegerField(help_text="The engine's sequence number of the trade.")
    price = _money()
    quantity = _money()
    aggressor_side = models.CharField(max_length=4, choices=Side.choices)
    maker_order_id = models.PositiveBigIntegerField()
    taker_order_id = models.PositiveBigIntegerField()
    executed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instrument", "seq"], name="unique_trade_seq")
        ]
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"{self.instrument} {_qty(self)}@{_price(self)}"


class Fill(models.Model):
    class Role(models.TextChoices):
        MAKER = "maker", "Maker"
        TAKER = "taker", "Taker"

    # Trade and account have no index of their own: a constraint and an index lead with them.
    trade = models.ForeignKey(Trade, on_delete=models.CASCADE, related_name="fills", db_index=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="fills", db_index=False
    )
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="fills")
    role = models.CharField(max_length=5, choices=Role.choices)
    side = models.CharField(max_length=4, choices=Side.choices)
    price = _money()
    quantity = _money()
    fee = _money(
        default=Decimal("0"),
        db_default=Decimal("0"),
        help_text="What the account paid for this fill (negative: a rebate), at the rate the "
        "engine stamped on the trade; already out of its cash and realized P&L.",
    )
    executed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trade", "role"], name="one_fill_per_role")]
        indexes = [models.Index(fields=["account", "-executed_at"])]
        ordering = ["-executed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.role} {self.side} {_qty(self)}@{_price(self)}"


class RecorderCursor(models.Model):
    """How far the database reflects a symbol's event stream. Updated in the same transaction
    as the writes it covers, which makes the recorder idempotent."""

    instrument = models.OneToOneField(
        Instrument, on_delete=models.CASCADE, related_name="recorder_cursor"
    )
    last_seq = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.instrument_id} @ {self.last_seq}"


class ApiToken(models.Model):
    """A bearer token for programs. Only a SHA-256 of the secret is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=64)
    prefix = models.CharField(max_length=12, help_text="The first characters, to recognise it.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


# How a row names its price and quantity (its admin page's title, a foreign key's choice): to the
# instrument's tick and lot, as every page writes them, not the column's "10.00000000".
def _price(row) -> str:
    return "market" if row.price is None else price_str(row.price, row.instrument.tick_size)


def _qty(row) -> str:
    return qty_str(row.quantity, row.instrument.lot_size)
