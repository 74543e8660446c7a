"""The Python bindings of the matching engine (flashbook_engine): every method, the value objects,
input validation, batches, determinism and snapshots. Engine rules themselves are tested in Rust;
here they are exercised only as far as needed to show the bindings carry them faithfully."""

from __future__ import annotations

import copy
import doctest
import gc
import pickle
import random
import sys
import threading

import flashbook_engine as fe
import pytest
from flashbook_engine import (
    MAX_PRICE,
    MAX_QTY,
    Bbo,
    Command,
    Event,
    Exposure,
    OrderBook,
    RestingOrder,
    SnapshotError,
)

EVENT_ATTRS = (
    "order_id",
    "account",
    "side",
    "order_type",
    "tif",
    "price",
    "qty",
    "post_only",
    "reason",
    "command",
    "maker_order_id",
    "maker_account",
    "taker_order_id",
    "taker_account",
    "aggressor",
    "maker_remaining",
    "taker_remaining",
    "maker_fee_bps",
    "taker_fee_bps",
    "old_price",
    "old_qty",
    "kept_priority",
    "status",
    "client_ref",
)

# Which attributes are set (not None) for each kind of event.
ATTRS_BY_KIND = {
    "accepted": {
        "order_id",
        "account",
        "side",
        "order_type",
        "tif",
        "price",
        "qty",
        "post_only",
        "client_ref",
    },
    "rejected": {"order_id", "account", "command", "reason", "client_ref"},
    "trade": {
        "maker_order_id",
        "maker_account",
        "taker_order_id",
        "taker_account",
        "price",
        "qty",
        "aggressor",
        "maker_remaining",
        "taker_remaining",
        "maker_fee_bps",
        "taker_fee_bps",
    },
    "cancelled": {"order_id", "account", "side", "price", "qty", "reason"},
    "replaced": {
        "order_id",
        "account",
        "side",
        "old_price",
        "old_qty",
        "price",
        "qty",
        "kept_priority",
    },
    "level": {"side", "price", "qty"},
    "status": {"status"},
}


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


def book_with_asks() -> OrderBook:
    """Asks: 100 x1 (id 3, acct 12); 101 x2 (id 1, acct 10) then 101 x3 (id 2, acct 11)."""
    book = OrderBook("ACME")
    book.new_order(1, 10, "sell", 101, 2)
    book.new_order(2, 11, "sell", 101, 3)
    book.new_order(3, 12, "sell", 100, 1)
    return book


# ----- module ------------------------------------------------------------------------------------


def test_module_exports():
    assert isinstance(fe.__version__, str) and fe.__version__
    assert fe.__version__ == fe._engine.__version__
    for name in fe.__all__:
        assert hasattr(fe, name), name
    assert MAX_PRICE == 2**53 - 1
    assert MAX_QTY == 2**40 - 1
    assert issubclass(SnapshotError, ValueError)
    assert OrderBook.__module__ == "flashbook_engine"
    assert SnapshotError.__module__ == "flashbook_engine"


def test_package_docstring_example():
    assert doctest.testmod(fe).failed == 0


# ----- construction and properties --------------------------------------------------------------


def test_new_book_properties():
    book = OrderBook("ACME", capacity=1000)
    assert book.symbol == "ACME"
    assert book.seq == 0
    assert book.halted is False
    assert book.last_order_id == 0
    assert book.order_count == 0
    assert book.level_count == 0
    assert (book.bbo().bid, book.bbo().ask) == (None, None)
    assert repr(book) == "OrderBook(symbol='ACME', seq=0, orders=0, levels=0)"


def test_constructor_validation():
    with pytest.raises(ValueError, match="symbol"):
        OrderBook("")
    with pytest.raises(OverflowError):
        OrderBook("X", -1)
    with pytest.raises(ValueError, match="capacity"):
        OrderBook("X", 10**12)
    with pytest.raises(TypeError):
        OrderBook(123)  # type: ignore[arg-type]


def test_properties_follow_the_book():
    book = book_with_asks()
    book.new_order(7, 20, "buy", 99, 5)
    assert book.seq == 8  # 4 NEWs: accepted + level each
    assert book.last_order_id == 7
    assert book.order_count == 4
    assert book.level_count == 3
    book.halt()
    assert book.halted is True
    assert "halted=True" in repr(book)
    book.resume()
    assert book.halted is False


def test_read_only_properties():
    book = OrderBook("X")
    with pytest.raises(AttributeError):
        book.seq = 5  # type: ignore[misc]


# ----- commands ----------------------------------------------------------------------------------


def test_new_order_resting_events():
    book = OrderBook("ACME")
    events = book.new_order(1, 7, "buy", 100, 5)
    assert kinds(events) == ["accepted", "level"]
    accepted, level = events
    assert (accepted.seq, level.seq) == (1, 2)
    assert (accepted.order_id, accepted.account, accepted.side) == (1, 7, "buy")
    assert (accepted.order_type, accepted.tif, accepted.price, accepted.qty) == (
        "limit",
        "gtc",
        100,
        5,
    )
    assert accepted.post_only is False
    assert (level.side, level.price, level.qty) == ("buy", 100, 5)


