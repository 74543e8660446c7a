"""The fee rule (`exchange.protocol.fees`): the trade's value times the rate, to the currency's
smallest unit, half away from zero, a rebate the mirror of a fee."""

from decimal import Decimal as D

from exchange.protocol.fees import fee_amount


def test_a_fee_is_the_value_times_the_rate_to_the_cent():
    assert fee_amount(D("10000.00"), 3, 2) == D("3.00")
    assert fee_amount(D("1234.56"), 3, 2) == D("0.37")  # 0.370368
    assert fee_amount(D("1234.56"), 0, 2) == 0


def test_halves_round_away_from_zero_so_a_rebate_mirrors_the_fee():
    assert fee_amount(D("50.00"), 1, 2) == D("0.01")  # 0.005
    assert fee_amount(D("50.00"), -1, 2) == D("-0.01")
    assert fee_amount(D("49.00"), 1, 2) == D("0.00")  # 0.0049


def test_other_currencies_keep_their_decimals():
    assert fee_amount(D("1234.56"), 3, 0) == D("0")
    assert fee_amount(D("12345.6"), 10, 3) == D("12.346")
