"""The recorder's arithmetic (positions, average prices, cash) and the order status machine it
shares with the gateway — pure functions, no database."""

from decimal import Decimal as D

import pytest

from exchange.models import Account, OrderStatus, Position
from exchange.orders.progress import OrderProgress
from exchange.recorder.money import (
    apply_fill,
    money_quantum,
    next_average_price,
    q8,
    settle_fill,
)

from .support import Book

CENT = D("0.01")  # the money quantum of a tick of 0.01 and a lot of 1


def position(quantity="0", cost="0", realized="0") -> Position:
    return Position(quantity=D(quantity), cost_basis=D(cost), realized_pnl=D(realized))


def fills(pos: Position, *moves: tuple[str, str, str], quantum=CENT) -> Position:
    for side, price, qty in moves:
        apply_fill(pos, side, D(price), D(qty), quantum)
    return pos


def state(pos: Position) -> tuple[D, D, D, D]:
    return pos.quantity, pos.cost_basis, pos.average_price, pos.realized_pnl


# ----- positions -----------------------------------------------------------------------------


def test_opening_and_adding_to_a_long_adds_the_cost():
    pos = fills(position(), ("buy", "100", "10"), ("buy", "110", "30"))
    assert state(pos) == (D(40), D(4300), D("107.5"), D(0))


def test_reducing_a_long_realizes_against_its_share_of_the_cost():
    pos = fills(position("40", "4300"), ("sell", "120", "10"))
    assert state(pos) == (D(30), D(3225), D("107.5"), D("125"))  # 10 * (120 - 107.5)
    fills(pos, ("sell", "100", "30"))
    assert state(pos) == (D(0), D(0), D(0), D("-100"))  # 125 + 30 * (100 - 107.5)


def test_a_short_has_a_negative_cost_and_gains_when_the_price_falls():
    pos = fills(position(), ("sell", "50", "4"), ("sell", "56", "2"))
    assert state(pos) == (D(-6), D(-312), D(52), D(0))
    assert pos.unrealized_pnl(D(40)) == D(72)  # 6 * (52 - 40)
    fills(pos, ("buy", "48", "5"))
    assert state(pos) == (D(-1), D(-52), D(52), D(20))  # 5 * (52 - 48)
    fills(pos, ("buy", "60", "1"))
    assert state(pos) == (D(0), D(0), D(0), D(12))  # 20 - 8


def test_flipping_long_to_short_realizes_the_closed_part_and_opens_the_rest_at_the_fill():
    pos = fills(position("5", "50"), ("sell", "12", "8"))
    assert state(pos) == (D(-3), D(-36), D(12), D(10))  # 5 * (12 - 10); 3 short at 12
    fills(pos, ("buy", "11", "7"))
    assert state(pos) == (D(4), D(44), D(11), D(13))  # + 3 * (12 - 11); 4 long at 11


def test_the_cost_basis_is_exact_where_an_average_would_round():
    """The scenario behind the client's -0.19999992: buy 3 at 1.00, 1.01, 1.01 (an average of
    1.00666…), sell 1, then 2. Every amount stays whole cents, and realized + unrealized is the
    exact sum of the cash flows plus the position's value at every step."""
    pos = position()
    cash = D(0)
    account = Account(cash=cash)
    trail = [
        ("buy", "1.00", "1"),
        ("buy", "1.01", "1"),
        ("buy", "1.01", "1"),
        ("sell", "0.94", "1"),
        ("sell", "0.95", "2"),
    ]
    for side, price, qty in trail:
        settle_fill(account, pos, side, D(price), D(qty), CENT)
        for mark in (D("0.90"), D("0.945"), D("1.01")):
            unrealized = pos.unrealized_pnl(mark)
            assert pos.realized_pnl + unrealized == account.cash + mark * pos.quantity
        for amount in (pos.cost_basis, pos.realized_pnl, pos.unrealized_pnl(D("0.94"))):
            assert amount == amount.quantize(CENT)
    assert account.cash == D("-0.18")  # 0.94 + 1.90 - 3.02
    assert state(pos) == (D(0), D(0), D(0), D("-0.18"))
    # After the first sale: 1.01 of the 3.02 taken out (a third, rounded to the cent).
    pos2 = fills(position(), *trail[:4])
    assert (pos2.quantity, pos2.cost_basis, pos2.realized_pnl) == (D(2), D("2.01"), D("-0.07"))
    assert pos2.unrealized_pnl(D("0.95")) == D("-0.11")  # not -0.11333334 (or -0.19999992)
    assert pos2.average_price == D("1.005")


def test_many_small_reductions_never_drift():
    """A cost that does not split evenly, closed a lot at a time: the rounding of each share
    moves a fraction of a cent between realized and unrealized, never in or out of their sum."""
    pos = fills(position(), ("buy", "1.00", "1"), ("buy", "1.01", "1"), ("buy", "1.01", "5"))
    flows = D("-7.06")  # 1.00 + 1.01 + 5 * 1.01
    for _ in range(7):
        fills(pos, ("sell", "1.03", "1"))
        flows += D("1.03")
        assert pos.realized_pnl - pos.cost_basis == flows
    assert state(pos) == (D(0), D(0), D(0), D("0.15"))


def test_fractional_lots_and_ticks():
    quantum = money_quantum(D("0.03"), D("0.7"))
    assert quantum == D("0.021")
    pos = fills(position(), ("buy", "0.03", "0.7"), ("buy", "0.06", "1.4"), quantum=quantum)
    assert state(pos) == (D("2.1"), D("0.105"), D("0.05"), D(0))
    fills(pos, ("sell", "0.09", "2.8"), quantum=quantum)
    assert state(pos) == (D("-0.7"), D("-0.063"), D("0.09"), D("0.084"))  # 2.1 * (0.09 - 0.05)


