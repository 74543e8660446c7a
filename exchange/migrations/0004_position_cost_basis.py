"""Positions keep an exact cost basis instead of a rounded average price (`recorder.money`)."""

from decimal import ROUND_HALF_EVEN, Decimal

from django.db import migrations, models


def cost_basis_from_average(apps, schema_editor):
    """cost basis = average price x quantity (signed like it), rounded to the instrument's money
    quantum (tick x lot, no finer than 8 places): the best the old rounded average can tell."""
    Position = apps.get_model("exchange", "Position")
    for position in Position.objects.exclude(quantity=0).select_related("instrument").iterator():
        instrument = position.instrument
        # As recorder.money.money_quantum (not imported: a migration keeps its own copy).
        quantum = (instrument.tick_size * instrument.lot_size).normalize()
        quantum = max(quantum, Decimal("0.00000001"))
        quanta = position.average_price * position.quantity / quantum
        position.cost_basis = quanta.to_integral_value(rounding=ROUND_HALF_EVEN) * quantum
        position.save(update_fields=["cost_basis"])


def average_from_cost_basis(apps, schema_editor):
    Position = apps.get_model("exchange", "Position")
    for position in Position.objects.exclude(quantity=0).iterator():
        average = abs(position.cost_basis) / abs(position.quantity)
        position.average_price = average.quantize(Decimal("0.00000001"))
        position.save(update_fields=["average_price"])


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0003_instrument_listing_and_price_band"),
    ]

    operations = [
        migrations.AddField(
            model_name="position",
            name="cost_basis",
            field=models.DecimalField(
                decimal_places=8,
                default=Decimal("0"),
                help_text="What the open quantity cost, signed like it (negative for a short): "
                "exact, whole tick-lots. The average price is derived from it.",
                max_digits=24,
            ),
        ),
        migrations.RunPython(cost_basis_from_average, average_from_cost_basis),
        migrations.RemoveField(model_name="position", name="average_price"),
    ]