def test_price_time_priority_and_trades_at_maker_price():
    book = book_with_asks()
    events = book.new_order(4, 20, "buy", 105, 4)
    trades = [e for e in events if e.kind == "trade"]
    # Best price first (100), then the 101 queue oldest first; always at the maker's price.
    assert [(t.maker_order_id, t.maker_account, t.price, t.qty) for t in trades] == [
        (3, 12, 100, 1),
        (1, 10, 101, 2),
        (2, 11, 101, 1),
    ]
    assert all(t.taker_order_id == 4 and t.taker_account == 20 for t in trades)
    assert all(t.aggressor == "buy" for t in trades)
    assert [(t.maker_remaining, t.taker_remaining) for t in trades] == [(0, 3), (0, 1), (2, 0)]
    assert kinds(events) == ["accepted", "trade", "level", "trade", "trade", "level"]
    levels = [(e.side, e.price, e.qty) for e in events if e.kind == "level"]
    assert levels == [("sell", 100, 0), ("sell", 101, 2)]
    assert [e.seq for e in events] == list(range(7, 13))  # gap-free after the 6 set-up events
    assert book.bbo().ask == (101, 2)
    assert book.order(4) is None  # filled completely, never rested
    assert book.exposure(20).position == 4


def test_market_order_remainder_never_rests():
    book = book_with_asks()
    events = book.market_order(4, 20, "buy", 10)
    assert events[0].order_type == "market" and events[0].tif == "ioc"
    assert sum(e.qty for e in events if e.kind == "trade") == 6
    cancelled = events[-1]
    assert (cancelled.kind, cancelled.order_id, cancelled.qty, cancelled.reason) == (
        "cancelled",
        4,
        4,
        "REMAINDER",
    )
    assert book.order_count == 0
    assert book.bbo().bid is None


def test_market_order_via_new_order_defaults_to_ioc():
    book = book_with_asks()
    events = book.new_order(4, 20, "buy", 0, 1, order_type="market")
    assert events[0].tif == "ioc"
    assert kinds(events) == ["accepted", "trade", "level"]


def test_fok_fills_fully_or_not_at_all():
    book = book_with_asks()
    events = book.new_order(4, 20, "buy", 101, 7, tif="fok")
    assert kinds(events) == ["accepted", "cancelled"]
    assert events[1].reason == "FOK_UNFILLABLE"
    events = book.new_order(5, 20, "buy", 101, 6, tif="fok")
    assert sum(e.qty for e in events if e.kind == "trade") == 6


def test_ioc_remainder_cancelled():
    book = book_with_asks()
    events = book.new_order(4, 20, "buy", 100, 3, tif="ioc")
    assert kinds(events) == ["accepted", "trade", "level", "cancelled"]
    assert (events[-1].qty, events[-1].reason) == (2, "REMAINDER")


def test_post_only_that_would_cross_is_rejected():
    book = book_with_asks()
    (event,) = book.new_order(4, 20, "buy", 100, 1, post_only=True)
    assert (event.kind, event.command, event.reason) == ("rejected", "new", "POST_ONLY_WOULD_CROSS")
    events = book.new_order(5, 20, "buy", 99, 1, post_only=True)
    assert events[0].post_only is True and kinds(events) == ["accepted", "level"]


def test_engine_rejections_are_events_not_exceptions():
    book = OrderBook("X")
    cases = [
        (dict(order_id=1, qty=0), "INVALID_QUANTITY"),
        (dict(order_id=2, qty=-5), "INVALID_QUANTITY"),
        (dict(order_id=3, qty=MAX_QTY + 1), "INVALID_QUANTITY"),
        (dict(order_id=4, price=0), "INVALID_PRICE"),
        (dict(order_id=5, price=-1), "INVALID_PRICE"),
        (dict(order_id=6, price=MAX_PRICE + 1), "INVALID_PRICE"),
        (dict(order_id=6), "DUPLICATE_ORDER_ID"),
    ]
    for overrides, reason in cases:
        args = dict(order_id=0, account=1, side="buy", price=100, qty=1) | overrides
        (event,) = book.new_order(**args)
        assert (event.kind, event.reason, event.order_id) == ("rejected", reason, args["order_id"])
    (event,) = book.new_order(7, 1, "buy", 0, 1, order_type="market", tif="gtc")
    assert event.reason == "INVALID_TIME_IN_FORCE"
    (event,) = book.new_order(8, 1, "buy", 100, 1, tif="ioc", post_only=True)
    assert event.reason == "INVALID_POST_ONLY"
    assert book.order_count == 0


