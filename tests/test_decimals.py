"""`exchange.protocol.decimals.parse_decimal`: the one reader of decimals from input outside the
DRF serializers (the gateway's price and quantity, a shock's pct, a research configuration)."""

from decimal import Decimal

import pytest

from exchange.protocol.decimals import DecimalInputError, parse_decimal


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
