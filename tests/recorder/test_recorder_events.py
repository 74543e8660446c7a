"""What each event does to the database: `record_entries` fed with event stream entries built
from an in-process book (no engine process; Redis holds the journal's records of gateway orders)."""

import random
from decimal import Decimal as D

import pytest

from exchange.models import (
    Account,
    Fill,
    Instrument,
    Order,
    OrderStatus,
    Position,
    RecorderCursor,
    Trade,
)
from exchange.orders import journal
from exchange.protocol import keys
from exchange.recorder import record_entries

from .support import (
    Book,
    assert_conserved,
    dump,
    entries,
    entry,
    make_account,
    make_instrument,
    random_commands,
    split,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_prefix")]


@pytest.fixture
def acme():
    return make_instrument("ACME", tick="0.01", lot="1")


@pytest.fixture
def accounts():
    return [make_account(name) for name in ("alice", "bob", "carol")]


def gateway_order(instrument, account, order_id, side, qty, price=None, **extra) -> int:
    """What the gateway's append script keeps of a NEW it journals with this id (the order's
    record under its account, until the recorder has written the row); returns the id."""
    record = journal.PendingRecord(
        order_id=order_id,
        account_id=account.pk,
        symbol=instrument.symbol,
        side=side,
        order_type="limit" if price is not None else "market",
        time_in_force=extra.pop("tif", "gtc" if price is not None else "ioc"),
        price_ticks=0 if price is None else instrument.price_to_ticks(D(price)),
        quantity_lots=instrument.qty_to_lots(D(qty)),
        post_only=extra.pop("post_only", False),
        created_ms=1_700_000_000_000 + order_id,
        client_order_id=extra.pop("client_order_id", f"c{order_id}"),
    )
    assert not extra
    journal.client().hset(keys.pending_key(account.pk), str(order_id), record.encode())
    return order_id


def record(instrument, events, index=0):
    return record_entries(instrument, [entry(events, index)])


def order(instrument, order_id) -> Order:
    return Order.objects.get(instrument=instrument, order_id=order_id)


def cash(account) -> D:
    account.refresh_from_db()
    return account.cash


def test_gateway_orders_trade(acme, accounts, django_capture_on_commit_callbacks):
    alice, bob, _ = accounts
    book = Book("ACME")
    gateway_order(acme, alice, 1, "sell", 10, "100.00", client_order_id="s-1")
    gateway_order(acme, bob, 2, "buy", 4, "100.50")
    events = book.new(1, alice.pk, "sell", 10, 10000)
    events += book.new(2, bob.pk, "buy", 4, 10050)
    with django_capture_on_commit_callbacks(execute=True):
        result = record(acme, events)
    assert (result.entries, result.events, result.trades) == (1, len(events), 1)

    sell, buy = order(acme, 1), order(acme, 2)
    assert (sell.pk, sell.client_order_id, sell.account, sell.price) == (1, "s-1", alice, D(100))
    assert sell.created_at.timestamp() * 1000 == 1_700_000_000_001  # the journal's time
    assert (sell.status, sell.filled_quantity, sell.average_fill_price) == (
        OrderStatus.PARTIALLY_FILLED,
        D(4),
        D(100),
    )
    assert (buy.pk, buy.status, buy.filled_quantity) == (2, OrderStatus.FILLED, D(4))
    trade = Trade.objects.get()
    assert (trade.seq, trade.price, trade.quantity, trade.aggressor_side) == (
        events[3].seq,
        D(100),
        D(4),
        "buy",
    )
    assert (trade.maker_order_id, trade.taker_order_id) == (1, 2)
    fills = {f.role: f for f in Fill.objects.all()}
    assert (fills["maker"].order, fills["maker"].side, fills["maker"].account) == (
        sell,
        "sell",
        alice,
    )
    assert (fills["taker"].order, fills["taker"].side, fills["taker"].price) == (buy, "buy", D(100))
    assert cash(alice) == D(100400) and cash(bob) == D(99600)
    assert Position.objects.get(account=alice).quantity == D(-4)
    bob_position = Position.objects.get(account=bob)
    assert (bob_position.quantity, bob_position.average_price) == (D(4), D(100))
    assert RecorderCursor.objects.get(instrument=acme).last_seq == events[-1].seq
    assert_conserved(["ACME"])
    # Recorded: the journal's records go (readers find the rows now).
    assert journal.pending_orders(alice.pk) == {} and journal.pending_orders(bob.pk) == {}


def test_orders_of_other_tools_are_created_from_the_accepted_event(acme, accounts):
    alice, bob, _ = accounts
    book = Book("ACME")
    events = book.new(7, alice.pk, "buy", 3, 5000, tif="gtc", post="1")
    events += book.new(8, bob.pk, "sell", 5, None, type="market", tif="ioc")
    events += book.new(9, bob.pk, "sell", 0, 5000)  # INVALID_QUANTITY: no row
    record(acme, events)
    maker = order(acme, 7)
    assert (maker.client_order_id, maker.account, maker.side, maker.order_type) == (
        "engine-ACME-7",
        alice,
        "buy",
        "limit",
    )
    assert (maker.time_in_force, maker.post_only, maker.price, maker.quantity) == (
        "gtc",
        True,
        D(50),
        D(3),
    )
    assert maker.status == OrderStatus.FILLED
    taker = order(acme, 8)
    assert (taker.order_type, taker.price, taker.quantity, taker.filled_quantity) == (
        "market",
        None,
        D(5),
        D(3),
    )
    assert (taker.status, taker.reject_reason) == (OrderStatus.EXPIRED, "REMAINDER")
    assert not Order.objects.filter(order_id=9).exists()


def test_a_client_order_id_already_taken_gets_a_suffix(acme, accounts):
    alice = accounts[0]
    Order.objects.create(
        instrument=acme,
        account=alice,
        client_order_id="engine-ACME-1",
        side="buy",
        order_type="limit",
        time_in_force="gtc",
        price=D(1),
        quantity=D(1),
    )
    record(acme, Book("ACME").new(1, alice.pk, "buy", 2, 100))
    assert order(acme, 1).client_order_id == "engine-ACME-1-2"


def test_unknown_accounts_get_no_rows_but_the_trade_is_recorded(acme, accounts):
    alice = accounts[0]
    book = Book("ACME")
    events = book.new(1, 999_999, "sell", 5, 10000) + book.new(2, alice.pk, "buy", 5, 10000)
    record(acme, events)
    assert Trade.objects.count() == 1
    assert list(Fill.objects.values_list("role", "account")) == [("taker", alice.pk)]
    assert list(Order.objects.values_list("order_id", flat=True)) == [2]
    assert cash(alice) == D(99500)
    assert not Position.objects.exclude(account=alice).exists()


@pytest.mark.parametrize("reason", ["POST_ONLY_WOULD_CROSS", "MALFORMED", "POSITION_LIMIT"])
def test_a_rejected_gateway_order(acme, accounts, reason):
    alice, bob, _ = accounts
    book = Book("ACME")
    events = book.new(1, bob.pk, "sell", 5, 10000)
    gateway_order(acme, alice, 2, "buy", 5, "100.00")
    if reason == "POST_ONLY_WOULD_CROSS":
        events += book.new(2, alice.pk, "buy", 5, 10000, post="1")
    elif reason == "MALFORMED":  # the id and account readable, a price that is not
        events += book(t="new", id=2, acct=alice.pk, side="buy", px="1e2", qty=5)
    else:
        events += book.new(2, alice.pk, "buy", 5, 10000, maxpos=4)
    record(acme, events)
    rejected = order(acme, 2)
    assert (rejected.pk, rejected.account, rejected.status, rejected.reject_reason) == (
        2,
        alice,
        OrderStatus.REJECTED,
        reason,
    )


@pytest.mark.parametrize("same_batch", [True, False])
def test_a_malformed_new_keeps_its_id_and_a_later_new_with_it_is_the_duplicate(
    acme, accounts, same_batch
):
    """The engine consumes the id of a MALFORMED NEW like any other: the gateway's order keeps
    it, and another NEW with the same id is refused as a duplicate without touching that order."""
    alice, bob, _ = accounts
    book = Book("ACME")
    gateway_order(acme, alice, 3, "buy", 5, "100.00")
    refused = book(t="new", id=3, acct=alice.pk, side="buy", px=10000, qty="x")
    duplicate = book.new(3, bob.pk, "sell", 2, 10100)  # another tool, the same id
    assert [(e.kind, e.reason) for e in duplicate] == [("rejected", "DUPLICATE_ORDER_ID")]
    if same_batch:
        record(acme, refused + duplicate)
    else:
        record(acme, refused, 0)
        record(acme, duplicate, 1)
    broken = order(acme, 3)
    assert (broken.account, broken.status, broken.reject_reason) == (alice, "REJECTED", "MALFORMED")
    assert not Order.objects.filter(account=bob).exists()


def test_a_duplicate_id_rejects_the_newcomer_not_the_order_that_has_the_id(acme, accounts):
    alice, bob, _ = accounts
    book = Book("ACME")
    gateway_order(acme, alice, 4, "buy", 5, "100.00")
    events = book.new(4, alice.pk, "buy", 5, 10000)
    events += book.new(4, bob.pk, "buy", 5, 10000)  # another tool's: no row, no harm
    record(acme, events)
    first = order(acme, 4)
    assert (first.account, first.status) == (alice, OrderStatus.NEW)
    assert Order.objects.count() == 1


def test_a_record_left_behind_by_a_recorder_that_died_after_its_commit_is_dropped(acme, accounts):
    alice = accounts[0]
    book = Book("ACME")
    gateway_order(acme, alice, 1, "buy", 5, "100.00")
    events = book.new(1, alice.pk, "buy", 5, 10000)
    record(acme, events)
    # As if the recorder died between its commit and dropping the record:
    gateway_order(acme, alice, 1, "buy", 5, "100.00")
    assert record(acme, events).duplicates == 1  # the redelivery
    assert journal.pending_orders(alice.pk) == {}


def test_cancel_reasons(acme, accounts):
    alice, bob, _ = accounts
    book = Book("ACME")
    events = book.new(1, alice.pk, "buy", 5, 9000)
    events += book(t="cancel", id=1, acct=alice.pk)
    events += book(t="cancel", id=1, acct=alice.pk)  # UNKNOWN_ORDER: no change
    events += book.new(2, alice.pk, "sell", 2, 10000)
    events += book.new(3, alice.pk, "buy", 5, 10000, stp="cancel_newest")  # self-trade prevented
    events += book.new(4, bob.pk, "buy", 5, 10000, tif="fok")
    events += book.new(5, bob.pk, "sell", 1, 12000)
    events += book(t="reset")
    record(acme, events)
    statuses = dict(Order.objects.values_list("order_id", "status"))
    reasons = dict(Order.objects.values_list("order_id", "reject_reason"))
    assert statuses == {1: "CANCELED", 2: "CANCELED", 3: "CANCELED", 4: "EXPIRED", 5: "CANCELED"}
    assert reasons == {1: "", 2: "RESET", 3: "SELF_TRADE", 4: "FOK_UNFILLABLE", 5: "RESET"}


def test_replace_changes_price_and_quantity(acme, accounts):
    alice, bob, _ = accounts
    book = Book("ACME")
    events = book.new(1, alice.pk, "buy", 10, 10000)
    events += book.new(2, bob.pk, "sell", 4, 10000)
    events += book(t="replace", id=1, acct=alice.pk, px=9950, qty=3)
    record(acme, events)
    replaced = order(acme, 1)
    assert (replaced.price, replaced.quantity, replaced.filled_quantity, replaced.status) == (
        D("99.50"),
        D(7),
        D(4),
        OrderStatus.PARTIALLY_FILLED,
    )


def test_halt_and_resume(acme, accounts):
    book = Book("ACME")
    record(acme, book(t="halt"), 0)
    assert Instrument.objects.get(pk=acme.pk).halted
    record(acme, book(t="resume"), 1)
    assert not Instrument.objects.get(pk=acme.pk).halted


def test_a_reset_zeroes_the_instruments_positions_as_the_engine_does(acme, accounts):
    alice, bob, _ = accounts
    other = make_instrument("OTHER")
    book, other_book = Book("ACME"), Book("OTHER")
    record(
        other,
        other_book.new(1, alice.pk, "sell", 2, 100) + other_book.new(2, bob.pk, "buy", 2, 100),
    )
    record(acme, book.new(1, alice.pk, "sell", 3, 10000) + book.new(2, bob.pk, "buy", 3, 10000), 0)
    record(acme, book(t="reset"), 1)
    positions = {
        (p.account.name, p.instrument.symbol): (p.quantity, p.average_price, p.realized_pnl)
        for p in Position.objects.select_related("account", "instrument")
    }
    assert positions == {
        ("alice", "ACME"): (D(0), D(0), D(0)),
        ("bob", "ACME"): (D(0), D(0), D(0)),
        ("alice", "OTHER"): (D(-2), D(1), D(0)),
        ("bob", "OTHER"): (D(2), D(1), D(0)),
    }
    assert cash(alice) == D(100_000) + D(300) + D(2)  # cash stays


def test_a_self_trade_is_a_wash(acme, accounts):
    alice = accounts[0]
    book = Book("ACME")
    events = book.new(1, alice.pk, "buy", 5, 10000)
    events += book.new(2, alice.pk, "sell", 3, 9000, stp="none")
    record(acme, events)
    assert sorted(Fill.objects.values_list("role", "order__order_id", "side")) == [
        ("maker", 1, "buy"),
        ("taker", 2, "sell"),
    ]
    assert (order(acme, 1).status, order(acme, 2).status) == ("PARTIALLY_FILLED", "FILLED")
    assert cash(alice) == D(100_000)
    assert not Position.objects.exclude(quantity=0).exists()


def test_maker_in_one_trade_and_taker_in_another_in_one_batch(acme, accounts):
    alice, bob, carol = accounts
    book = Book("ACME")
    events = book.new(1, alice.pk, "buy", 10, 10000)
    events += book.new(2, bob.pk, "sell", 4, 10000)  # 1 is the maker: 4 @ 100
    events += book.new(3, carol.pk, "sell", 5, 10100)
    events += book(t="replace", id=1, acct=alice.pk, px=10100)  # 1 crosses: taker, 5 @ 101
    record(acme, events)
    both = order(acme, 1)
    assert sorted(Fill.objects.filter(order=both).values_list("role", "price", "quantity")) == [
        ("maker", D(100), D(4)),
        ("taker", D(101), D(5)),
    ]
    assert (both.filled_quantity, both.average_fill_price, both.status) == (
        D(9),
        D("100.55555556"),
        OrderStatus.PARTIALLY_FILLED,
    )
    position = Position.objects.get(account=alice)
    assert (position.quantity, position.average_price) == (D(9), D("100.55555556"))
    assert cash(alice) == D(100_000) - D(400) - D(505)


def test_recording_the_same_entries_twice_changes_nothing(acme, accounts):
    rng = random.Random(3)
    book = Book("ACME")
    for fields in random_commands(rng, 300, [a.pk for a in accounts]):
        book(**fields)
    stream = entries(split(book.events, rng))
    first = record_entries(acme, stream)
    assert first.entries == len(stream) and first.duplicates == 0
    before = dump()
    again = record_entries(acme, stream)
    assert (again.entries, again.duplicates, len(again.done)) == (0, len(stream), len(stream))
    assert record_entries(acme, stream[3:7]).duplicates == 4
    assert dump() == before


def test_an_entry_after_a_gap_waits(acme, accounts):
    alice, bob, _ = accounts
    book = Book("ACME")
    first = entry(book.new(1, alice.pk, "sell", 5, 10000), 0)
    second = entry(book.new(2, bob.pk, "buy", 5, 10000), 1)
    blocked = record_entries(acme, [second])
    assert blocked.blocked and not blocked.done
    assert not Order.objects.exists()
    assert record_entries(acme, [first, second]).done == [first.entry_id, second.entry_id]
    assert Trade.objects.count() == 1


@pytest.mark.parametrize("seed", [1, 2])
def test_the_database_does_not_depend_on_how_the_stream_is_cut(seed):
    """Per-event rounding: one transaction over the whole stream, or many over random runs of
    entries, give the same database. Odd tick and lot sizes make averages round."""
    rng = random.Random(seed)
    instrument = make_instrument("ODD", tick="0.03", lot="0.7")
    accounts = [make_account(f"acct{i}").pk for i in range(6)]
    book = Book("ODD")
    for fields in random_commands(rng, 1500, accounts):
        book(**fields)
    assert any(e.kind == "trade" for e in book.events)

    stream = entries(split(book.events, rng, max_len=7))
    assert len(record_entries(instrument, stream, max_events=10**9).done) == len(stream)
    whole = dump()
    Fill.objects.all().delete()
    Trade.objects.all().delete()
    Order.objects.all().delete()
    Position.objects.all().delete()
    RecorderCursor.objects.all().delete()
    Account.objects.update(cash=D(100_000))
    Instrument.objects.update(halted=False)
    done = 0
    while done < len(stream):
        result = record_entries(instrument, stream[done:], max_events=rng.randint(1, 60))
        done += len(result.done)
    assert dump() == whole
    assert_conserved(["ODD"])


def test_fills_pay_the_fees_the_engine_stamped_and_the_api_shows_them(
    acme, accounts, django_capture_on_commit_callbacks
):
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from exchange.services import api_token_create

    alice, bob, _ = accounts
    book = Book("ACME")
    events = book(t="fees", maker="-2", taker="5")  # a rebate of 0.02 %, a fee of 0.05 %
    gateway_order(acme, alice, 1, "sell", 10, "100.00")
    gateway_order(acme, bob, 2, "buy", 7, "100.00")
    events += book.new(1, alice.pk, "sell", 10, 10000)
    events += book.new(2, bob.pk, "buy", 7, 10000)
    with django_capture_on_commit_callbacks(execute=True):
        record(acme, events)
    fills = {f.role: f for f in Fill.objects.all()}
    # 7 at 100.00 is 700.00: the taker pays 0.35, the maker gets 0.14 back.
    assert (fills["taker"].fee, fills["maker"].fee) == (D("0.35"), D("-0.14"))
    assert cash(bob) == D(100_000) - D(700) - D("0.35")
    assert cash(alice) == D(100_000) + D(700) + D("0.14")
    bob_position = Position.objects.get(account=bob)
    assert (bob_position.realized_pnl, bob_position.fees_paid) == (D("-0.35"), D("0.35"))
    assert_conserved(["ACME"])  # the cash's change is minus the fees

    bob.user = get_user_model().objects.create(username="bob-fees")
    bob.save(update_fields=["user"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=bob.user, name='t')[1]}")
    fill = api.get("/api/v1/account/fills/").json()["results"][0]
    assert (fill["fee"], fill["price"], fill["role"]) == ("0.35", "100.00", "taker")
    account = api.get("/api/v1/account/").json()
    assert (account["fees_paid"], account["cash"]) == ("0.35", "99299.65")
    assert account["positions"][0]["realized_pnl"] == "-0.35"