def test_position_limit():
    book = OrderBook("X")
    assert kinds(book.new_order(1, 7, "buy", 100, 5, max_position=5)) == ["accepted", "level"]
    (event,) = book.new_order(2, 7, "buy", 100, 1, max_position=5)
    assert event.reason == "POSITION_LIMIT"
    assert book.order(1).max_position == 5


def test_self_trade_prevention():
    book = OrderBook("X")
    book.new_order(1, 7, "sell", 100, 5)
    events = book.new_order(2, 7, "buy", 100, 5, stp="cancel_oldest")
    assert [(e.kind, e.order_id, e.reason) for e in events if e.kind == "cancelled"] == [
        ("cancelled", 1, "SELF_TRADE")
    ]
    assert book.order(2).stp == "cancel_oldest"


def test_cancel():
    book = book_with_asks()
    events = book.cancel(1, 10)
    assert kinds(events) == ["cancelled", "level"]
    assert (events[0].order_id, events[0].qty, events[0].reason, events[0].side) == (
        1,
        2,
        "USER",
        "sell",
    )
    assert (events[1].price, events[1].qty) == (101, 3)
    # Order 2 is still queued at 101, now first.
    events = book.new_order(9, 20, "buy", 101, 4)
    trades = [(e.maker_order_id, e.qty) for e in events if e.kind == "trade"]
    assert trades == [(3, 1), (2, 3)]


def test_unknown_or_foreign_cancel_is_rejected():
    book = book_with_asks()
    for order_id, account in [(99, 10), (1, 11)]:
        (event,) = book.cancel(order_id, account)
        assert (event.kind, event.command, event.reason) == ("rejected", "cancel", "UNKNOWN_ORDER")
        assert (event.order_id, event.account) == (order_id, account)
    assert book.order_count == 3


def test_replace_keeps_or_loses_priority():
    book = book_with_asks()
    events = book.replace(1, 10, qty=1)
    assert events[0].kind == "replaced"
    assert (events[0].old_qty, events[0].qty, events[0].kept_priority) == (2, 1, True)
    assert (events[0].old_price, events[0].price) == (101, 101)
    events = book.replace(2, 11, price=102)
    assert events[0].kept_priority is False
    assert (events[0].old_price, events[0].price) == (101, 102)
    assert book.depth() == ([], [(100, 1), (101, 1), (102, 3)])


def test_replace_into_cross_trades_at_maker_price():
    book = book_with_asks()
    book.new_order(4, 20, "buy", 99, 2)
    events = book.replace(4, 20, price=101)
    trades = [(e.maker_order_id, e.price, e.qty, e.aggressor) for e in events if e.kind == "trade"]
    assert trades == [(3, 100, 1, "buy"), (1, 101, 1, "buy")]


def test_replace_unknown_rejected():
    book = OrderBook("X")
    (event,) = book.replace(5, 1, price=10)
    assert (event.command, event.reason) == ("replace", "UNKNOWN_ORDER")


def test_halt_resume():
    book = book_with_asks()
    (event,) = book.halt()
    assert (event.kind, event.status) == ("status", "HALTED")
    (event,) = book.new_order(4, 20, "buy", 99, 1)
    assert event.reason == "BOOK_HALTED"
    assert kinds(book.cancel(1, 10)) == ["cancelled", "level"]
    (event,) = book.resume()
    assert event.status == "RESUMED"
    assert kinds(book.new_order(5, 20, "buy", 99, 1)) == ["accepted", "level"]


def test_reset():
    book = book_with_asks()
    book.new_order(4, 20, "buy", 100, 1)  # a trade, so positions are non-zero
    assert book.exposures()
    events = book.reset()
    assert [e.order_id for e in events if e.kind == "cancelled"] == [1, 2]
    assert {e.reason for e in events if e.kind == "cancelled"} == {"RESET"}
    assert events[-1].status == "RESET"
    assert book.order_count == 0 and book.level_count == 0
    assert book.exposures() == {}
    assert book.exposure(20) == book.exposure(999)
    assert book.seq == events[-1].seq  # the sequence continues
    assert book.last_order_id == 4


# ----- input validation --------------------------------------------------------------------------

BAD_ENUMS = [
    ("side", "up"),
    ("side", "BUY"),
    ("side", ""),
    ("order_type", "stop"),
    ("tif", "day"),
    ("tif", "GTC"),
    ("stp", "cancel"),
]


def new_order_kwargs(field: str, value: str) -> tuple[tuple, dict]:
    args = [1, 7, "buy", 100, 1]
    kwargs: dict = {}
    if field == "side":
        args[2] = value
    else:
        kwargs[field] = value
    return tuple(args), kwargs


