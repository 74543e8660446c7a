"""The recorder's arithmetic (positions, average prices, cash) and the order status machine it
shares with the gateway — pure functions, no database."""

from decimal import Decimal as D

import pytest

from exchange.models import OrderStatus, Position
from exchange.orders.progress import OrderProgress
from exchange.recorder.money import apply_fill, next_average_price, q8, trade_amount

from .support import Book


def position(quantity="0", average="0", realized="0") -> Position:
    return Position(quantity=D(quantity), average_price=D(average), realized_pnl=D(realized))


def fills(pos: Position, *moves: tuple[str, str, str]) -> Position:
    for side, price, qty in moves:
        apply_fill(pos, side, D(price), D(qty))
    return pos


def state(pos: Position) -> tuple[D, D, D]:
    return pos.quantity, pos.average_price, pos.realized_pnl


# ----- positions -----------------------------------------------------------------------------


def test_opening_and_adding_to_a_long_averages_the_price():
    pos = fills(position(), ("buy", "100", "10"), ("buy", "110", "30"))
    assert state(pos) == (D(40), D("107.5"), D(0))


def test_reducing_a_long_realizes_against_the_average_and_keeps_it():
    pos = fills(position("40", "107.5"), ("sell", "120", "10"))
    assert state(pos) == (D(30), D("107.5"), D("125"))  # 10 * (120 - 107.5)
    fills(pos, ("sell", "100", "30"))
    assert state(pos) == (D(0), D(0), D("-100"))  # 125 + 30 * (100 - 107.5)


def test_a_short_gains_when_the_price_falls():
    pos = fills(position(), ("sell", "50", "4"), ("sell", "56", "2"))
    assert state(pos) == (D(-6), D(52), D(0))
    fills(pos, ("buy", "48", "5"))
    assert state(pos) == (D(-1), D(52), D(20))  # 5 * (52 - 48)
    fills(pos, ("buy", "60", "1"))
    assert state(pos) == (D(0), D(0), D(12))  # 20 - 8


def test_flipping_long_to_short_realizes_the_closed_part_and_opens_the_rest_at_the_fill():
    pos = fills(position("5", "10"), ("sell", "12", "8"))
    assert state(pos) == (D(-3), D(12), D(10))  # 5 * (12 - 10); 3 short at 12
    fills(pos, ("buy", "11", "7"))
    assert state(pos) == (D(4), D(11), D(13))  # + 3 * (12 - 11); 4 long at 11


def test_averages_round_to_eight_places_at_every_fill():
    pos = fills(position(), ("buy", "1", "1"), ("buy", "2", "2"))
    assert pos.average_price == D("1.66666667")
    fills(pos, ("sell", "2", "3"))
    assert state(pos) == (D(0), D(0), D("0.99999999"))  # 3 * (2 - 1.66666667)


def test_fractional_lots_and_ticks():
    pos = fills(position(), ("buy", "0.03", "0.7"), ("buy", "0.06", "1.4"))
    assert state(pos) == (D("2.1"), D("0.05"), D(0))
    fills(pos, ("sell", "0.09", "2.8"))
    assert state(pos) == (D("-0.7"), D("0.09"), D("0.084"))  # 2.1 * (0.09 - 0.05)


def test_order_average_fill_price_and_trade_amount():
    average = next_average_price(None, D(0), D("10.01"), D(3))
    assert average == D("10.01")
    average = next_average_price(average, D(3), D("10.02"), D(4))
    assert average == q8((D("10.01") * 3 + D("10.02") * 4) / 7) == D("10.01571429")
    assert trade_amount(D("0.03"), D("0.7")) == D("0.021")
    assert trade_amount(D("1.23456789"), D("0.5")) == D("0.61728394")  # half-even


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
