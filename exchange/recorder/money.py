"""The recorder's arithmetic, one event at a time, and the one place a fill moves money: an
account's cash and its position (`settle_fill`).

Exact money. A price is a whole number of ticks and a quantity a whole number of lots, so every
amount that changes hands (price x quantity) is a whole number of *tick-lots*, the instrument's
money quantum (`money_quantum`: tick size x lot size). A position keeps its **cost basis** — what
its open quantity cost, signed like the quantity (a long of 3 bought for 3.02 has +3.02, a short
sold for 5.00 has -5.00) — never an average price: an average is a fraction of it (3.02 / 3 =
1.00666…) that no decimal column holds exactly, and P&L computed from a rounded average drifts
(the -0.19999992 a client once saw). With the cost basis signed, one formula serves longs and
shorts:

* unrealized P&L = mark x quantity - cost basis;
* adding to a position adds price x quantity to the cost basis (exact);
* reducing one takes out the closed share of the cost basis, rounded to the money quantum, and
  realizes the difference with the fill's proceeds. The rounding moves a fraction of a tick-lot
  between realized and unrealized (it has to go somewhere: 3.02 split three ways is not a whole
  number of cents), never in or out of their sum.

So cost basis, realized and unrealized P&L stay whole numbers of tick-lots, and for every account
and instrument, at every moment,

    realized P&L - cost basis = the sum of the fills' cash flows (minus fees, once there are),
    realized + unrealized     = that sum + mark x quantity,

exactly — the invariant the tests check. The reads are the position's own (`Position.
average_price`, derived for display: cost basis / |quantity|; `Position.unrealized_pnl`), where
the selectors of both apps reach them.

Rounded to 8 places (what the columns store) only as a last resort, for an instrument whose money
quantum is finer than that (`Instrument.clean` refuses such a tick and lot)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from exchange.protocol.decimals import EIGHT_PLACES

ZERO = Decimal(0)


def q8(value: Decimal) -> Decimal:
    """Rounds to the 8 places every money and quantity column stores."""
    return value.quantize(EIGHT_PLACES, rounding=ROUND_HALF_EVEN)


def money_quantum(tick_size: Decimal, lot_size: Decimal) -> Decimal:
    """The instrument's unit of money: one tick times one lot. Every cash flow, cost basis and
    P&L of the instrument is a whole number of it (no coarser than the columns' 8 places)."""
    return max((tick_size * lot_size).normalize(), EIGHT_PLACES)


def settle_fill(
    account,
    position,
    side: str,
    price: Decimal,
    qty: Decimal,
    quantum: Decimal,
    *,
    fee: Decimal = ZERO,
    wash: bool = False,
) -> None:
    """One account's side of one fill: the cash it pays or receives and its position moved.
    `fee` is what the account pays for the fill (a negative one a rebate: `exchange.protocol.
    fees`): out of cash and out of realized P&L, so P&L stays net of fees and the invariant above
    holds with it. A wash (a self-trade: both sides the account's) moves neither cash nor the
    position, but its fees are charged as on any trade — as exchanges do, which is what
    self-trade prevention is for."""
    if not wash:
        amount = price * qty  # exact: whole tick-lots
        account.cash = account.cash - amount if side == "buy" else account.cash + amount
        apply_fill(position, side, price, qty, quantum)
    if fee:
        account.cash -= fee
        position.realized_pnl -= fee
        position.fees_paid += fee


def apply_fill(position, side: str, price: Decimal, qty: Decimal, quantum: Decimal) -> None:
    """Moves a position (quantity, signed cost basis, realized P&L) by one fill. Adding to a
    position (or opening one) adds the fill's cost; reducing it takes out the closed share of the
    cost basis (rounded to `quantum`) and realizes the proceeds against it; going through zero
    closes all of it and opens the rest at the fill price."""
    signed = qty if side == "buy" else -qty
    held = position.quantity
    if held == 0 or (held > 0) == (signed > 0):
        position.quantity = held + signed
        position.cost_basis += price * signed
        return
    closing = min(qty, abs(held))
    if closing == abs(held):
        removed = position.cost_basis  # all of it: nothing left to round
    else:
        # A whole number of quanta (not `quantize`, which rounds to a power of ten: a tick of
        # 0.05 and a lot of 0.5 make a quantum of 0.025).
        share = position.cost_basis * closing / abs(held) / quantum
        removed = share.to_integral_value(rounding=ROUND_HALF_EVEN) * quantum
    closed = -closing if held > 0 else closing  # the closing part of `signed`
    # The closing part's cash flow (-price x closed) against the cost it takes out.
    position.realized_pnl += -price * closed - removed
    position.quantity = held + signed
    position.cost_basis = position.cost_basis - removed + price * (signed - closed)


def next_average_price(average: Decimal | None, filled: Decimal, price: Decimal, qty: Decimal):
    """An order's average fill price after one more fill of `qty` at `price`."""
    return q8(((average or ZERO) * filled + price * qty) / (filled + qty))