@pytest.mark.parametrize(("field", "value"), BAD_ENUMS)
def test_bad_enum_strings_raise_value_error(field, value):
    book = OrderBook("X")
    args, kwargs = new_order_kwargs(field, value)
    with pytest.raises(ValueError, match=f"invalid {field} '{value}': expected one of") as info:
        book.new_order(*args, **kwargs)
    with pytest.raises(ValueError, match=f"invalid {field} '{value}'"):
        Command.new(*args, **kwargs)
    if field != "order_type":
        market_args = (1, 7, args[2], 1)
        with pytest.raises(ValueError, match=f"invalid {field}"):
            book.market_order(*market_args, **kwargs)
        with pytest.raises(ValueError, match=f"invalid {field}"):
            Command.market(*market_args, **kwargs)
    assert "'" in str(info.value)
    assert book.seq == 0  # nothing reached the engine


def test_enum_error_lists_allowed_values():
    with pytest.raises(ValueError) as info:
        OrderBook("X").new_order(1, 1, "buy", 1, 1, stp="x")
    message = str(info.value)
    for allowed in ("'none'", "'cancel_newest'", "'cancel_oldest'", "'cancel_both'"):
        assert allowed in message


def test_every_enum_string_is_accepted():
    book = OrderBook("X")
    order_id = 0
    for side in ("buy", "sell"):
        for tif in ("gtc", "ioc", "fok"):
            for stp in ("none", "cancel_newest", "cancel_oldest", "cancel_both"):
                order_id += 1
                events = book.new_order(order_id, order_id, side, 100, 1, tif=tif, stp=stp)
                assert events[0].kind == "accepted"
                assert (events[0].side, events[0].tif) == (side, tif)
    for tif in ("ioc", "fok"):
        order_id += 1
        assert book.market_order(order_id, 1, "buy", 1, tif=tif)[0].tif == tif


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((-1, 1, "buy", 100, 1), OverflowError),
        ((2**64, 1, "buy", 100, 1), OverflowError),
        ((1, -1, "buy", 100, 1), OverflowError),
        ((1, 2**64, "buy", 100, 1), OverflowError),
        ((1, 1, "buy", 2**63, 1), OverflowError),
        ((1, 1, "buy", 100, -(2**63) - 1), OverflowError),
        ((1, 1, "buy", 100.0, 1), TypeError),
        ((1, 1, "buy", 100, 1.5), TypeError),
        (("1", 1, "buy", 100, 1), TypeError),
        ((1, 1, 0, 100, 1), TypeError),
    ],
)
def test_bad_numbers_raise_before_the_engine(args, error):
    book = OrderBook("X")
    with pytest.raises(error):
        book.new_order(*args)
    with pytest.raises(error):
        Command.new(*args)
    assert book.seq == 0


def test_extreme_valid_ids():
    book = OrderBook("X")
    top = 2**64 - 1
    events = book.new_order(top, top, "buy", MAX_PRICE, MAX_QTY)
    assert events[0].order_id == top and events[0].account == top
    assert book.order(top).price == MAX_PRICE
    (event,) = book.new_order(top, 1, "buy", 1, 1)
    assert event.reason == "DUPLICATE_ORDER_ID"


def test_bad_arguments_elsewhere():
    book = OrderBook("X")
    with pytest.raises(OverflowError):
        book.cancel(-1, 1)
    with pytest.raises(OverflowError):
        book.replace(1, 1, price=2**63)
    with pytest.raises(OverflowError):
        book.depth(-1)
    with pytest.raises(OverflowError):
        book.exposure(-1)
    with pytest.raises(TypeError):
        book.replace(1, 1, 5)  # type: ignore[call-arg]  # price is keyword-only
    with pytest.raises(TypeError):
        book.submit("new")  # type: ignore[arg-type]


# ----- views -------------------------------------------------------------------------------------


def test_bbo():
    book = OrderBook("X")
    empty = book.bbo()
    assert (empty.bid, empty.ask, empty.spread) == (None, None, None)
    assert (empty.bid_price, empty.bid_qty, empty.ask_price, empty.ask_qty) == (None,) * 4
    book.new_order(1, 1, "buy", 98, 3)
    book.new_order(2, 1, "buy", 99, 2)
    book.new_order(3, 2, "sell", 103, 7)
    bbo = book.bbo()
    assert isinstance(bbo, Bbo)
    assert (bbo.bid, bbo.ask) == ((99, 2), (103, 7))
    assert (bbo.bid_price, bbo.bid_qty, bbo.ask_price, bbo.ask_qty) == (99, 2, 103, 7)
    assert bbo.spread == 4
    assert repr(bbo) == "Bbo(bid=(99, 2), ask=(103, 7))"
    assert bbo == book.bbo() and hash(bbo) == hash(book.bbo())
    assert bbo != empty
    book.cancel(2, 1)
    assert book.bbo().bid == (98, 3)  # no phantom best price


