"""Exchange models. Prices and quantities are decimals here, at the edge; the engine sees ticks
and lots (see `Instrument.to_ticks` / `to_lots`)."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

SYMBOL_VALIDATOR = RegexValidator(
    r"^[A-Z0-9._-]{1,32}$",
    "Use 1-32 characters: capital letters, digits, '.', '_' or '-'.",
)
POSITIVE = MinValueValidator(Decimal("0.00000001"))


class Instrument(models.Model):
    symbol = models.CharField(max_length=32, unique=True, validators=[SYMBOL_VALIDATOR])
    name = models.CharField(max_length=120)
    tick_size = models.DecimalField(max_digits=20, decimal_places=8, validators=[POSITIVE])
    lot_size = models.DecimalField(max_digits=20, decimal_places=8, validators=[POSITIVE])
    min_order_qty = models.DecimalField(max_digits=24, decimal_places=8, validators=[POSITIVE])
    max_order_qty = models.DecimalField(max_digits=24, decimal_places=8, validators=[POSITIVE])
    reference_price = models.DecimalField(max_digits=24, decimal_places=8, validators=[POSITIVE])
    enabled = models.BooleanField(
        default=True, help_text="Served by the engine and open for orders."
    )
    halted = models.BooleanField(default=False, help_text="Trading halted: new orders are refused.")
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
        if (
            self.min_order_qty is not None
            and self.max_order_qty is not None
            and self.min_order_qty > self.max_order_qty
        ):
            errors["max_order_qty"] = "Must not be below the minimum order quantity."
        if errors:
            raise ValidationError(errors)
