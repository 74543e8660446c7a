"""`exchange.protocol.decimals`: `parse_decimal`, the one reader of decimals from input outside the
DRF serializers (the gateway's price and quantity, a shock's pct, a research configuration), and
the writers of every number to its precision (and the live frames' `Scale`, which must agree)."""

from decimal import Decimal

import pytest

from exchange.live.market_state import Scale
from exchange.protocol.decimals import (
    DecimalInputError,
    fixed_str,
    money_str,
    parse_decimal,
    places,
    price_str,
    qty_str,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1.25", "1.25"), (" 4 ", "4"), (2, "2"), (0.1, "0.1"), (Decimal("-3.5"), "-3.5")],
)
def test_parses_strings_numbers_and_decimals(value, expected):
    assert parse_decimal(value) == Decimal(expected)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "type"),
        (True, "type"),
        ([1], "type"),
        ("abc", "syntax"),
        ("", "syntax"),
        ("nan", "non_finite"),
        (float("inf"), "non_finite"),
        (Decimal("-Infinity"), "non_finite"),
    ],
)
def test_refuses_what_is_no_finite_number(value, reason):
    with pytest.raises(DecimalInputError) as info:
        parse_decimal(value)
    assert info.value.reason == reason and isinstance(info.value, ValueError)


# ----- writers: every number to its precision -----------------------------------------------


@pytest.mark.parametrize(
    ("step", "expected"),
    [("0.01", 2), ("0.05", 2), ("0.01000000", 2), ("1", 0), ("25.00000000", 0), ("0.5", 1)],
)
def test_places_of_a_step(step, expected):
    assert places(Decimal(step)) == expected


@pytest.mark.parametrize(
    ("value", "tick", "expected"),
    [
        ("100.1", "0.01", "100.10"),
        ("100.10000000", "0.01", "100.10"),
        ("100", "0.05", "100.00"),
        ("1E+4", "1", "10000"),
        ("100.105", "0.01", "100.105"),  # a mid: never cut short of what it is
        ("1.00666667", "0.01", "1.00666667"),  # an average price
    ],
)
def test_prices_are_written_to_the_tick(value, tick, expected):
    assert price_str(Decimal(value), Decimal(tick)) == expected


@pytest.mark.parametrize(
    ("value", "lot", "expected"),
    [
        ("1E+4", "1", "10000"),
        ("10000.00000000", "1", "10000"),
        ("1.5", "0.5", "1.5"),
        ("4", "0.1", "4.0"),
    ],
)
def test_quantities_are_written_to_the_lot(value, lot, expected):
    assert qty_str(Decimal(value), Decimal(lot)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0E-8", "0.00"),
        ("-0E-8", "0.00"),
        ("31.00000000", "31.00"),
        ("-297.89000000", "-297.89"),
        ("1E+5", "100000.00"),
        ("0.0025", "0.0025"),  # a tick-lot finer than a cent: exact, not rounded
        ("-0.11", "-0.11"),
    ],
)
def test_money_is_written_to_the_currency_decimals(value, expected):
    assert money_str(Decimal(value)) == expected
    assert "E" not in money_str(Decimal(value))


def test_money_decimals_follow_the_setting(settings):
    settings.FLASHBOOK_CURRENCY_DECIMALS = 3
    assert money_str(Decimal("1.5")) == "1.500"
    assert fixed_str(Decimal("7"), 0) == "7"


@pytest.mark.parametrize(
    ("tick", "lot", "ticks", "lots", "price", "qty"),
    [
        ("0.01", "1", 10010, 10000, "100.10", "10000"),
        ("0.01000000", "1.00000000", 10000, 3, "100.00", "3"),
        ("0.05", "0.5", 2001, 3, "100.05", "1.5"),
        ("25", "100", 4, 3, "100", "300"),
        ("0.0001", "0.001", 7, 1, "0.0007", "0.001"),
    ],
)
def test_the_live_frames_write_prices_to_the_tick_as_the_api_does(
    tick, lot, ticks, lots, price, qty
):
    scale = Scale(Decimal(tick), Decimal(lot))
    assert (scale.price(ticks), scale.qty(lots)) == (price, qty)
    # One format: the frames' integer writer and the decimal writers agree.
    assert scale.price(ticks) == price_str(Decimal(tick) * ticks, Decimal(tick))
    assert scale.qty(lots) == qty_str(Decimal(lot) * lots, Decimal(lot))