def test_depth():
    book = OrderBook("X")
    for i, price in enumerate([95, 97, 96, 97, 94], start=1):
        book.new_order(i, 1, "buy", price, i)
    for i, price in enumerate([101, 100, 102], start=10):
        book.new_order(i, 2, "sell", price, 1)
    bids, asks = book.depth()
    assert bids == [(97, 6), (96, 3), (95, 1), (94, 5)]
    assert asks == [(100, 1), (101, 1), (102, 1)]
    assert book.depth(2) == ([(97, 6), (96, 3)], [(100, 1), (101, 1)])
    assert book.depth(levels=0) == ([], [])
    assert book.depth(10**9) == book.depth()


def test_order_and_resting_orders():
    book = book_with_asks()
    book.new_order(4, 20, "buy", 90, 5, stp="cancel_both", max_position=50)
    order = book.order(4)
    assert isinstance(order, RestingOrder)
    assert (order.order_id, order.account, order.side, order.price, order.qty) == (
        4,
        20,
        "buy",
        90,
        5,
    )
    assert (order.stp, order.post_only, order.max_position) == ("cancel_both", False, 50)
    assert book.order(1).max_position is None
    assert book.order(99) is None
    assert repr(order).startswith("RestingOrder(order_id=4, account=20, side='buy'")
    assert order == book.order(4) and hash(order) == hash(book.order(4))
    # Priority order: bids best first, then asks best first, each level oldest first.
    assert [o.order_id for o in book.resting_orders()] == [4, 3, 1, 2]


def test_exposure():
    book = book_with_asks()
    book.new_order(4, 20, "buy", 100, 1)
    book.new_order(5, 20, "buy", 90, 4)
    exposure = book.exposure(20)
    assert isinstance(exposure, Exposure)
    assert (exposure.position, exposure.open_buy, exposure.open_sell) == (1, 4, 0)
    assert (book.exposure(12).position, book.exposure(12).open_sell) == (-1, 0)
    assert repr(book.exposure(10)) == "Exposure(position=0, open_buy=0, open_sell=2)"
    unknown = book.exposure(12345)
    assert (unknown.position, unknown.open_buy, unknown.open_sell) == (0, 0, 0)
    exposures = book.exposures()
    assert list(exposures) == [10, 11, 12, 20]  # by account id; 12 has no orders but is short
    assert exposures[20] == exposure


# ----- Event -------------------------------------------------------------------------------------


def one_event_of_each_kind() -> dict[str, Event]:
    book = OrderBook("X")
    events = book.new_order(1, 10, "sell", 100, 5)
    events += book.new_order(2, 20, "buy", 100, 2)
    events += book.replace(1, 10, qty=1)
    events += book.cancel(1, 10)
    events += book.cancel(1, 10)
    events += book.halt()
    return {e.kind: e for e in events}


def test_event_attributes_apply_by_kind():
    by_kind = one_event_of_each_kind()
    assert set(by_kind) == set(ATTRS_BY_KIND)
    for kind, event in by_kind.items():
        present = {a for a in EVENT_ATTRS if getattr(event, a) is not None}
        assert present == ATTRS_BY_KIND[kind], kind
        assert isinstance(event.seq, int)


def test_event_to_dict():
    by_kind = one_event_of_each_kind()
    for kind, event in by_kind.items():
        d = event.to_dict()
        assert set(d) == {"seq", "kind"} | ATTRS_BY_KIND[kind]
        assert d["seq"] == event.seq and d["kind"] == kind
        for key, value in d.items():
            assert getattr(event, key) == value
    assert by_kind["trade"].to_dict() == {
        "seq": 4,
        "kind": "trade",
        "maker_order_id": 1,
        "maker_account": 10,
        "taker_order_id": 2,
        "taker_account": 20,
        "price": 100,
        "qty": 2,
        "aggressor": "buy",
        "maker_remaining": 3,
        "taker_remaining": 0,
        "maker_fee_bps": 0,
        "taker_fee_bps": 0,
    }


def test_event_repr_eq_hash():
    first = OrderBook("X").new_order(1, 7, "buy", 100, 5)
    again = OrderBook("Y").new_order(1, 7, "buy", 100, 5)
    assert first == again
    assert hash(first[0]) == hash(again[0])
    assert first[0] != first[1]
    assert first[0] != "accepted"
    assert len({*first, *again}) == 2
    assert repr(first[1]) == "Event(seq=2, kind='level', side='buy', price=100, qty=5)"
    assert repr(first[0]) == (
        "Event(seq=1, kind='accepted', order_id=1, account=7, side='buy', order_type='limit', "
        "tif='gtc', price=100, qty=5, post_only=False, client_ref=0)"
    )
    other = OrderBook("X").new_order(1, 7, "buy", 100, 6)
    assert first[0] != other[0]


def test_event_is_immutable_and_not_constructible():
    event = OrderBook("X").halt()[0]
    with pytest.raises(AttributeError):
        event.seq = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        Event()  # no constructor: events come from a book


