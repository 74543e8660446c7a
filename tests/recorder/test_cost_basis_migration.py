"""exchange 0004: a position's rounded average price becomes its exact cost basis (average x
quantity, signed, rounded to the instrument's tick-lot), and back."""

from decimal import Decimal as D

import pytest

from tests.migrations import latest, migrate

BEFORE = [("exchange", "0003_instrument_listing_and_price_band")]
AFTER = [("exchange", "0004_position_cost_basis")]


@pytest.mark.django_db(transaction=True)
def test_average_prices_become_cost_bases_and_back():
    newest = latest()
    try:
        apps = migrate(BEFORE)
        Instrument = apps.get_model("exchange", "Instrument")
        Account = apps.get_model("exchange", "Account")
        Position = apps.get_model("exchange", "Position")
        acme = Instrument.objects.create(
            symbol="ACME", name="Acme", tick_size=D("0.01"), lot_size=D(1),
            min_order_qty=D(1), max_order_qty=D(1000), reference_price=D(100),
        )  # fmt: skip
        beta = Instrument.objects.create(
            symbol="BETA", name="Beta", tick_size=D("0.05"), lot_size=D("0.5"),
            min_order_qty=D("0.5"), max_order_qty=D(1000), reference_price=D(20),
        )  # fmt: skip
        accounts = [Account.objects.create(name=n) for n in ("long", "short", "flat")]
        # 3 bought for 3.02: the old average, rounded to 8 places.
        Position.objects.create(
            account=accounts[0], instrument=acme, quantity=D(3), average_price=D("1.00666667")
        )
        Position.objects.create(
            account=accounts[1], instrument=beta, quantity=D("-1.5"), average_price=D("20.05")
        )
        Position.objects.create(
            account=accounts[2], instrument=acme, quantity=D(0), realized_pnl=D("-0.19999992")
        )

        apps = migrate(AFTER)
        Position = apps.get_model("exchange", "Position")
        got = {p.account.name: (p.quantity, p.cost_basis) for p in Position.objects.all()}
        assert got == {
            "long": (D(3), D("3.02")),  # 3.02000001, rounded to the cent
            "short": (D("-1.5"), D("-30.075")),  # signed; a tick-lot of 0.025
            "flat": (D(0), D(0)),
        }

        apps = migrate(BEFORE)
        Position = apps.get_model("exchange", "Position")
        back = dict(Position.objects.values_list("account__name", "average_price"))
        assert back == {"long": D("1.00666667"), "short": D("20.05"), "flat": D(0)}
    finally:
        migrate(newest)
