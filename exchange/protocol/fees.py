"""What one side of one trade pays in fees — one rule, for the recorder (the live exchange's ledger)
and the research simulator (its agents' results), so the two charge the same amounts.

The engine stamps each trade with the fee rates in force (basis points; `docs/protocol.md`), so a
replay charges what the live run charged whatever the admin has changed since. The amount is the
trade's value times the rate, rounded to the currency's smallest unit (a cent by default) half
away from zero, so that a fee and the same rebate are the same size, and cash stays a whole number
of cents whenever prices and quantities are.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal(0)
BASIS_POINTS = Decimal(10_000)


def fee_amount(value: Decimal, bps: int, decimals: int) -> Decimal:
    """The fee on a trade side worth `value` (price times quantity, in money) at `bps` basis points
    (negative: a rebate, returned negative), to `decimals` places of the currency."""
    if not bps:
        return ZERO
    return (value * bps / BASIS_POINTS).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP)