def test_enum_strings_are_interned():
    event = OrderBook("X").new_order(1, 7, "buy", 100, 5)[0]
    assert event.kind is sys.intern("accepted")
    assert event.side is sys.intern("buy")
    assert event.tif is sys.intern("gtc")


def test_value_objects_are_not_gc_tracked():
    book = OrderBook("X")
    events = book.new_order(1, 7, "buy", 100, 5)
    assert not any(gc.is_tracked(e) for e in events)
    assert not gc.is_tracked(Command.halt())
    assert not gc.is_tracked(book.bbo())
    assert not gc.is_tracked(book.order(1))
    del events
    gc.collect()  # and nothing breaks when they are freed


# ----- Command, submit, submit_many --------------------------------------------------------------


def test_command_constructors_and_attributes():
    new = Command.new(1, 7, "buy", 100, 5, tif="ioc", stp="cancel_newest", max_position=9)
    assert (new.kind, new.order_id, new.account, new.side, new.price, new.qty) == (
        "new",
        1,
        7,
        "buy",
        100,
        5,
    )
    assert (new.order_type, new.tif, new.post_only, new.stp, new.max_position) == (
        "limit",
        "ioc",
        False,
        "cancel_newest",
        9,
    )
    market = Command.market(2, 7, "sell", 3)
    assert (market.order_type, market.tif, market.price, market.qty) == ("market", "ioc", None, 3)
    assert Command.new(2, 7, "sell", 0, 3, order_type="market").tif == "ioc"
    cancel = Command.cancel(1, 7)
    assert (cancel.kind, cancel.order_id, cancel.account, cancel.side, cancel.qty) == (
        "cancel",
        1,
        7,
        None,
        None,
    )
    replace = Command.replace(1, 7, qty=2)
    assert (replace.kind, replace.price, replace.qty, replace.tif) == ("replace", None, 2, None)
    for command, kind in [
        (Command.halt(), "halt"),
        (Command.resume(), "resume"),
        (Command.reset(), "reset"),
    ]:
        assert command.kind == kind
        assert (command.order_id, command.account, command.price) == (None, None, None)


def test_command_repr_round_trips():
    commands = [
        Command.new(1, 7, "buy", 100, 5),
        Command.new(
            2, 7, "sell", 101, 5, tif="fok", post_only=True, stp="cancel_both", max_position=3
        ),
        Command.new(3, 7, "sell", 0, 5, order_type="market", tif="fok"),
        Command.market(4, 8, "buy", 2),
        Command.cancel(1, 7),
        Command.replace(1, 7, price=99),
        Command.replace(1, 7, price=99, qty=1),
        Command.halt(),
        Command.resume(),
        Command.reset(),
    ]
    for command in commands:
        rebuilt = eval(repr(command), {"Command": Command})
        assert rebuilt == command and hash(rebuilt) == hash(command), repr(command)
    assert repr(commands[0]) == "Command.new(1, 7, 'buy', 100, 5)"
    assert len(set(commands)) == len(commands)
    assert Command.cancel(1, 7) != Command.cancel(1, 8)


def test_submit_equals_direct_methods():
    direct = book_with_asks()
    via_submit = book_with_asks()
    pairs = [
        (
            lambda b: b.new_order(4, 20, "buy", 101, 2, stp="cancel_oldest"),
            Command.new(4, 20, "buy", 101, 2, stp="cancel_oldest"),
        ),
        (lambda b: b.market_order(5, 21, "buy", 1), Command.market(5, 21, "buy", 1)),
        (lambda b: b.replace(2, 11, price=103, qty=1), Command.replace(2, 11, price=103, qty=1)),
        (lambda b: b.cancel(2, 11), Command.cancel(2, 11)),
        (lambda b: b.halt(), Command.halt()),
        (lambda b: b.resume(), Command.resume()),
        (lambda b: b.reset(), Command.reset()),
    ]
    for call, command in pairs:
        assert call(direct) == via_submit.submit(command), repr(command)
    assert direct.state_hash() == via_submit.state_hash()