def test_settle_fill_moves_cash_and_takes_a_fee_out_of_cash_and_realized():
    account = Account(cash=D(100))
    pos = position()
    settle_fill(account, pos, "buy", D("10.00"), D(3), CENT, fee=D("0.03"))
    assert (account.cash, pos.cost_basis, pos.realized_pnl) == (D("69.97"), D(30), D("-0.03"))
    settle_fill(account, pos, "sell", D("11.00"), D(3), CENT)
    assert (account.cash, pos.realized_pnl) == (D("102.97"), D("2.97"))
    assert pos.realized_pnl - pos.cost_basis == account.cash - 100


def test_order_average_fill_price():
    average = next_average_price(None, D(0), D("10.01"), D(3))
    assert average == D("10.01")
    average = next_average_price(average, D(3), D("10.02"), D(4))
    assert average == q8((D("10.01") * 3 + D("10.02") * 4) / 7) == D("10.01571429")


# ----- order statuses ------------------------------------------------------------------------


def progress_of(order_id: int, qty: int, events, status=OrderStatus.PENDING) -> OrderProgress:
    progress = OrderProgress(order_id=order_id, quantity_lots=qty, status=status)
    for event in events:
        if event.kind == "trade":
            if order_id in (event.maker_order_id, event.taker_order_id):
                progress.apply(event)
        elif event.kind != "level" and event.kind != "status" and event.order_id == order_id:
            progress.apply(event)
    return progress


def test_accepted_partially_filled_filled():
    book = Book("X")
    book.new(1, 7, "sell", 10, 100)
    assert progress_of(1, 10, book.events).status == OrderStatus.NEW
    book.new(2, 8, "buy", 4, 100)
    maker = progress_of(1, 10, book.events)
    assert (maker.status, maker.filled_lots, maker.remaining_lots) == ("PARTIALLY_FILLED", 4, 6)
    assert progress_of(2, 4, book.events).status == OrderStatus.FILLED
    book.new(3, 8, "buy", 6, 101)
    assert progress_of(1, 10, book.events).status == OrderStatus.FILLED


@pytest.mark.parametrize(
    ("command", "status", "reason"),
    [
        ({"t": "cancel", "id": 1, "acct": 7}, OrderStatus.CANCELED, ""),
        ({"t": "reset"}, OrderStatus.CANCELED, "RESET"),
        (
            {
                "t": "new",
                "id": 2,
                "acct": 7,
                "side": "sell",
                "px": 99,
                "qty": 1,
                "stp": "cancel_oldest",
            },
            OrderStatus.CANCELED,
            "SELF_TRADE",
        ),
    ],
)
def test_cancellations_of_a_resting_order(command, status, reason):
    book = Book("X")
    book.new(1, 7, "buy", 5, 100)
    book(**command)
    progress = progress_of(1, 5, book.events)
    assert (progress.status, progress.reject_reason) == (status, reason)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"tif": "ioc"}, "REMAINDER"),
        ({"type": "market", "tif": "ioc"}, "REMAINDER"),
        ({"tif": "fok"}, "FOK_UNFILLABLE"),
    ],
)
def test_an_unfilled_remainder_expires(fields, reason):
    book = Book("X")
    book.new(1, 7, "sell", 2, 100)
    px = None if fields.get("type") == "market" else 100
    book.new(2, 8, "buy", 5, px, **fields)
    progress = progress_of(2, 5, book.events)
    assert (progress.status, progress.reject_reason) == (OrderStatus.EXPIRED, reason)
    assert progress.filled_lots == (0 if reason == "FOK_UNFILLABLE" else 2)


def test_a_rejected_new_and_a_rejected_cancel():
    book = Book("X")
    book.new(1, 7, "buy", 5, 100, post="1", tif="ioc")
    assert (
        progress_of(1, 5, book.events).status,
        progress_of(1, 5, book.events).reject_reason,
    ) == (
        OrderStatus.REJECTED,
        "INVALID_POST_ONLY",
    )
    book.new(2, 7, "buy", 5, 100)
    book(t="cancel", id=2, acct=8)  # someone else's order: UNKNOWN_ORDER, changes nothing
    progress = progress_of(2, 5, book.events)
    assert (progress.status, progress.reject_reason) == (OrderStatus.NEW, "")


def test_replace_sets_quantity_to_filled_plus_the_new_remaining():
    book = Book("X")
    book.new(1, 7, "buy", 10, 100)
    book.new(2, 8, "sell", 3, 100)
    book(t="replace", id=1, acct=7, px=101, qty=4)
    progress = progress_of(1, 10, book.events)
    assert (progress.quantity_lots, progress.filled_lots, progress.price_ticks) == (7, 3, 101)
    assert progress.status == OrderStatus.PARTIALLY_FILLED


def test_a_wash_charges_its_fees_and_moves_nothing_else():
    account = Account(cash=D(100))
    pos = position()
    settle_fill(account, pos, "buy", D("10.00"), D(3), CENT, fee=D("0.02"), wash=True)
    settle_fill(account, pos, "sell", D("10.00"), D(3), CENT, fee=D("-0.01"), wash=True)
    assert (account.cash, pos.quantity, pos.cost_basis) == (D("99.99"), D(0), D(0))
    assert pos.realized_pnl == D("-0.01")
