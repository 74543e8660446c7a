"""The bridge's per-symbol state (`exchange.live.market_state`), fed with the engine's events."""

from decimal import Decimal

import flashbook_engine
import pytest

from exchange.live.market_state import BOOK_DEPTH, MarketState, Scale, parse_md, private_events

SCALE = Scale(Decimal("0.01"), Decimal("1"))


class Book:
    def __init__(self):
        self.book = flashbook_engine.OrderBook("ACME")
        self.next_id = 1

    def new(self, account, side, price, qty, **extra) -> list:
        fields = {"t": "new", "id": self.next_id, "acct": account, "side": side, "px": price}
        fields |= {"qty": qty, **extra}
        self.next_id += 1
        fields = {k: str(v) for k, v in fields.items()}
        return self.book.apply_entry(fields)

    def cancel(self, order_id, account) -> list:
        entry = {"t": "cancel", "id": str(order_id), "acct": str(account)}
        return self.book.apply_entry(entry)

    def key(self) -> dict:
        bids, asks = self.book.depth(20)
        return {"seq": self.book.seq, "halted": False, "bids": bids, "asks": asks}


def public(events):
    return [event for event in events if event.kind in ("level", "trade", "status")]


def test_a_message_ending_in_private_events_is_not_a_gap():
    book, state = Book(), MarketState("ACME", SCALE)
    state.seed(None)
    lines = book.new(1, "buy", 9990, 5) + book.cancel(99, 1)  # ends with a rejection
    state.apply(public(lines), 0, through=lines[-1].seq)
    assert state.seq == book.book.seq  # the next message starts right after it


def test_trades_and_levels_and_conflated_frames():
    book, state = Book(), MarketState("ACME", SCALE)
    state.seed(None)
    for lines in (book.new(1, "sell", 10000, 5), book.new(2, "buy", 10000, 2)):
        state.apply(public(lines), 1000, through=lines[-1].seq)
    trades = state.trades_frame(0.0)
    assert trades["prev"] == 0 and trades["seq"] == 4  # accepted 1, level 2, accepted 3, trade 4
    # To the tick (0.01): "100.00", not "100".
    assert [(t["price"], t["qty"], t["side"]) for t in trades["trades"]] == [("100.00", "2", "buy")]
    frame = state.book_frame(0.0)
    assert frame["prev"] == trades["seq"] and frame["asks"] == [["100.00", "3"]]
    assert frame["bids"] == []
    assert state.snapshot()["seq"] == frame["seq"] and state.snapshot()["trades"][0]["qty"] == "2"
    assert state.stats()["volume"] == "2"


def test_reseed_from_a_lagging_book_key_replays_buffered_levels():
    book, state = Book(), MarketState("ACME", SCALE)
    for level in range(30):  # more levels than the key holds
        book.new(1, "buy", 9000 + level, 1)
    state.seed(book.key())
    assert state.bid_floor == 9010 and not state.needs_reseed()
    key = book.key()  # a key that will lag behind
    taken = book.new(2, "sell", 9020, 15)  # takes 10 levels: only 10 known ones left
    state.apply(public(taken), 0, through=taken[-1].seq)
    assert state.needs_reseed()
    assert state.reseed(key)  # replays the sweep on top of the older key
    assert sorted(state.bids) == list(range(9010, 9020))
    assert state.reseed(book.key())  # a newer key shows the deeper levels
    assert len(state.book_levels()[0]) == BOOK_DEPTH
    assert state.book_levels()[0][0] == ["90.19", "1"]


def test_private_events_are_each_accounts_own_side():
    book = Book()
    lines = book.new(7, "sell", 10000, 5, ref=11) + book.new(8, "buy", 10000, 2)
    mine = private_events(lines, SCALE, {7, 8})
    assert [e["kind"] for e in mine[7]] == ["accepted", "trade"]
    assert mine[7][1]["role"] == "maker" and mine[7][1]["side"] == "sell"
    assert mine[8][1]["role"] == "taker" and mine[8][1]["remaining"] == "0"
    assert 9 not in private_events(lines, SCALE, {9})
    assert private_events(lines, SCALE, {7}).keys() == {7}


def test_parse_md_refuses_other_text():
    with pytest.raises(ValueError):
        parse_md("hello")
    message = parse_md("M 3 4\n3 L buy 100 2\nB 4 100 2 0 0")
    [level] = message.events
    assert (message.first, message.last) == (3, 4)
    assert (level.seq, level.kind, level.side, level.price, level.qty) == (
        3,
        "level",
        "buy",
        100,
        2,
    )