def random_commands(seed: int, count: int) -> list[Command]:
    """A seeded mixed workload around a drifting mid: limits, IOC/FOK, markets, cancels,
    replaces, the odd halt/resume, a few invalid orders and stale ids."""
    rng = random.Random(seed)
    commands: list[Command] = []
    live: list[tuple[int, int]] = []
    mid = 1000
    next_id = 1
    for _ in range(count):
        mid = max(50, mid + rng.randint(-2, 2))
        roll = rng.random()
        if roll < 0.5 or not live:
            side = rng.choice(("buy", "sell"))
            offset = rng.randint(-6, 10)
            price = mid - offset if side == "buy" else mid + offset
            account = rng.randint(1, 8)
            tif = rng.choices(("gtc", "ioc", "fok"), (8, 2, 1))[0]
            stp = rng.choice(("none", "none", "cancel_newest", "cancel_oldest", "cancel_both"))
            qty = rng.randint(0, 20) if rng.random() < 0.99 else -1
            post_only = tif == "gtc" and rng.random() < 0.1
            limit = rng.choice((None, None, 60, 200))
            commands.append(
                Command.new(
                    next_id,
                    account,
                    side,
                    price,
                    qty,
                    tif=tif,
                    stp=stp,
                    post_only=post_only,
                    max_position=limit,
                )
            )
            live.append((next_id, account))
            next_id += 1
        elif roll < 0.55:
            commands.append(
                Command.market(
                    next_id, rng.randint(1, 8), rng.choice(("buy", "sell")), rng.randint(1, 30)
                )
            )
            next_id += 1
        elif roll < 0.8:
            order_id, account = live.pop(rng.randrange(len(live)))
            if rng.random() < 0.05:
                account += 1  # someone else's order: rejected
            commands.append(Command.cancel(order_id, account))
        elif roll < 0.98:
            order_id, account = rng.choice(live)
            price = mid + rng.randint(-8, 8) if rng.random() < 0.6 else None
            qty = rng.randint(1, 25) if price is None or rng.random() < 0.5 else None
            commands.append(Command.replace(order_id, account, price=price, qty=qty))
        elif roll < 0.99:
            commands.append(Command.halt())
        else:
            commands.append(Command.resume())
    return commands


def test_submit_many_equals_one_by_one():
    commands = random_commands(seed=7, count=3000)
    one_by_one = OrderBook("X")
    expected = [e for command in commands for e in one_by_one.submit(command)]
    batched = OrderBook("X")
    # Mixed batch sizes: below and above the size at which the GIL is released.
    got: list[Event] = []
    start = 0
    for size in [1, 5, 63, 64, 65, 500, len(commands)]:
        got += batched.submit_many(commands[start : start + size])
        start += size
    assert got == expected
    assert [e.seq for e in got] == list(range(1, len(got) + 1))
    assert batched.state_hash() == one_by_one.state_hash()
    assert batched.resting_orders() == one_by_one.resting_orders()
    assert {k for k in kinds(got)} == set(ATTRS_BY_KIND)  # the workload exercises every kind


def test_submit_many_accepts_any_iterable():
    commands = [Command.new(i, 1, "buy", 100 - i, 1) for i in range(1, 4)]
    book = OrderBook("X")
    assert len(book.submit_many(c for c in commands)) == 6
    assert book.submit_many([]) == []
    assert book.submit_many(()) == []
    assert book.order_count == 3


def test_submit_many_checks_every_item_before_applying():
    book = OrderBook("X")
    with pytest.raises(TypeError, match="item 2 is tuple, not a Command"):
        book.submit_many([Command.halt(), Command.new(1, 1, "buy", 1, 1), ("new", 1)])
    assert book.seq == 0 and book.halted is False
    with pytest.raises(TypeError):
        book.submit_many(5)  # type: ignore[arg-type]


def test_batches_on_separate_books_in_threads():
    commands = random_commands(seed=11, count=4000)
    expected = OrderBook("X").submit_many(commands)
    results: dict[int, list[Event]] = {}

    def run(slot: int) -> None:
        results[slot] = OrderBook("X").submit_many(commands)

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[slot] == expected for slot in range(3))


# ----- determinism and snapshots -----------------------------------------------------------------


def test_determinism():
    commands = random_commands(seed=3, count=2000)
    first, second = OrderBook("X"), OrderBook("X")
    events_first = first.submit_many(commands)
    events_second = second.submit_many(commands)
    assert events_first == events_second
    assert [e.to_dict() for e in events_first] == [e.to_dict() for e in events_second]
    assert first.state_hash() == second.state_hash()
    assert first.snapshot() == second.snapshot()
    other = OrderBook("X")
    other.submit_many(random_commands(seed=4, count=2000))
    assert other.state_hash() != first.state_hash()


def test_state_hash_tracks_state():
    book = OrderBook("X")
    empty = book.state_hash()
    assert isinstance(empty, int) and 0 <= empty < 2**64
    book.new_order(1, 1, "buy", 100, 1)
    assert book.state_hash() != empty


def test_snapshot_restore_round_trip_and_continue():
    commands = random_commands(seed=5, count=3000)
    live = OrderBook("X", capacity=100)
    live.submit_many(commands[:2000])
    live.halt()
    data = live.snapshot()
    assert isinstance(data, bytes)
    restored = OrderBook.restore(data)
    assert isinstance(restored, OrderBook)
    assert restored.state_hash() == live.state_hash()
    assert (restored.symbol, restored.seq, restored.halted, restored.last_order_id) == (
        live.symbol,
        live.seq,
        True,
        live.last_order_id,
    )
    assert restored.resting_orders() == live.resting_orders()
    assert restored.exposures() == live.exposures()
    assert restored.depth(1000) == live.depth(1000)
    assert restored.snapshot() == data
    rest = [Command.resume(), *commands[2000:]]
    assert restored.submit_many(rest) == live.submit_many(rest)
    assert restored.state_hash() == live.state_hash()


def test_restore_accepts_bytes_like_objects():
    book = book_with_asks()
    data = book.snapshot()
    for form in (bytearray(data), memoryview(data)):
        assert OrderBook.restore(form).state_hash() == book.state_hash()


def test_pickle_and_copy_go_through_snapshots():
    book = book_with_asks()
    for clone in (pickle.loads(pickle.dumps(book)), copy.copy(book), copy.deepcopy(book)):
        assert clone is not book
        assert clone.state_hash() == book.state_hash()
        clone.cancel(1, 10)
        assert clone.state_hash() != book.state_hash()  # independent


def corrupt(data: bytes, index: int, flip: int = 0x01) -> bytes:
    return data[:index] + bytes([data[index] ^ flip]) + data[index + 1 :]


def test_bad_snapshots_raise_snapshot_error():
    book = book_with_asks()
    data = book.snapshot()
    bad = [
        b"",
        b"junk",
        b"FBSNAP",
        data[:-1],
        data[: len(data) // 2],
        data + b"\x00",
        corrupt(data, 0),  # magic
        corrupt(data, 6, 0x40),  # format version
        corrupt(data, len(data) // 2),  # body
        corrupt(data, len(data) - 1),  # checksum
    ]
    for blob in bad:
        with pytest.raises(SnapshotError):
            OrderBook.restore(blob)
    with pytest.raises(SnapshotError, match="version"):
        OrderBook.restore(corrupt(data, 6, 0x40))  # a version from the future
    with pytest.raises(SnapshotError, match="checksum"):
        OrderBook.restore(corrupt(data, len(data) // 2))
    with pytest.raises(ValueError):  # SnapshotError is a ValueError
        OrderBook.restore(b"junk")


def test_every_single_byte_corruption_is_caught():
    data = book_with_asks().snapshot()
    rng = random.Random(1)
    for index in range(len(data)):
        blob = data[:index] + bytes([data[index] ^ rng.randint(1, 255)]) + data[index + 1 :]
        with pytest.raises(SnapshotError):
            OrderBook.restore(blob)


def test_restore_rejects_non_bytes():
    for value in ("FBSNAP", 5, None, [1, 2]):
        with pytest.raises(TypeError):
            OrderBook.restore(value)  # type: ignore[arg-type]


def test_queue_positions_count_the_orders_ahead_at_the_price():
    book = OrderBook("QP")
    book.new_order(1, 7, "buy", 100, 5)
    book.new_order(2, 8, "buy", 100, 3)
    book.new_order(3, 7, "buy", 100, 2)
    book.new_order(4, 7, "buy", 99, 9)
    position = book.queue_position(3)
    assert isinstance(position, fe.QueuePosition)
    assert (position.order_id, position.side, position.price, position.qty) == (3, "buy", 100, 2)
    assert (position.qty_ahead, position.orders_ahead) == (8, 2)
    assert (position.level_qty, position.level_orders) == (10, 3)
    # All of an account's open orders in one call; None for one not resting.
    positions = book.queue_positions([1, 3, 4, 42])
    ahead = [(p.qty_ahead, p.orders_ahead) if p else None for p in positions]
    assert ahead == [(0, 0), (8, 2), (0, 0), None]
    # A fill at the head and a cancel in the middle move the order up.
    book.new_order(5, 9, "sell", 100, 4)
    book.cancel(2, 8)
    assert (book.queue_position(3).qty_ahead, book.queue_position(3).orders_ahead) == (1, 1)
    assert book.queue_position(2) is None
    assert "qty_ahead=1" in repr(book.queue_position(3))


def test_an_empty_replace_and_a_negative_position_limit_are_malformed():
    book = OrderBook("BUGS")
    book.new_order(1, 7, "buy", 100, 5)
    (event,) = book.replace(1, 7)
    assert (event.kind, event.command, event.reason) == ("rejected", "replace", "MALFORMED")
    assert event.seq == 3
    (event,) = book.new_order(2, 7, "buy", 100, 5, max_position=-1)
    assert (event.kind, event.reason) == ("rejected", "MALFORMED")
    (event,) = book.new_order(2, 7, "buy", 100, 5)
    assert event.reason == "DUPLICATE_ORDER_ID"  # the malformed NEW consumed its id
    limited = OrderBook("L")
    limited.new_order(1, 7, "buy", 100, 5, max_position=2**63 - 1)
    unlimited = OrderBook("L")
    unlimited.new_order(1, 7, "buy", 100, 5)
    assert limited.order(1).max_position == 2**63 - 1
    assert unlimited.order(1).max_position is None
    assert limited.state_hash() != unlimited.state_hash()
